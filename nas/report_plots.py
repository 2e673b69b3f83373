"""The report's charts as PNG bytes (saved beside the page for papers, and the page itself when plotly is missing).

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch); draws the views of
`report_charts`, so the PNG and the interactive figure show the same thing.
"""
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vitnas.nas.report_charts import COLOURS, GROUP_NAMES, BarsView, ChoiceView, PairView, ParallelView
from vitnas.nas.report_importance import EVALUATORS, Importance
from vitnas.nas.report_progress import ProgressStep

DPI = 100
MARKERS = {"front": "o", "other": "o", "pruned": "s", "failed": "x"}
SIZES = {"front": 45, "other": 25, "pruned": 22, "failed": 30}


def pair_png(view: PairView) -> bytes:
    """Objective against objective: trials by group, the pair's own front dashed, front members numbered, the knee
    ringed."""
    figure = Figure(figsize=(5.6, 4.2), dpi=DPI)
    axes = figure.add_subplot()
    for order, series in enumerate(view.series):
        hollow = series.group == "pruned"
        axes.scatter(series.x, series.y, s=SIZES[series.group], marker=MARKERS[series.group],
                     facecolors="none" if hollow else COLOURS[series.group], edgecolors=COLOURS[series.group],
                     label=GROUP_NAMES[series.group], zorder=2 + order)
        if series.group == "front":
            for number, x, y in zip(series.trials, series.x, series.y):
                axes.annotate(str(number), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
    if len(view.staircase) > 1:
        xs, ys = zip(*view.staircase)
        axes.step(xs, ys, where="post" if view.step == "hv" else "pre", linestyle="--", color=COLOURS["front"],
                  linewidth=0.9, alpha=0.7, zorder=1)
    if view.knee is not None:
        axes.scatter(*view.knee, s=170, facecolors="none", edgecolors="black", linewidths=1.2, label="knee", zorder=9)
    axes.set_xscale("log" if view.x_log else "linear")
    axes.set_yscale("log" if view.y_log else "linear")
    axes.set_xlabel(_text(view.x_label))
    axes.set_ylabel(_text(view.y_label))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    axes.set_title(_text(view.title), fontsize=10)
    return _png(figure)


def parallel_png(view: ParallelView) -> bytes:
    """One vertical axis per objective and dimension, each scaled to its range (objectives: better is up)."""
    figure = Figure(figsize=(max(7.0, 1.9 * len(view.axes)), 4.2), dpi=DPI)
    axes = figure.add_subplot()
    scaled = np.array([_unit(axis) for axis in view.axes]).T  # rows: trials
    positions = np.arange(len(view.axes))
    for group in ("failed", "pruned", "other", "front"):
        for row, member in zip(scaled, view.groups):
            if member == group:
                axes.plot(positions, row, color=COLOURS[group], linewidth=2.0 if group == "front" else 1.0,
                          alpha=1.0 if group == "front" else 0.55, marker="o", markersize=3,
                          linestyle=":" if group in ("pruned", "failed") else "-")
    for position, axis in zip(positions, view.axes):
        axes.axvline(position, color="black", linewidth=0.8, zorder=0)
        for level, text in _axis_ends(axis):
            axes.annotate(text, (position, level), textcoords="offset points", xytext=(3, 4 if level else -10),
                          fontsize=7)
    axes.set_xticks(positions, [_text(axis.label) for axis in view.axes], fontsize=8, rotation=12)
    axes.set_yticks([])
    axes.set_ylim(-0.08, 1.08)
    axes.set_xlim(-0.3, len(view.axes) - 0.5)
    axes.set_title(f"Parallel coordinates of {len(view.trials)} trials (objectives: better is up; "
                   "Pareto front in colour)", fontsize=10)
    return _png(figure)


def _unit(axis) -> list[float]:
    """An axis's values on [0, 1]; objectives flipped so that better is up."""
    values = np.asarray(axis.values, dtype=float)
    if axis.ticks is not None:
        low, high = 0.0, max(len(axis.ticks) - 1, 1)
    else:
        low, high = values.min(), values.max()
    unit = np.full_like(values, 0.5) if high == low else (values - low) / (high - low)
    return list(1 - unit if axis.better == "down" else unit)


def _axis_ends(axis) -> list[tuple[float, str]]:
    """The labels at an axis's bottom (0) and top (1)."""
    if axis.ticks is not None:
        return [(0.0, axis.ticks[0]), (1.0, axis.ticks[-1])] if len(axis.ticks) > 1 else [(0.5, axis.ticks[0])]
    low, high = min(axis.values), max(axis.values)
    shown = [10 ** v for v in (low, high)] if axis.log else [low, high]
    bottom, top = (shown[1], shown[0]) if axis.better == "down" else (shown[0], shown[1])
    return [(0.0, f"{bottom:.4g}"), (1.0, f"{top:.4g}")]


def progress_png(steps: list[ProgressStep]) -> bytes:
    """Hypervolume after each finished trial, against the count of finished trials and against wall time."""
    timed = bool(steps) and steps[0].elapsed_s is not None
    figure = Figure(figsize=(10, 3.6), dpi=DPI)
    panels = figure.subplots(1, 2 if timed else 1, squeeze=False)[0]
    volumes = [s.hypervolume for s in steps]
    panels[0].step([s.finished for s in steps], volumes, where="post", color=COLOURS["front"])
    panels[0].set_xlabel("trials finished")
    if timed:
        panels[1].step([s.elapsed_s / 60 for s in steps], volumes, where="post", color=COLOURS["front"])
        panels[1].set_xlabel("minutes since the first trial started")
    for panel in panels:
        panel.set_ylabel("hypervolume")
        panel.grid(True, alpha=0.3)
    figure.suptitle("Hypervolume of the front so far (one reference point)", fontsize=10)
    return _png(figure)


def importance_png(importance: Importance, objectives: list[str], top: int) -> bytes:
    """A heat map: the `top` dimensions by objective and evaluator, each cell's share written in it."""
    dimensions = importance.dimensions[:top]
    columns = [(evaluator, objective) for objective in objectives for evaluator in EVALUATORS]
    grid = np.array([[importance.scores[e][o][d] for e, o in columns] for d in dimensions])
    figure = Figure(figsize=(max(6.0, 1.25 * len(columns) + 3), 0.32 * len(dimensions) + 1.6), dpi=DPI)
    axes = figure.add_subplot()
    axes.imshow(grid, cmap="Oranges", vmin=0, vmax=max(grid.max(), 1e-9), aspect="auto")
    for (row, column), share in np.ndenumerate(grid):
        axes.text(column, row, f"{share:.2f}", ha="center", va="center", fontsize=7,
                  color="white" if share > 0.6 * grid.max() else "black")
    axes.set_xticks(range(len(columns)), [f"{_text(o)}\n{e}" for e, o in columns], fontsize=8)
    axes.set_yticks(range(len(dimensions)), [_text(d) for d in dimensions], fontsize=8)
    axes.xaxis.tick_top()
    return _png(figure)


def choice_png(view: ChoiceView) -> bytes:
    """Each objective's values per choice of one dimension: box plots with every trial as a dot."""
    figure = Figure(figsize=(3.6 * len(view.objectives) + 0.6, 3.4), dpi=DPI)
    panels = figure.subplots(1, len(view.objectives), squeeze=False)[0]
    for panel, label, values, log in zip(panels, view.objectives, view.values, view.logs):
        data = [values[c] for c in view.choices]
        panel.boxplot(data, widths=0.5, showfliers=False)
        for position, points in enumerate(data, start=1):
            jitter = np.linspace(-0.12, 0.12, len(points)) if len(points) > 1 else [0.0]
            panel.scatter(position + np.asarray(jitter), points, s=12, color=COLOURS["front"], alpha=0.7, zorder=3)
        panel.set_xticks(range(1, len(view.choices) + 1), [_text(c) for c in view.choices], fontsize=8, rotation=20)
        panel.set_ylabel(_text(label), fontsize=8)
        panel.set_yscale("log" if log else "linear")
        panel.grid(True, axis="y", alpha=0.3)
    figure.suptitle(_text(f"Objectives by {view.dimension}"), fontsize=10)
    return _png(figure)


def bars_png(view: BarsView) -> bytes:
    """Bars at the means with confidence whiskers, each seed a dot, the paper's figure a diamond."""
    figure = Figure(figsize=(max(4.5, 1.1 * len(view.bars) + 2), 3.6), dpi=DPI)
    axes = figure.add_subplot()
    positions = np.arange(len(view.bars))
    means = [np.nan if b.mean is None else b.mean for b in view.bars]
    axes.bar(positions, means, width=0.6, color="#c9d6e8", edgecolor="#4c78a8")
    for position, bar in zip(positions, view.bars):
        if None not in (bar.mean, bar.low, bar.high):
            axes.errorbar(position, bar.mean, yerr=[[bar.mean - bar.low], [bar.high - bar.mean]], color="black",
                          capsize=4, linewidth=1)
        if bar.points:
            axes.scatter(np.full(len(bar.points), position) + np.linspace(-0.1, 0.1, len(bar.points)), bar.points,
                         s=14, color="#222", zorder=3)
        if bar.published is not None:
            axes.scatter(position, bar.published, marker="D", s=40, color=COLOURS["front"], zorder=4)
    axes.set_xticks(positions, [_text(b.label) for b in view.bars], fontsize=8)
    axes.set_ylabel(_text(view.y_label))
    axes.set_title(_text(view.title), fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)
    return _png(figure)


def _text(text: str) -> str:
    """Escape '$' so user-chosen names are drawn literally, never parsed as mathtext."""
    return text.replace("$", r"\$")


def _png(figure: Figure) -> bytes:
    """Render the figure on an Agg canvas into PNG bytes."""
    FigureCanvasAgg(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
