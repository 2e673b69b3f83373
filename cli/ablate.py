"""`vitnas ablate`: run an ablation study (arms x seeds on Ray), list the shipped studies, report a finished one."""
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from vitnas.cli import options
from vitnas.cli.live import showing


class _StudyGroup(TyperGroup):
    """`vitnas ablate STUDY ...` runs a study: a first argument that is not a subcommand goes to `run`."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_StudyGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Run ablation studies that test published claims with paired seeds, confidence intervals "
                       "and verdicts. `vitnas ablate STUDY` runs one (a shipped name or a study file), `list` shows "
                       "the shipped studies, `report DIR` reports a finished one.")


class LiveGrid:
    """The live view: one row per arm, one column per seed, each cell the run's state and current metric."""

    def __init__(self, arms: list[str], seeds: tuple[int, ...], metric, console):
        from rich.live import Live

        self.arms, self.seeds, self.metric, self.console = arms, seeds, metric, console
        self.cells = {(arm, seed): "queued" for arm in arms for seed in seeds}
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _render(self):
        from rich.table import Table

        done = sum(cell.startswith(("ok", "failed", "diverged")) for cell in self.cells.values())
        table = Table(title=f"{done}/{len(self.cells)} runs finished ({self.metric.text} shown)")
        table.add_column("arm")
        for seed in self.seeds:
            table.add_column(f"seed {seed}")
        for arm in self.arms:
            table.add_row(arm, *(self.cells[(arm, seed)] for seed in self.seeds))
        return table

    def _set(self, arm: str, seed: int, text: str) -> None:
        self.cells[(arm, seed)] = text
        self.live.update(self._render())

    def mark_finished(self, finished: dict) -> None:
        for (arm, seed), record in finished.items():
            if (arm, seed) in self.cells:
                self.cells[(arm, seed)] = self._finished_text(record)
        self.live.update(self._render())

    def _finished_text(self, record) -> str:
        if record.outcome.value != "ok":
            return f"{record.outcome.value}: {(record.error or '')[:40]}"
        return f"ok {self.metric.value(record.metrics):.4g}"

    def run_started(self, run) -> None:
        self._set(run.arm, run.seed, "running")

    def run_progress(self, run, epoch: int, val_accuracy: float) -> None:
        self._set(run.arm, run.seed, f"epoch {epoch}, val acc {val_accuracy:.3f}")

    def run_finished(self, record) -> None:
        self._set(record.arm, record.seed, self._finished_text(record))

    def runs_interrupted(self, runs) -> None:
        for run in runs:
            self._set(run.arm, run.seed, "interrupted")


@app.command("run")
def run(
    study: Annotated[str, typer.Argument(metavar="STUDY", help="A study file (.yaml) or a shipped study's name "
                                         "(`vitnas ablate list`).")],
    profile: Annotated[str, typer.Option(help="quick (minutes on 2 CPU cores; what CI runs) or full (the real "
                                         "experiment), or another profile the study defines.")] = "quick",
    seeds: Annotated[int | None, typer.Option(min=3, help="Seeds 0..N-1 instead of the profile's (at least 3).")]
    = None,
    workers: options.WorkersOption = 2,
    cpus_per_trial: options.CpusPerTrialOption = 1,
    gpus_per_trial: options.GpusPerTrialOption = 0,
    address: options.AddressOption = None,
    out: Annotated[Path | None, typer.Option(help="The ablation's folder (default runs/ablate/STUDY-PROFILE).")]
    = None,
    resume: Annotated[bool, typer.Option(help="Continue the ablation in --out: finished runs are kept, the rest "
                                         "run; refused if the study changed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
) -> None:
    """Run a study's arms x seeds in parallel on Ray, persist each run as it ends, and report the verdict.

    Seed s of every arm sees the same data order, split and initialisation, so differences are paired. Ctrl-C or
    kill -9 loses no finished run: repeat the command with --resume. A failed run is recorded with its reason.

    Examples:

      vitnas ablate poolformer-token-mixer

      vitnas ablate studies/vit-conv-stem.yaml --profile full --workers 2 --resume

      vitnas ablate my_study.yaml --workers 8 --gpus-per-trial 0.25 --address auto
    """
    import json

    from rich.console import Console

    from vitnas.nas.ablation.plan import identity
    from vitnas.nas.ablation.report import print_results, results, write_results
    from vitnas.nas.ablation.run import prepare, run_ablation
    from vitnas.nas.ablation.store import STUDY_FILE, AblationStore
    from vitnas.nas.ablation.study import load_study, profile_with_seeds
    from vitnas.nas.executor import Resources
    from vitnas.nas.files import check_writable

    resources = Resources(workers=workers, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                          address=address)
    loaded = load_study(study)
    chosen = profile_with_seeds(loaded.profile(profile), seeds)
    directory = out or Path("runs") / "ablate" / f"{loaded.name}-{chosen.name}"
    check_writable(directory, "--out", folder=True)
    datasets, runs = prepare(loaded, chosen)
    if resume and (directory / STUDY_FILE).exists():
        store = AblationStore.open(directory)
        store.resume(loaded, chosen, identity(loaded, chosen))
    else:
        store = AblationStore.create(directory, loaded, chosen, identity(loaded, chosen))
    console = Console(stderr=True)
    finished = store.finished()
    console.print(f"ablation [bold]{loaded.name}[/] (profile {chosen.name}) in {directory}: {len(runs)} runs, "
                  f"{sum(key in finished for key in ((r.arm, r.seed) for r in runs))} finished before")
    view = LiveGrid(list(loaded.arms), chosen.seeds, loaded.metrics[0], console)
    view.mark_finished(finished)
    with showing(view.live):
        run_ablation(loaded, chosen, store, datasets, runs, resources, view)
    finished = store.finished()
    report = results(loaded, chosen, finished)
    write_results(directory, report)
    if as_json:
        typer.echo(json.dumps(report))
    else:
        print_results(report, Console())
        Console().print(f"results written to {directory}/results.md and results.json")
    missing = [r for r in runs if (r.arm, r.seed) not in finished]
    if missing:  # Ctrl-C: the executor stopped the runs in flight; every finished one is stored
        console.print(f"stopped with {len(missing)} of {len(runs)} runs unfinished: continue with the same command "
                      "and --resume")
        raise typer.Exit(130)


@app.command("list")
def list_studies(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
) -> None:
    """The shipped studies, each with its claim, source and arms."""
    import json

    from rich.console import Console
    from rich.table import Table

    from vitnas.nas.ablation.study import load_study, shipped_studies

    studies = [load_study(str(path)) for path in shipped_studies()]
    rows = [{"name": s.name, "claim": s.claim, "source": s.source, "arms": list(s.arms),
             "profiles": list(s.profiles)} for s in studies]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title="shipped studies (vitnas ablate NAME [--profile quick|full])")
    table.add_column("name", no_wrap=True)
    for column in ("claim", "arms", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["claim"], ", ".join(row["arms"]), row["source"])
    Console().print(table)


@app.command("report")
def report(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="An ablation's folder (its --out).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML page (charts also as PNGs "
                                                   "beside it): interactive with the report extra (plotly), else "
                                                   "static.")] = None,
    static: Annotated[bool, typer.Option("--static", help="With --html: PNG charts only, no scripts (a page of "
                                                          "about 0.1 MB instead of about 5 MB).")] = False,
    markdown: Annotated[Path | None, typer.Option(help="Also write the Markdown report here.")] = None,
) -> None:
    """Statistics and verdicts of an ablation (finished or not): per arm mean, SD and 95 % CI of every metric; per
    expected comparison the paired difference, its CI, p-value (Holm-corrected) and verdict. Writes results.json
    and results.md into DIR.

    Example: vitnas ablate report runs/ablate/poolformer-token-mixer-quick --html mixer.html
    """
    import json

    from rich.console import Console

    from vitnas.nas.ablation.report import markdown as to_markdown, print_results, results, write_html, write_results
    from vitnas.nas.ablation.store import AblationStore
    from vitnas.nas.files import check_writable, write_text_atomic

    if html is not None:
        check_writable(html, "--html")  # a folder or a read-only place: one line, before the study is read
    store = AblationStore.open(directory)
    study = store.study()
    report_data = results(study, store.profile(study), store.finished())
    write_results(directory, report_data)
    if html is not None:
        write_html(report_data, html, interactive=False if static else None)
    if markdown is not None:
        write_text_atomic(markdown, to_markdown(report_data))
    if as_json:
        typer.echo(json.dumps(report_data))
        return
    console = Console()
    print_results(report_data, console)
    if html is not None:
        console.print(f"HTML written to {html} (each chart also as a PNG beside it)", highlight=False)
