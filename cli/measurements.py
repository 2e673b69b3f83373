"""Printing a trial's measurements: one JSON object, or a rich table of the declared metrics it has."""
import typer
from rich.console import Console
from rich.table import Table

from vitnas.nas.files import json_text
from vitnas.nas.metrics import METRICS
from vitnas.nas.report_format import format_number


def print_measurements(metrics: dict, as_json: bool, title: str) -> None:
    """`--json`: every metric as strict JSON. Otherwise a table: epochs, each declared metric the trial measured
    (what was not measured is left out) with its meaning, then the robustness suite's parts."""
    if as_json:
        typer.echo(json_text(metrics))
        return
    table = Table(title=title)
    for column in ("metric", "value", "meaning"):
        table.add_column(column, justify="right" if column == "value" else "left")
    if "epochs" in metrics:
        table.add_row("epochs", str(metrics["epochs"]), "epochs trained")
    for metric in METRICS.values():
        if metric.key in metrics:
            table.add_row(metric.key, format_number(metrics[metric.key]), metric.label)
    for name, value in metrics.get("robustness_components", {}).items():
        table.add_row(f"  robustness: {name}", format_number(value), "accuracy under this perturbation")
    Console().print(table)
