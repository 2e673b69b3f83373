"""`vitnas report`: the Pareto front, hypervolume and knee of a study, as a table, JSON, CSV or HTML."""
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vitnas.nas.files import check_writable, json_text
from vitnas.nas.report import print_report, report_dict, write_csv, write_html
from vitnas.nas.study_reader import newest_study, read_study


def report(
    directory: Annotated[Path | None, typer.Argument(metavar="[DIR]", help="A study folder (runs/NAME); "
                                                     "default: the newest study under ./runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report (PNG plots beside it): "
                                                   "interactive with the report extra (plotly), else static.")] = None,
    static: Annotated[bool, typer.Option("--static", help="With --html: PNG plots only, no scripts (a page of "
                                                          "about 0.5 MB instead of about 5 MB).")] = False,
    csv: Annotated[Path | None, typer.Option(help="Write one CSV row per trial.")] = None,
) -> None:
    """Report a study: Pareto front (non-dominated completed trials), hypervolume, knee point, trial counts.

    The HTML page shows what matters (Optuna's fANOVA and PED-ANOVA importance of every architecture dimension for
    every objective), the front (hover and click a point, brush the parallel coordinates), hypervolume over trials
    and time, and a diagram of each front member.

    Example: vitnas report runs/metaformer-digits-20261123-101500 --html front.html
    """
    for path, option in ((csv, "--csv"), (html, "--html")):
        if path is not None:
            check_writable(path, option)  # a folder or a read-only place: one line, not a traceback after reading
    study_dir = directory or newest_study(Path("runs"))
    summary = read_study(study_dir)  # read-only, without Optuna
    if csv:
        write_csv(summary, csv)
    if html:
        write_html(summary, html, study_dir=study_dir, interactive=False if static else None)
    if as_json:
        typer.echo(json_text(report_dict(summary)))
        return
    console = Console()
    print_report(summary, console)
    for path, kind in ((csv, "CSV"), (html, "HTML")):
        if path:
            console.print(f"{kind} written to {path}")
