"""The HTML report page: one self-contained document (inline CSS, plots as base64 PNG, no scripts, no network).

Every string that comes from the study (names, configs, errors) goes through html.escape: configs are user files.
"""
import base64
import json
from html import escape

from vitnas.nas.pareto import KNEE_RULE, REFERENCE_RULE
from vitnas.nas.report_format import config_summary, describe_objective, format_number
from vitnas.nas.report_plots import Plot

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; } figcaption { font-size: 12px; color: #555; }
img { border: 1px solid #ddd; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
pre { margin: 0; font-size: 12px; white-space: pre-wrap; }
.notice { padding: 12px; background: #f4f4f4; border: 1px solid #ccc; }
"""


def render_page(report: dict, plots: list[Plot]) -> str:
    """The whole page for a report_dict and its rendered plots (an empty list when nothing is complete)."""
    title = f"vitnas report: {report['study']}"
    sections = [_summary(report), _plots(plots), _front_table(report), _trials_table(report)]
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{escape(title)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n" + "\n".join(sections)
            + "\n</body>\n</html>\n")


def _summary(report: dict) -> str:
    counts = report["counts"]
    objectives = "; ".join(describe_objective(o) for o in report["objectives"])
    lines = [f"Objectives: {objectives}",
             f"Trials: {counts['complete']} complete, {counts['failed']} failed, {counts['pruned']} pruned, "
             f"{counts['running']} running or waiting"]
    if report["pareto"]:
        reference = ", ".join(f"{name} = {format_number(value)}" for name, value in report["reference_point"].items())
        lines += [f"Pareto front: {len(report['pareto'])} trials ({', '.join(map(str, report['pareto']))})",
                  f"Hypervolume: {format_number(report['hypervolume'])} with reference point {reference} "
                  f"({REFERENCE_RULE})",
                  f"Knee: trial {report['knee']} ({KNEE_RULE})"]
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<h2>Summary</h2>\n<ul>{items}</ul>"


def _plots(plots: list[Plot]) -> str:
    if not plots:
        return ('<h2>Plots</h2>\n<p class="notice">No completed trials: there is no Pareto front to plot yet. '
                "The table below lists every trial and why it did not complete.</p>")
    figures = "\n".join(
        f'<figure><img alt="{escape(plot.title)}" src="data:image/png;base64,{base64.b64encode(plot.png).decode()}">'
        f"<figcaption>{escape(plot.title)}</figcaption></figure>" for plot in plots)
    return f'<h2>Plots</h2>\n<div class="plots">\n{figures}\n</div>'


def _front_table(report: dict) -> str:
    """Objective values and the full config of every front member, knee marked."""
    if not report["pareto"]:
        return ""
    by_number = {trial["number"]: trial for trial in report["trials"]}
    names = [objective["name"] for objective in report["objectives"]]
    header = "".join(f"<th>{escape(name)}</th>" for name in ["trial", *names, "config"])
    rows = []
    for number in report["pareto"]:
        trial = by_number[number]
        knee = " (knee)" if number == report["knee"] else ""
        cells = [f"{number}{knee}", *(format_number(trial["values"][name]) for name in names)]
        config = json.dumps(trial["config"], indent=1, sort_keys=True)
        rows.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells)
                    + f"<td><pre>{escape(config)}</pre></td></tr>")
    return f"<h2>Configs of the Pareto front</h2>\n<table>\n<tr>{header}</tr>\n" + "\n".join(rows) + "\n</table>"


def _trials_table(report: dict) -> str:
    """Every trial in one line: state, objective values, duration, short config, error."""
    if not report["trials"]:
        return "<h2>All trials</h2>\n<p class=\"notice\">This study has no trials yet.</p>"
    names = [objective["name"] for objective in report["objectives"]]
    header = "".join(f"<th>{escape(name)}</th>" for name in ["trial", "state", *names, "seconds", "config", "error"])
    rows = []
    for trial in report["trials"]:
        cells = [str(trial["number"]), trial["state"], *(format_number(trial["values"].get(name)) for name in names),
                 format_number(trial["duration_s"]), config_summary(trial["config"]), trial["error"] or ""]
        rows.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
    return f"<h2>All trials</h2>\n<table>\n<tr>{header}</tr>\n" + "\n".join(rows) + "\n</table>"
