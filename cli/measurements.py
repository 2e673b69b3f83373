"""Printing a trial's measurements: one JSON object, or a rich table."""
import json

import typer
from rich.console import Console
from rich.table import Table

from vitnas.nas.report_format import format_number

_SHOWN = ("accuracy", "val_accuracy", "params", "macs", "flops", "latency_ms", "latency_ms_batch",
          "robustness", "train_seconds", "images_per_second", "epochs")


def print_measurements(metrics: dict, as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(metrics, default=float))
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in _SHOWN:
        if key in metrics:
            table.add_row(key, format_number(metrics[key]))
    for name, value in metrics.get("robustness_components", {}).items():
        table.add_row(f"  robustness: {name}", format_number(value))
    Console().print(table)
