"""`vitnas presets` and `vitnas arch summary`: what a preset or config file costs. Parsing and printing only."""
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from vitnas.nas.cost import Cost, count_cost
from vitnas.search_spaces.config import ArchConfig
from vitnas.errors import UserError
from vitnas.search_spaces.presets import load_preset, preset_names

CONVENTION = "MACs count conv (depthwise included), linear and attention matmuls; FLOPs = 2 x MACs."

app = typer.Typer(no_args_is_help=True, add_completion=False, help=f"Inspect architectures: params, MACs, FLOPs, activation memory. {CONVENTION}")


def presets() -> None:
    """List the published architectures shipped as presets, with params and MACs at 224x224x3, 1000 classes.

    MACs count conv (depthwise included), linear and attention matmuls; FLOPs = 2 x MACs.

    Example: vitnas presets
    """
    table = Table(title="presets (224x224x3, 1000 classes)")
    for column in ("preset", "params", "GMACs", "GFLOPs"):
        table.add_column(column, justify="left" if column == "preset" else "right")
    for name in preset_names():
        cost = count_cost(load_preset(name))
        table.add_row(name, f"{cost.params:,}", f"{cost.macs / 1e9:.2f}", f"{cost.flops / 1e9:.2f}")
    Console().print(table)


def _resolve_config(config: Optional[Path], preset: Optional[str], image_size: Optional[int],
                    in_chans: Optional[int], num_classes: Optional[int]) -> ArchConfig:
    if (config is None) == (preset is None):
        raise UserError("give exactly one of --preset NAME or a CONFIG.yaml path")
    cfg = load_preset(preset) if preset is not None else ArchConfig.from_yaml(config)
    return cfg.with_data(image_size=image_size, in_chans=in_chans, num_classes=num_classes)


def _print_summary(cfg: ArchConfig, cost: Cost) -> None:
    c, h, w = cost.input_shape
    console = Console()
    console.print(f"[bold]{cfg.name}[/bold]  input {c}x{h}x{w}, {cfg.num_classes} classes")
    console.print(f"params {cost.params:,}  MACs {cost.macs:,} ({cost.macs / 1e9:.3f} G)  "
                  f"FLOPs {cost.flops:,} (= 2 x MACs)  activations {cost.activation_bytes / 2**20:.1f} MiB/image")
    table = Table()
    for column in ("part", "output (N, ..., C)", "params", "MACs", "activations MiB"):
        table.add_column(column, justify="left" if column.startswith(("part", "output")) else "right")
    for part in cost.parts:
        table.add_row(part.name, "x".join(map(str, part.output_shape)), f"{part.params:,}", f"{part.macs:,}",
                      f"{part.activation_bytes / 2**20:.2f}")
    console.print(table)


@app.command()
def summary(
    config: Optional[Path] = typer.Argument(None, help="Architecture config YAML (or use --preset)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="A preset name (see `vitnas presets`)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Override the image side in pixels."),
    in_chans: Optional[int] = typer.Option(None, "--in-chans", help="Override the input channels."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Override the class count."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (integer params, macs, flops, ...)."),
) -> None:
    """Params, MACs, FLOPs, activation memory and a per-stage table of one architecture.

    MACs count conv (depthwise included), linear and attention matmuls; FLOPs = 2 x MACs.

    Example: vitnas arch summary --preset poolformer_s12 --image-size 32 --num-classes 10 --json
    """
    cfg = _resolve_config(config, preset, image_size, in_chans, num_classes)
    cost = count_cost(cfg)
    if as_json:
        typer.echo(json.dumps({"name": cfg.name, **cost.to_dict(), "config": cfg.to_dict()}))
    else:
        _print_summary(cfg, cost)
