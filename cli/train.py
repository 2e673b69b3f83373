"""`vitnas train`: train one architecture on a data set and measure every objective."""
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from vitnas.cli import options
from vitnas.cli.measurements import print_measurements
from vitnas.errors import UserError


def _architecture(preset: str | None, config: Path | None, data):
    from vitnas.search_spaces.config import ArchConfig
    from vitnas.search_spaces.presets import load_preset
    from vitnas.search_spaces.space import load_space

    if preset and config:
        raise UserError("give either --preset NAME or CONFIG.yaml, not both")
    if preset:
        arch = load_preset(preset)
    elif config:
        arch = ArchConfig.from_yaml(config)
    else:
        return load_space("metaformer").default_config(data.image_size, data.in_chans, data.num_classes)
    return arch.with_data(image_size=data.image_size, in_chans=data.in_chans, num_classes=data.num_classes)


def _refuse_to_overwrite(out: Path, force: bool) -> None:
    """A checkpoint (or a search trial's folder) already in --out is finished work: replaced only when asked."""
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []  # check_writable has refused a file
    if held and not force:
        raise UserError(f"--out {str(out)!r} is not empty (it holds {', '.join(held[:4])}): choose a new folder, "
                        "or pass --force to replace what is there")


def train(
    config: Annotated[Path | None, typer.Argument(metavar="[CONFIG.yaml]", help="Architecture config file.")] = None,
    preset: Annotated[str | None, typer.Option(help="A published architecture (see `vitnas presets`).")] = None,
    dataset: options.DatasetOption = "digits",
    epochs: options.EpochsOption = None,
    time_budget: options.TimeOption = None,
    seed: options.SeedOption = 0,
    device: options.DeviceOption = "auto",
    robustness: options.RobustnessOption = "default",
    measure: options.MeasureOption = "all",
    precision: options.PrecisionOption = "auto",
    out: Annotated[Path | None, typer.Option(help="Checkpoint folder (default runs/train-NAME-TIMESTAMP).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the checkpoint already in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with every metric.")] = False,
) -> None:
    """Train one architecture and measure accuracy, cost, latency and robustness; save a checkpoint.

    Without CONFIG.yaml or --preset it trains the metaformer space's default architecture for the data set's
    image size. The data set's image size, channels and classes flow into the architecture. MACs count conv,
    linear and attention matmuls; FLOPs = 2 x MACs.

    Examples:

      vitnas train --dataset digits

      vitnas train my_arch.yaml --dataset ../data/cifar10-jpg.zip --time 300 --json

      vitnas train --preset poolformer_s12 --dataset cifar10 --epochs 50 --device cuda
    """
    from vitnas.nas.checkpoint import save_checkpoint
    from vitnas.nas.data import load_dataset
    from vitnas.nas.files import check_writable, folder_name
    from vitnas.nas.metrics import parse_measurements
    from vitnas.nas.outcome import Outcome
    from vitnas.nas.trial import run_trial

    settings = options.trial_settings(epochs, time_budget, seed, device, robustness, search=False,
                                      measurements=parse_measurements(measure), precision=precision)
    data = load_dataset(dataset, seed=seed)
    arch = _architecture(preset, config, data)
    # a config's name is anyone's text (`../../tmp/x`): only a plain folder name of it becomes part of a path
    directory = out or Path("runs") / f"train-{folder_name(arch.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_writable(directory, "--out", folder=True)
    _refuse_to_overwrite(directory, force)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                  TimeElapsedColumn(), console=console, transient=as_json) as bar:
        task = bar.add_task(f"training {arch.name}", total=1.0, status="")
        outcome = run_trial(arch, data, settings, progress=lambda u: bar.update(
            task, completed=u.fraction, status=f"epoch {u.epoch} loss {u.loss:.3f} acc {u.accuracy:.3f} "
                                               f"{u.images_per_second:.0f} img/s"))
        bar.update(task, completed=1.0)
    if outcome.status is not Outcome.OK:
        raise UserError(f"training failed: {outcome.error}; lower the learning rate or change the architecture")
    save_checkpoint(directory, arch, outcome.model,
                    {"dataset": dataset, "seed": seed, "metrics": outcome.metrics, "history": outcome.history})
    if not as_json:
        console.print(f"checkpoint saved to {directory}")
    print_measurements({**outcome.metrics, "checkpoint": str(directory)}, as_json, f"{arch.name} on {data.name}")
