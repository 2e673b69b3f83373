"""Study reports: the JSON-ready dict, the terminal table, CSV and the self-contained HTML page with PNG plots.

Everything is computed from a plain `StudySummary`; the Pareto set, hypervolume, reference point and knee come from
`nas.pareto` over the COMPLETE trials that have a finite value for every objective.
"""
import csv
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vitnas.errors import UserError
from vitnas.nas import pareto
from vitnas.nas.records import StudySummary, TrialRecord
from vitnas.nas.files import json_safe
from vitnas.nas.report_format import FINAL_COLUMNS, axis_label, config_summary, flatten, format_number


def report_dict(summary: StudySummary) -> dict:
    """The report as plain JSON-ready data (non-finite floats become None so the output is strict JSON).

    pareto: numbers of the non-dominated COMPLETE trials over all objectives; hypervolume: 0.0 and reference_point
    {} when nothing is complete; knee: trial number or None; counts.running includes WAITING trials; started_at and
    finished_at: POSIX seconds from the storage, or None.
    """
    names = [objective.name for objective in summary.objectives]
    directions = [objective.direction for objective in summary.objectives]
    trials = sorted(summary.trials, key=lambda trial: trial.number)
    ranked = [trial for trial in trials if _is_rankable(trial, names)]
    points = [[trial.values[name] for name in names] for trial in ranked]
    front = [ranked[i] for i in pareto.non_dominated(points, directions)]
    reference = pareto.reference_point(points, directions) if ranked else []
    knee = pareto.knee([[trial.values[name] for name in names] for trial in front], directions)
    return {
        "study": summary.name,
        "objectives": [{"name": o.name, "direction": o.direction} for o in summary.objectives],
        "trials": [json_safe({
            "number": trial.number, "state": trial.state, "values": trial.values, "config": trial.config,
            "metrics": trial.metrics, "duration_s": trial.duration_s, "error": trial.error,
            "outcome": trial.outcome, "started_at": trial.started_at, "finished_at": trial.finished_at,
            "final_metrics": trial.final_metrics,
        }) for trial in trials],
        "pareto": [trial.number for trial in front],
        "hypervolume": pareto.hypervolume(points, reference, directions) if ranked else 0.0,
        "reference_point": dict(zip(names, reference)),
        "knee": None if knee is None else front[knee].number,
        "counts": {
            "complete": sum(trial.state == "COMPLETE" for trial in trials),
            "failed": sum(trial.state == "FAIL" for trial in trials),
            "pruned": sum(trial.state == "PRUNED" for trial in trials),
            "running": sum(trial.state in ("RUNNING", "WAITING") for trial in trials),
        },
    }


def print_report(summary: StudySummary, console: Console) -> None:
    """The Pareto front as a rich table (knee marked), then hypervolume with its reference point, knee and counts."""
    report = report_dict(summary)
    counts = report["counts"]
    console.print(Text(f"Study {report['study']}: {counts['complete']} complete, {counts['failed']} failed, "
                       f"{counts['pruned']} pruned, {counts['running']} running", style="bold"))
    if not report["pareto"]:
        console.print("No completed trials yet: there is no Pareto front to show.")
        _print_failures(report, console)
        return
    by_number = {trial["number"]: trial for trial in report["trials"]}
    table = Table(title=f"Pareto front ({len(report['pareto'])} trials, * = knee)")
    table.add_column("trial", justify="right")
    for objective in report["objectives"]:
        table.add_column(Text(axis_label(objective)), justify="right")
    finals = [key for key in FINAL_COLUMNS if any(key in by_number[n]["final_metrics"] for n in report["pareto"])]
    for key in finals:
        table.add_column(FINAL_COLUMNS[key], justify="right")
    table.add_column("config")
    for number in report["pareto"]:
        trial = by_number[number]
        marker = "*" if number == report["knee"] else ""
        table.add_row(f"{number}{marker}", *(Text(format_number(trial["values"][o["name"]]))
                                             for o in report["objectives"]),
                      *(Text(format_number(trial["final_metrics"].get(key))) for key in finals),
                      Text(config_summary(trial["config"])))
    console.print(table)
    reference = ", ".join(f"{name}={format_number(value)}" for name, value in report["reference_point"].items())
    console.print(Text(f"hypervolume {format_number(report['hypervolume'])} (reference point: {reference}; "
                       f"{pareto.REFERENCE_RULE})"))
    console.print(Text(f"knee: trial {report['knee']} ({pareto.KNEE_RULE})"))
    _print_failures(report, console)


def write_csv(summary: StudySummary, path: str | Path) -> None:
    """One row per trial: number, state, pareto flag, objective values, timing, seed, error, flattened metrics/config.

    Metric and config columns are dotted paths prefixed `metrics.` and `config.`; lists are written as JSON.
    """
    report = report_dict(summary)
    front = set(report["pareto"])
    names = [objective.name for objective in summary.objectives]
    rows = []
    for trial in sorted(summary.trials, key=lambda t: t.number):
        row = {"number": trial.number, "state": trial.state, "outcome": _blank_if_none(trial.outcome),
               "pareto": int(trial.number in front)}
        row.update({name: trial.values.get(name, "") for name in names})
        row.update({"duration_s": _blank_if_none(trial.duration_s), "seed": _blank_if_none(trial.seed),
                    "error": _blank_if_none(trial.error)})
        row.update(flatten(trial.metrics, "metrics."))
        row.update(flatten(trial.final_metrics, "final."))
        row.update(flatten(trial.config, "config."))
        rows.append(row)
    fieldnames = list(dict.fromkeys(key for row in rows for key in row)) or ["number", "state", "pareto", *names]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, restval="")
        writer.writeheader()
        writer.writerows(rows)


def write_html(summary: StudySummary, path: str | Path, study_dir: Path | None = None,
               interactive: bool | None = None) -> list[Path]:
    """Write the self-contained HTML report and its charts as PNG files beside it; returns the PNG paths.

    interactive: plotly charts (None: when the `report` extra is installed); False: the static page of PNGs.
    study_dir: the folder the export commands on the page name (default runs/STUDY).
    """
    # matplotlib, Optuna and plotly take seconds to import, and only the HTML report needs them.
    from vitnas.nas.report_html import study_page
    from vitnas.nas.report_page import plotly_installed, write_page

    if interactive and not plotly_installed():
        raise UserError("the interactive report needs plotly: pip install 'vitnas[report]', or pass --static")
    page, sections = study_page(report_dict(summary), study_dir,
                                plotly_installed() if interactive is None else interactive)
    return write_page(Path(path), page, sections)


def _is_rankable(trial: TrialRecord, names: list[str]) -> bool:
    """COMPLETE with a finite value for every objective: only those can be compared on the front."""
    return trial.state == "COMPLETE" and all(
        name in trial.values and math.isfinite(trial.values[name]) for name in names)


def _blank_if_none(value):
    return "" if value is None else value


def _print_failures(report: dict, console: Console, shown: int = 5) -> None:
    """The first failed trials with their reasons, so an all-failed study explains itself."""
    failed = [trial for trial in report["trials"] if trial["state"] == "FAIL"]
    if not failed:
        return
    table = Table(title=f"Failed trials ({len(failed)}, first {min(shown, len(failed))} shown)")
    table.add_column("trial", justify="right")
    table.add_column("outcome")
    table.add_column("reason")
    for trial in failed[:shown]:
        lines = (trial["error"] or "").strip().splitlines()
        table.add_row(str(trial["number"]), trial["outcome"] or "", Text(lines[0] if lines else "no reason recorded"))
    console.print(table)
