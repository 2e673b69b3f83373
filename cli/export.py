"""`vitnas export`: a found or trained architecture as standalone PyTorch code, weights and training script."""
from pathlib import Path
from typing import Annotated

import typer


def export(
    source: Annotated[Path | None, typer.Argument(
        metavar="[STUDY_DIR | CHECKPOINT_DIR | CONFIG.yaml]",
        help="A study folder (its knee unless --trial), a `vitnas train` checkpoint folder or a config file.")] = None,
    out: Annotated[Path, typer.Option(help="The folder to write (must be new or empty unless --force).")] = ...,
    trial: Annotated[int | None, typer.Option(min=0, help="Export this trial of the study.")] = None,
    knee: Annotated[bool, typer.Option(help="Export the knee of the study's Pareto front (the default).")] = False,
    preset: Annotated[str | None, typer.Option(help="Export a published architecture (see `vitnas presets`).")] = None,
    dataset: Annotated[str | None, typer.Option(help="For CONFIG.yaml or --preset: the data set whose shape and "
                                                     "normalisation the model takes (default: ImageNet's "
                                                     "normalisation, the config's shape).")] = None,
    onnx: Annotated[bool, typer.Option(help="Also write model.onnx, checked with ONNX Runtime (the onnx extra).")] = False,
    force: Annotated[bool, typer.Option(help="Write into a non-empty --out, replacing its export files.")] = False,
) -> None:
    """Export an architecture as pure PyTorch: model.py, weights.pt, train.py, config.yaml, metrics.json, README.md.

    model.py is the library's own block code, only the blocks the architecture uses, with build_model() returning
    the model exactly as a trial trains it (normalisation inside, images in [0, 1]); weights.pt loads into it
    strictly. train.py retrains it on an ImageFolder with the run's recipe using torch and PIL only.

    Examples:

      vitnas export runs/metaformer-cifar10 --out exported/knee

      vitnas export runs/metaformer-cifar10 --trial 12 --out exported/t12 --onnx

      vitnas export runs/train-default-20261123-101500 --out exported/default

      vitnas export --preset poolformer_s12 --dataset cifar10 --out exported/poolformer
    """
    from vitnas.cli.options import TRAIN_EPOCHS
    from vitnas.nas.export.source import open_source
    from vitnas.nas.export.writer import export as write_export

    item = open_source(source, trial=trial, knee=knee, preset=preset, dataset=dataset)
    result = write_export(item, out, default_epochs=TRAIN_EPOCHS, onnx=onnx, force=force)
    typer.echo(f"exported {item.arch.name!r} to {result.directory}")
    for name, size in result.sizes.items():
        typer.echo(f"  {name:<13} {size:>12,} bytes")
    typer.echo(f"exported model vs vitnas model: largest logit difference {result.max_difference:.2g}")
    if result.onnx_difference is not None:
        typer.echo(f"ONNX Runtime vs PyTorch: largest logit difference {result.onnx_difference:.2g}")
