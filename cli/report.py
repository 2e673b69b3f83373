"""`vitnas report`: the Pareto front, hypervolume and knee of a study, as a table, JSON, CSV or HTML."""
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vitnas.nas.report import print_report, report_dict, write_csv, write_html
from vitnas.nas.search.study import STUDY_FILE, StudyStore
from vitnas.errors import UserError


def newest_study(root: Path) -> Path:
    studies = sorted(root.glob(f"*/{STUDY_FILE}"), key=lambda p: p.stat().st_mtime)
    if not studies:
        raise UserError(f"no study found under {root}: run `vitnas search --space metaformer` first, or pass DIR")
    return studies[-1].parent


def report(
    directory: Annotated[Path | None, typer.Argument(metavar="[DIR]", help="A study folder (runs/NAME); "
                                                     "default: the newest study under ./runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report (PNG plots beside it).")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write one CSV row per trial.")] = None,
) -> None:
    """Report a study: Pareto front (non-dominated completed trials), hypervolume, knee point, trial counts.

    Example: vitnas report runs/metaformer-digits-20261123-101500 --html front.html
    """
    store = StudyStore.open(directory or newest_study(Path("runs")))
    summary = store.summary()
    if csv:
        write_csv(summary, csv)
    if html:
        write_html(summary, html)
    if as_json:
        typer.echo(json.dumps(report_dict(summary)))
        return
    console = Console()
    print_report(summary, console)
    for path, kind in ((csv, "CSV"), (html, "HTML")):
        if path:
            console.print(f"{kind} written to {path}")
