"""The report's figures as PNG bytes: the front projected on every objective pair, and parallel coordinates.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), from a `report_dict`.
"""
import io
import re
from dataclasses import dataclass
from itertools import combinations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vitnas.nas.report_format import axis_label

FRONT_COLOUR = "#e4572e"  # Pareto members; nothing else on the page uses it, which the browser test relies on
OTHER_COLOUR = "#a0a0a0"
DPI = 100


@dataclass(frozen=True)
class Plot:
    """One rendered figure: a caption, a file-name-safe slug and the PNG itself."""

    title: str
    slug: str
    png: bytes


def plot_report(report: dict) -> list[Plot]:
    """Every pair projection then the parallel-coordinates view; nothing when no trial has objective values."""
    ranked = _ranked_trials(report)
    if not ranked:
        return []
    objectives = report["objectives"]
    plots = [_pair_plot(report, ranked, i, j) for i, j in combinations(range(len(objectives)), 2)]
    plots.append(_parallel_plot(report, ranked))
    return plots


def _ranked_trials(report: dict) -> list[dict]:
    """COMPLETE trials with a value for every objective (report_dict turned non-finite values into None)."""
    names = [objective["name"] for objective in report["objectives"]]
    return [trial for trial in report["trials"] if trial["state"] == "COMPLETE"
            and all(trial["values"].get(name) is not None for name in names)]


def _pair_plot(report: dict, ranked: list[dict], i: int, j: int) -> Plot:
    """Objective i against objective j: every completed trial, the front in colour and numbered, the knee ringed."""
    x_objective, y_objective = report["objectives"][i], report["objectives"][j]
    position = {trial["number"]: (trial["values"][x_objective["name"]], trial["values"][y_objective["name"]])
                for trial in ranked}
    front = set(report["pareto"])
    figure = Figure(figsize=(5, 4), dpi=DPI)
    axes = figure.add_subplot()
    for members, colour, size in ((False, OTHER_COLOUR, 25), (True, FRONT_COLOUR, 45)):
        chosen = [position[number] for number in position if (number in front) == members]
        axes.scatter([x for x, _ in chosen], [y for _, y in chosen], s=size, color=colour,
                     label="Pareto front" if members else "other completed", zorder=2 + members)
    for number in report["pareto"]:
        axes.annotate(str(number), position[number], textcoords="offset points", xytext=(5, 5), fontsize=7)
    if report["knee"] is not None:
        axes.scatter(*position[report["knee"]], s=160, facecolors="none", edgecolors="black", linewidths=1.2,
                     label="knee", zorder=4)
    axes.set_xlabel(_axis_label(x_objective))
    axes.set_ylabel(_axis_label(y_objective))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    title = f"{y_objective['name']} vs {x_objective['name']}"
    axes.set_title(_matplotlib_text(title), fontsize=10)
    slug = f"pareto-{i + 1}-{_slug(x_objective['name'])}-vs-{j + 1}-{_slug(y_objective['name'])}"
    return Plot(title=title, slug=slug, png=_png(figure))


def _parallel_plot(report: dict, ranked: list[dict]) -> Plot:
    """One vertical axis per objective, scaled so the best completed value is at the top; the front drawn on top."""
    objectives = report["objectives"]
    front = set(report["pareto"])
    scaled = {trial["number"]: [] for trial in ranked}
    for objective in objectives:
        values = [trial["values"][objective["name"]] for trial in ranked]
        low, high = min(values), max(values)
        for trial, value in zip(ranked, values):
            position = 0.5 if high == low else (value - low) / (high - low)
            scaled[trial["number"]].append(position if objective["direction"] == "maximize" else 1 - position)
    figure = Figure(figsize=(max(6.0, 1.8 * len(objectives)), 4), dpi=DPI)
    axes = figure.add_subplot()
    positions = list(range(len(objectives)))
    for members, colour, width, alpha in ((False, OTHER_COLOUR, 1.0, 0.6), (True, FRONT_COLOUR, 2.0, 1.0)):
        for trial in ranked:
            if (trial["number"] in front) == members:
                axes.plot(positions, scaled[trial["number"]], color=colour, linewidth=width, alpha=alpha,
                          marker="o", markersize=3, zorder=2 + members)
    for position, objective in zip(positions, objectives):
        axes.axvline(position, color="black", linewidth=0.8, zorder=1)
        values = [trial["values"][objective["name"]] for trial in ranked]
        best, worst = (max(values), min(values)) if objective["direction"] == "maximize" else (min(values), max(values))
        axes.annotate(f"{best:.4g}", (position, 1.0), textcoords="offset points", xytext=(3, 4), fontsize=7)
        axes.annotate(f"{worst:.4g}", (position, 0.0), textcoords="offset points", xytext=(3, -10), fontsize=7)
    axes.set_xticks(positions, [_axis_label(objective) for objective in objectives], fontsize=8)
    axes.set_yticks([])
    axes.set_ylim(-0.08, 1.08)
    axes.set_xlim(-0.3, len(objectives) - 0.7)
    axes.set_title(f"Parallel coordinates of {len(ranked)} completed trials (top = best; "
                   f"Pareto front in colour)", fontsize=10)
    return Plot(title="Parallel coordinates", slug="parallel", png=_png(figure))


def _axis_label(objective: dict) -> str:
    return _matplotlib_text(axis_label(objective))


def _matplotlib_text(text: str) -> str:
    """Escape '$' so user-chosen names are drawn literally, never parsed as mathtext."""
    return text.replace("$", r"\$")


def _slug(name: str) -> str:
    """A file-name-safe version of an objective name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "objective"


def _png(figure: Figure) -> bytes:
    """Render the figure on an Agg canvas into PNG bytes."""
    FigureCanvasAgg(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
