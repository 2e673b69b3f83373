"""`vitnas evaluate`: re-measure a saved model (accuracy, cost, latency, robustness, Fourier heat map)."""
from pathlib import Path
from typing import Annotated

import typer

from vitnas.cli import options
from vitnas.cli.measurements import print_measurements


def evaluate(
    checkpoint: Annotated[Path, typer.Argument(metavar="CHECKPOINT_DIR", help="A folder written by `vitnas train`.")],
    dataset: Annotated[str | None, typer.Option(help="Data set (default: the one it was trained on).")] = None,
    robustness: options.RobustnessOption = "default",
    measure: options.MeasureOption = "all",
    heatmap: Annotated[Path | None, typer.Option(help="Save a Fourier sensitivity heat map (PNG) here.")] = None,
    device: options.DeviceOption = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with every metric.")] = False,
) -> None:
    """Re-measure a trained model on a data set's test split.

    Examples:

      vitnas evaluate runs/train-default-20261123-101500 --robustness full --heatmap fourier.png

      vitnas evaluate runs/train-default-20261123-101500 --dataset digits --json
    """
    from vitnas.nas.checkpoint import load_checkpoint
    from vitnas.nas.data import load_dataset
    from vitnas.nas.files import check_writable
    from vitnas.nas.metrics import parse_measurements
    from vitnas.nas.robustness import fourier_heatmap, save_heatmap_png
    from vitnas.nas.trainer import resolve_device
    from vitnas.nas.trial import check_fits, measure_model

    if heatmap:
        check_writable(heatmap, "--heatmap")  # before measuring, not after
    saved = load_checkpoint(checkpoint)
    seed = saved.info["seed"]
    data = load_dataset(dataset or saved.info["dataset"], seed=seed)  # same seed: the same validation split
    check_fits(saved.arch, data)
    # the training seed, so the robustness suite draws the same noise and attack starts as `vitnas train` did
    settings = options.trial_settings(1, None, seed, device, robustness, search=False,
                                      measurements=parse_measurements(measure))
    dev = resolve_device(device)
    metrics = measure_model(saved.model.to(dev), saved.arch, data, settings, dev)
    if heatmap:
        save_heatmap_png(fourier_heatmap(saved.model, data.x_test, data.y_test, device=str(dev)), heatmap)
        metrics["heatmap"] = str(heatmap)
    print_measurements(metrics, as_json, f"{saved.arch.name} on {data.name}")
