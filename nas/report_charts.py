"""What each report chart shows, computed once from the report's data and drawn twice: as a PNG by `report_plots`
(matplotlib) and, for an interactive page, as a plotly figure by `report_interactive`. The views here are plain
numbers and labels, so both drawings show the same thing.

Every point of a trial carries the trial's number, which the page's script uses to show that trial on click.
"""
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from types import ModuleType

from vitnas.nas import pareto
from vitnas.nas.metrics import METRICS, objective_values
from vitnas.nas.report_format import axis_label, config_summary, format_number
from vitnas.nas.records import Objective
from vitnas.nas.report_importance import ABSENT, Importance, choice_order, dimension_table, ranked_trials
from vitnas.nas.report_page import Chart
from vitnas.nas.report_progress import ProgressStep

# trial groups, drawn in this order (later on top); the front's colour is used by nothing else on the page
GROUPS = ("failed", "pruned", "other", "front")
GROUP_NAMES = {"failed": "failed (values it measured)", "pruned": "pruned (values when stopped)",
               "other": "other completed", "front": "Pareto front"}
COLOURS = {"front": "#e4572e", "other": "#8c8c8c", "pruned": "#4c78a8", "failed": "#222222"}
LOG_RATIO = 100  # an axis whose positive values span more than this factor is drawn on a log scale
TOP_DIMENSIONS = 15  # dimensions drawn in the importance chart (the table lists all)
CHOICE_DIMENSIONS = 3  # categorical dimensions whose per-choice distributions are drawn


@dataclass(frozen=True)
class Series:
    group: str  # one of GROUPS
    trials: list[int]
    x: list[float]
    y: list[float]
    hover: list[str]


@dataclass(frozen=True)
class PairView:
    slug: str
    title: str
    x_label: str
    y_label: str
    x_log: bool
    y_log: bool
    series: list[Series]
    staircase: list[tuple[float, float]]  # this pair's own 2-D front, in x order
    step: str  # "hv" or "vh": which way the staircase turns, so its corners lie in the region the front dominates
    knee: tuple[float, float] | None


@dataclass(frozen=True)
class Axis:
    label: str
    values: list[float]
    better: str  # "up" (maximize), "down" (minimize) or "" (a dimension)
    ticks: list[str] | None = None  # a categorical dimension: value i is ticks[i]
    log: bool = False  # values are log10 of the objective


@dataclass(frozen=True)
class ParallelView:
    axes: list[Axis]
    trials: list[int]
    groups: list[str]
    left_out: int  # finished trials without a value for every objective


@dataclass(frozen=True)
class ChoiceView:
    dimension: str
    objectives: list[str]  # axis labels
    choices: list[str]
    values: list[dict[str, list[float]]]  # per objective: choice -> values
    trials: list[dict[str, list[int]]]  # per objective: choice -> trial numbers
    logs: list[bool]  # per objective: drawn on a log scale


@dataclass(frozen=True)
class Bar:
    """One arm of a comparison: mean with its confidence interval, the per-seed values and the paper's figure."""

    label: str
    mean: float | None
    low: float | None
    high: float | None
    points: tuple[float, ...] = ()
    published: float | None = None


@dataclass(frozen=True)
class BarsView:
    title: str
    y_label: str
    bars: list[Bar]
    confidence: float


# ---- views of a report_dict ----------------------------------------------------------------------------------------

def trial_group(trial: dict, front: set[int]) -> str | None:
    if trial["state"] == "COMPLETE":
        return "front" if trial["number"] in front else "other"
    return {"PRUNED": "pruned", "FAIL": "failed"}.get(trial["state"])


def placed_values(report: dict, trial: dict) -> dict[str, float]:
    """The objective values a trial can be drawn at: a completed trial's own, or what a pruned or failed trial
    measured before it stopped (its metrics), objective by objective; non-finite values are left out."""
    if trial["state"] == "COMPLETE":
        values = trial["values"]
    else:
        values = {}
        for objective in report["objectives"]:
            if objective["name"] in METRICS:
                try:
                    values.update(objective_values([Objective(**objective)], trial["metrics"]))
                except (KeyError, TypeError, ValueError):
                    pass
    return {k: v for k, v in values.items() if v is not None and math.isfinite(v)}


def hover_line(report: dict, trial: dict) -> str:
    values = " · ".join(f"{o['name']} {format_number(trial['values'].get(o['name']))}" for o in report["objectives"]
                        if trial["values"].get(o["name"]) is not None)
    state = "" if trial["state"] == "COMPLETE" else f" ({trial['state'].lower()})"
    return f"trial {trial['number']}{state}: {config_summary(trial['config'], limit=None)}" + (
        f"<br>{values}" if values else "")


def log_axis(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_RATIO


def pair_views(report: dict) -> list[PairView]:
    """One view per objective pair: every trial placeable on both axes, by group, with the pair's own 2-D front."""
    front = set(report["pareto"])
    placed = [(trial, placed_values(report, trial)) for trial in report["trials"]]
    views = []
    objectives = report["objectives"]
    for i, j in combinations(range(len(objectives)), 2):
        x_o, y_o = objectives[i], objectives[j]
        series = []
        for group in GROUPS:
            members = [(t, v) for t, v in placed if trial_group(t, front) == group and x_o["name"] in v
                       and y_o["name"] in v]
            if members:
                series.append(Series(group, [t["number"] for t, _ in members], [v[x_o["name"]] for _, v in members],
                                     [v[y_o["name"]] for _, v in members],
                                     [hover_line(report, t) for t, _ in members]))
        complete = [(v[x_o["name"]], v[y_o["name"]]) for t, v in placed if t["state"] == "COMPLETE"
                    and x_o["name"] in v and y_o["name"] in v]
        staircase = sorted(complete[k] for k in pareto.non_dominated(complete, [x_o["direction"], y_o["direction"]]))
        knee = next(((v[x_o["name"]], v[y_o["name"]]) for t, v in placed if t["number"] == report["knee"]), None)
        xs = [x for s in series for x in s.x]
        ys = [y for s in series for y in s.y]
        views.append(PairView(
            slug=f"pareto-{i + 1}-{_slug(x_o['name'])}-vs-{j + 1}-{_slug(y_o['name'])}",
            title=f"{y_o['name']} vs {x_o['name']}", x_label=axis_label(x_o), y_label=axis_label(y_o),
            x_log=log_axis(xs), y_log=log_axis(ys), series=series, staircase=staircase if complete else [],
            step="hv" if x_o["direction"] == "minimize" else "vh", knee=knee))
    return views


def parallel_view(report: dict, importance: Importance | None, dimensions: int = 4) -> ParallelView:
    """Objectives, then the `dimensions` most important architecture dimensions, for every trial with a value for
    each objective (completed ones, and pruned or failed ones that measured them); a log axis for wide ranges."""
    front = set(report["pareto"])
    names = [o["name"] for o in report["objectives"]]
    finished = [t for t in report["trials"] if trial_group(t, front) is not None]
    placed = [(t, placed_values(report, t)) for t in finished]
    shown = [(t, v) for t, v in placed if all(name in v for name in names)]
    axes = []
    for objective in report["objectives"]:
        values = [v[objective["name"]] for _, v in shown]
        log = log_axis(values)
        axes.append(Axis(axis_label(objective) + (" (log scale)" if log else ""),
                         [math.log10(x) for x in values] if log else values,
                         "up" if objective["direction"] == "maximize" else "down", log=log))
    if importance is not None and shown:
        columns, categorical = dimension_table([t["config"] for t, _ in shown])
        for name in [d for d in importance.dimensions if d in columns][:dimensions]:
            column = columns[name]
            if name in categorical:
                ticks = sorted(set(column), key=choice_order)
                axes.append(Axis(name, [float(ticks.index(c)) for c in column], "", ticks=ticks))
            else:
                axes.append(Axis(name, column, ""))
    return ParallelView(axes, [t["number"] for t, _ in shown], [trial_group(t, front) for t, _ in shown],
                        len(finished) - len(shown))


def choice_views(report: dict, importance: Importance) -> list[ChoiceView]:
    """For the CHOICE_DIMENSIONS categorical dimensions that matter most: each objective's values per choice."""
    trials = ranked_trials(report)
    columns, _ = dimension_table([t["config"] for t in trials])
    # a setting most trials lack (another mixer kind's) would compare a few trials with 'absent': not a direction
    chosen = [d for d in importance.dimensions if d in importance.categorical
              and 2 * columns[d].count(ABSENT) <= len(trials)][:CHOICE_DIMENSIONS]
    views = []
    for dimension in chosen:
        choices = sorted(set(columns[dimension]), key=choice_order)
        per_values, per_trials = [], []
        for objective in report["objectives"]:
            per_values.append({c: [t["values"][objective["name"]] for t, v in zip(trials, columns[dimension])
                                   if v == c] for c in choices})
            per_trials.append({c: [t["number"] for t, v in zip(trials, columns[dimension]) if v == c]
                               for c in choices})
        logs = [log_axis([x for xs in values.values() for x in xs]) for values in per_values]
        views.append(ChoiceView(dimension, [axis_label(o) for o in report["objectives"]], choices, per_values,
                                per_trials, logs))
    return views


def _slug(name: str) -> str:
    """A file-name-safe version of a name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "objective"


# ---- charts: each view drawn as PNG and, when interactive, as a plotly figure ----------------------------------
# (the drawing modules import the views above, and matplotlib and plotly are slow to import: both come in late)

def front_charts(report: dict, importance: Importance | None, interactive: bool) -> list[Chart]:
    from vitnas.nas import report_plots as png

    if not report["pareto"]:  # nothing completed: no axis ranges worth drawing, the page says why instead
        return []
    charts = []
    for view in pair_views(report):
        figure = _interactive(interactive, lambda draw: draw.pair_figure(view))
        charts.append(Chart(view.title, view.slug, png.pair_png(view), figure,
                            caption=f"{view.title}: every trial placeable on both axes; dashed: the front of this "
                                    "pair alone; ringed: the knee"))
    view = parallel_view(report, importance)
    if view.trials:
        left = f"; {view.left_out} finished trials lack a value and are left out" if view.left_out else ""
        charts.append(Chart("Parallel coordinates", "parallel", png.parallel_png(view),
                            _interactive(interactive, lambda draw: draw.parallel_figure(view)),
                            caption="Parallel coordinates: objectives (better is up) and the most important "
                                    f"dimensions; drag along an axis to filter{left}", wide=True))
    return charts


def progress_chart(report: dict, steps: list[ProgressStep], interactive: bool) -> Chart:
    from vitnas.nas import report_plots as png

    reference = ", ".join(f"{k} = {format_number(v)}" for k, v in report["reference_point"].items())
    return Chart("Hypervolume over trials and wall time", "hypervolume", png.progress_png(steps),
                 _interactive(interactive, lambda draw: draw.progress_figure(steps)),
                 caption=f"Hypervolume after each finished trial; reference point {reference} (the report's own)",
                 wide=True)


def importance_chart(report: dict, importance: Importance, interactive: bool) -> Chart:
    from vitnas.nas import report_plots as png

    objectives = [o["name"] for o in report["objectives"]]
    figure = _interactive(interactive, lambda draw: draw.importance_figure(importance, objectives, TOP_DIMENSIONS))
    drawing = png.importance_png(importance, objectives, TOP_DIMENSIONS)
    return Chart("Importance of each dimension", "importance", drawing, figure,
                 caption=f"Share of each objective explained by each dimension, over {importance.trials} complete "
                         f"trials ({min(TOP_DIMENSIONS, len(importance.dimensions))} most important shown)",
                 wide=True)


def choice_charts(report: dict, importance: Importance, interactive: bool) -> list[Chart]:
    from vitnas.nas import report_plots as png

    return [Chart(f"Objectives by {view.dimension}", f"by-{_slug(view.dimension)}", png.choice_png(view),
                  _interactive(interactive, lambda draw: draw.choice_figure(view)),
                  caption=f"Each objective per choice of {view.dimension}: box = quartiles, points = trials",
                  wide=True) for view in choice_views(report, importance)]


def bars_chart(view: BarsView, slug: str, interactive: bool | None = None) -> Chart:
    """Bars with confidence intervals, per-seed points and the paper's figure (for the ablation report);
    interactive None: when plotly is installed."""
    from vitnas.nas import report_plots as png
    from vitnas.nas.report_page import plotly_installed

    wanted = plotly_installed() if interactive is None else interactive
    return Chart(view.title, _slug(slug), png.bars_png(view), _interactive(wanted, lambda draw: draw.bars_figure(view)),
                 caption=f"{view.title}: bar = mean, whisker = {view.confidence:.0%} confidence interval, "
                         "dots = seeds, diamond = the paper's figure")


def _interactive(wanted: bool, draw: Callable[[ModuleType], object]):
    """The plotly drawing `draw(report_interactive)`, only for an interactive page (plotly is imported only then)."""
    if not wanted:
        return None
    from vitnas.nas import report_interactive

    return draw(report_interactive)
