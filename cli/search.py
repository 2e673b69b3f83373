"""`vitnas search`: Optuna proposes MetaFormer architectures, Ray Tune trains them in parallel, a study keeps them."""
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from vitnas.cli import options
from vitnas.cli.live import showing
from vitnas.nas.metrics import DEFAULT_OBJECTIVES, measurements_for, objectives_help, parse_measurements, parse_objectives
from vitnas.nas.pareto import non_dominated
from vitnas.nas.records import TrialRecord
from vitnas.nas.report import print_report
from vitnas.nas.report_format import config_summary, format_number
from vitnas.nas.search.samplers import SAMPLER_NAMES
from vitnas.errors import UserError


class LiveView:
    """The live rich view: running trials with their epoch, the latest finished ones, and the front size."""

    def __init__(self, total: int, objectives, console: Console):
        self.total, self.objectives, self.console = total, objectives, console
        self.running: dict[int, dict] = {}
        self.finished: list[TrialRecord] = []
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _front_size(self) -> int:
        done = [t for t in self.finished if t.state == "COMPLETE"]
        points = [[t.values[o.name] for o in self.objectives] for t in done]
        return len(non_dominated(points, [o.direction for o in self.objectives])) if points else 0

    def _render(self) -> Group:
        running = Table(title="running", expand=True)
        for column in ("trial", "architecture", "epoch", "val acc"):
            running.add_column(column)
        for number, row in sorted(self.running.items()):
            running.add_row(str(number), row["arch"], str(row.get("epoch", "-")),
                            format_number(row["val"]) if "val" in row else "-")
        finished = Table(title=f"finished {len(self.finished)}/{self.total}, Pareto front {self._front_size()}",
                         expand=True)
        for column in ("trial", "state", *(o.name for o in self.objectives), "s"):
            finished.add_column(column)
        for record in self.finished[-8:]:
            values = [format_number(record.values[o.name]) if record.values else "-" for o in self.objectives]
            finished.add_row(str(record.number), record.state if not record.error else f"{record.state}: "
                             f"{record.error[:60]}", *values, format_number(record.duration_s or 0))
        return Group(running, finished)

    def trial_started(self, number: int, config: dict) -> None:
        self.running[number] = {"arch": config_summary(config)}
        self.live.update(self._render())

    def trial_progress(self, number: int, epoch: int, val_accuracy: float) -> None:
        if number in self.running:
            self.running[number].update(epoch=epoch, val=val_accuracy)
            self.live.update(self._render())

    def trial_finished(self, record: TrialRecord) -> None:
        self.running.pop(record.number, None)
        self.finished.append(record)
        self.live.update(self._render())


def search(
    space: Annotated[str, typer.Option(help="Search space: `metaformer` or a space YAML file (copy "
                                       "search_spaces/metaformer.yaml and narrow it).")] = "metaformer",
    dataset: options.DatasetOption = "digits",
    trials: Annotated[int, typer.Option(min=1, help="Trials to finish in this study (a resumed study counts "
                                        "the ones it has).")] = 20,
    objectives: Annotated[str, typer.Option(help=objectives_help())] = DEFAULT_OBJECTIVES,
    measure: options.MeasureOption = "",
    sampler: Annotated[str, typer.Option(help=f"Optuna sampler: {'|'.join(SAMPLER_NAMES)}.")] = "tpe",
    epochs: options.EpochsOption = None,
    time: options.TimeOption = None,
    workers: options.WorkersOption = 2,
    cpus_per_trial: options.CpusPerTrialOption = 1,
    gpus_per_trial: options.GpusPerTrialOption = 0,
    max_macs: Annotated[str | None, typer.Option(help="Reject configs above this many MACs before training "
                                                 "(e.g. 50M, 1.2G); they do not count as trials.")] = None,
    max_params: Annotated[str | None, typer.Option(help="Reject configs above this many parameters (e.g. 500K).")] = None,
    address: options.AddressOption = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL (default: sqlite in the study folder; "
                                                "e.g. postgresql://... to share a study between drivers).")] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: SPACE-DATASET-TIMESTAMP).")] = None,
    out: Annotated[Path, typer.Option(help="Folder that holds study folders.")] = Path("runs"),
    seed: options.SeedOption = 0,
    resume: Annotated[bool, typer.Option(help="Continue the study OUT/STUDY up to --trials; finished trials "
                                         "are kept as they are.")] = False,
    robustness: options.RobustnessOption = "default",
    device: options.DeviceOption = "auto",
    keep_weights: Annotated[str, typer.Option(help="Trained weights kept as OUT/STUDY/trials/NNNN/model.pt (for "
                                              "`vitnas export`): all | front (Pareto front only) | none | auto: "
                                              "all for models up to 5M parameters, front for larger ones.")] = "auto",
    early_stop: Annotated[str, typer.Option(help="moasha: multi-objective ASHA stops a trial outside the best "
                                            "1/--reduction-factor of the results at a rung (epochs --grace x "
                                            "rf^k; needs --epochs) | none.")] = "none",
    grace: Annotated[int, typer.Option(min=1, help="MO-ASHA's first rung, in epochs.")] = 1,
    reduction_factor: Annotated[int, typer.Option(min=2, help="MO-ASHA keeps the best 1/this at each rung; rungs "
                                                  "are this factor apart.")] = 3,
    prefilter: Annotated[str | None, typer.Option(help="PROXY[:keep=F][,batch=N]: score N proposals (16) at a time "
                                                  "with a zero-cost proxy (naswot | synflow | meco) and the cost "
                                                  "objectives, train only the best fraction F (0.25).")] = None,
    trial_timeout: Annotated[float | None, typer.Option(min=1, help="Kill a trial after this many seconds and "
                                                        "record it failed (over time). Default: 3 x --time, at "
                                                        "least --time + 60; none under --epochs.")] = None,
    precision: options.PrecisionOption = "auto",
    allow_repeats: Annotated[bool, typer.Option(help="Run an architecture the study has run already when the "
                                                "sampler proposes it again (default: rejected untrained).")] = False,
) -> None:
    """Search the MetaFormer space for architectures on the Pareto front of accuracy, MACs and robustness.

    Optuna proposes each architecture, Ray Tune trains and measures it in parallel (`--workers`), and every
    finished trial is stored at once in OUT/STUDY (Optuna storage + per-trial config, metrics and log).
    Ctrl-C or a killed driver loses no finished trial: repeat the command with --resume. MACs count conv, linear
    and attention matmuls; FLOPs = 2 x MACs.

    Trials rank on a validation subset (2,000 images) and measure test accuracy only with --measure test. When the
    search has all its trials, each Pareto-front member is measured from its kept weights: test accuracy on up to
    2,000 test images and the --robustness suite on 500 of them (test accuracy only for `none`), stored in the
    study and the trial's metrics.json and shown by `vitnas report`. A member without weights (--keep-weights
    none) is named and skipped; --resume measures only members not yet measured.

    Examples:

      vitnas search --space metaformer

      vitnas search --space my_space.yaml --dataset cifar10 --trials 50 --time 120 --workers 4 --gpus-per-trial 0.25

      vitnas search --space metaformer --study s1 --trials 30 --resume

      vitnas search --dataset cifar10 --epochs 9 --early-stop moasha --prefilter naswot:keep=0.5
    """
    # Ray and Optuna load here, not at start-up: every other command stays quick
    from vitnas.nas.files import check_plain_name, check_writable
    from vitnas.nas.search.runner import SearchSettings, default_study_name, load_inputs, open_study, run_search
    from vitnas.nas.executor import Resources
    from vitnas.nas.search.feasibility import default_trial_timeout
    from vitnas.nas.search.moasha import EarlyStopping
    from vitnas.nas.search.prefilter import PrefilterSpec
    from vitnas.nas.search.searcher import CostLimits
    from vitnas.nas.search.weights import KeepWeights

    parsed_objectives = parse_objectives(objectives)
    options.check_search_device(device, gpus_per_trial, local=address is None)
    if resume and study is None:
        raise UserError("--resume needs --study NAME (the study folder under --out to continue)")
    name = check_plain_name(study, "--study") if study is not None else default_study_name(space, dataset)
    check_writable(out / name, "--out", folder=True)
    trial = options.trial_settings(epochs, time, seed, device, robustness, search=True, precision=precision,
                                   measurements=measurements_for(parsed_objectives, parse_measurements(measure)))
    early = EarlyStopping(early_stop, grace, reduction_factor)
    early.rungs(trial.train.epochs)  # refuse a time budget or a grace past the budget before the study exists
    settings = SearchSettings(
        space=space, dataset=dataset, trials=trials, objectives=parsed_objectives, sampler=sampler, trial=trial,
        out=out, study=name, seed=seed,
        resources=Resources(workers=workers, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                            address=address),
        limits=CostLimits(options.parse_count(max_macs, "--max-macs"),
                          options.parse_count(max_params, "--max-params")),
        keep_weights=KeepWeights(keep_weights), storage=storage, resume=resume, early_stop=early,
        prefilter=None if prefilter is None else PrefilterSpec.parse(prefilter),
        trial_timeout=trial_timeout or default_trial_timeout(trial.train), allow_repeats=allow_repeats)
    console = Console(stderr=True)
    inputs = load_inputs(settings)  # a bad space or data set fails here, before the study exists
    with open_study(settings) as store:
        console.print(f"study [bold]{name}[/] in {store.directory} ({store.counted_trials()} of {trials} trials "
                      "done)")
        view = LiveView(trials, parsed_objectives, console)
        with showing(view.live):
            run_search(settings, store, view, inputs, say=lambda line: console.print(line, markup=False))
        print_report(store.summary(), Console())
        Console().print(f"report again with: vitnas report {store.directory}")
        if store.counted_trials() < trials:  # Ctrl-C: Ray Tune stopped the trials; every finished one is stored
            console.print(f"stopped after {store.counted_trials()} of {trials} trials: continue with the same "
                          f"command and --study {name} --resume")
            raise typer.Exit(130)
