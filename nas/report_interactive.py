"""The report's charts as interactive plotly figures (the optional `report` extra), drawing the views of
`report_charts`: hover shows a trial's architecture in one line, and every trial's point carries its number as
customdata[0], which the page's script uses to open the trial on click.
"""
import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vitnas.nas.report_charts import COLOURS, GROUP_NAMES, BarsView, ChoiceView, PairView, ParallelView
from vitnas.nas.report_format import si_number
from vitnas.nas.report_importance import EVALUATORS, Importance
from vitnas.nas.report_progress import ProgressStep

SYMBOLS = {"front": "circle", "other": "circle", "pruned": "square-open", "failed": "x-thin-open"}
SIZES = {"front": 10, "other": 7, "pruned": 7, "failed": 8}
LAYOUT = {"template": "plotly_white", "font": {"size": 12}, "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
          "hoverlabel": {"align": "left"}, "legend": {"font": {"size": 11}}}
GROUP_LEVELS = {"failed": 0, "pruned": 1, "other": 2, "front": 3}


def pair_figure(view: PairView) -> go.Figure:
    figure = go.Figure(layout={**LAYOUT, "height": 420, "title": {"text": view.title, "x": 0.02},
                               "clickmode": "event", "dragmode": "zoom"})
    if len(view.staircase) > 1:
        xs, ys = zip(*view.staircase)
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"shape": view.step, "dash": "dash", "width": 1,
                                                                     "color": COLOURS["front"]},
                                    name="front of this pair", hoverinfo="skip"))
    for series in view.series:
        figure.add_trace(go.Scatter(
            x=series.x, y=series.y, mode="markers", name=GROUP_NAMES[series.group],
            customdata=[[n] for n in series.trials], text=series.hover, hovertemplate="%{text}<extra></extra>",
            marker={"color": COLOURS[series.group], "size": SIZES[series.group], "symbol": SYMBOLS[series.group],
                    "line": {"width": 1, "color": "white" if series.group in ("front", "other") else
                             COLOURS[series.group]}},
            unselected={"marker": {"opacity": 0.12}}))
    if view.knee is not None:
        figure.add_trace(go.Scatter(x=[view.knee[0]], y=[view.knee[1]], mode="markers", name="knee",
                                    hoverinfo="skip", marker={"size": 20, "symbol": "circle-open",
                                                              "color": "black", "line": {"width": 1.5}}))
    figure.update_xaxes(title=view.x_label, type="log" if view.x_log else "linear")
    figure.update_yaxes(title=view.y_label, type="log" if view.y_log else "linear")
    return figure


def parallel_figure(view: ParallelView) -> go.Figure:
    """plotly's parcoords: drag along any axis to brush it (the other lines fade); the page's script extends the
    brush to the pair charts. Lines are coloured by group: failed, pruned, other completed, front."""
    dimensions = []
    for axis in view.axes:
        low, high = min(axis.values), max(axis.values)
        dimension = {"label": axis.label, "values": axis.values,
                     "range": [high, low] if axis.better == "down" else [low, high]}
        if axis.ticks is not None:
            dimension.update(tickvals=list(range(len(axis.ticks))), ticktext=axis.ticks,
                             range=[-0.2, len(axis.ticks) - 0.8])
        elif axis.log:  # values are log10: ticks at powers of ten, labelled with the value itself
            powers = list(range(math.ceil(low), math.floor(high) + 1)) or [low, high]
            dimension.update(tickvals=powers, ticktext=[si_number(10 ** p) for p in powers])
        dimensions.append(dimension)
    levels = [GROUP_LEVELS[g] for g in view.groups]
    scale = [[i / 3, COLOURS[g]] for g, i in GROUP_LEVELS.items()]
    figure = go.Figure(go.Parcoords(dimensions=dimensions, line={"color": levels, "colorscale": scale, "cmin": 0,
                                                                 "cmax": 3}, labelangle=-12, labelside="bottom"),
                       layout={**LAYOUT, "height": 440, "margin": {"l": 70, "r": 70, "t": 40, "b": 70},
                               "meta": {"trials": view.trials}})
    return figure


def progress_figure(steps: list[ProgressStep]) -> go.Figure:
    timed = bool(steps) and steps[0].elapsed_s is not None
    figure = make_subplots(rows=1, cols=2 if timed else 1, horizontal_spacing=0.08,
                           subplot_titles=["over trials finished", "over wall time"] if timed else None)
    text = [f"after trial {s.trial}: hypervolume {s.hypervolume:.4g}" for s in steps]
    figure.add_trace(go.Scatter(x=[s.finished for s in steps], y=[s.hypervolume for s in steps], mode="lines+markers",
                                line={"shape": "hv", "color": COLOURS["front"]}, text=text, customdata=[[s.trial]
                                                                                                        for s in steps],
                                hovertemplate="%{text}<extra></extra>", showlegend=False), row=1, col=1)
    figure.update_xaxes(title="trials finished", row=1, col=1)
    if timed:
        figure.add_trace(go.Scatter(x=[s.elapsed_s / 60 for s in steps], y=[s.hypervolume for s in steps],
                                    mode="lines+markers", line={"shape": "hv", "color": COLOURS["front"]}, text=text,
                                    customdata=[[s.trial] for s in steps], hovertemplate="%{text}<extra></extra>",
                                    showlegend=False), row=1, col=2)
        figure.update_xaxes(title="minutes since the first trial started", row=1, col=2)
    figure.update_yaxes(title="hypervolume", row=1, col=1)
    figure.update_layout(**LAYOUT, height=340)
    return figure


def importance_figure(importance: Importance, objectives: list[str], top: int) -> go.Figure:
    dimensions = importance.dimensions[:top]
    columns = [(evaluator, objective) for objective in objectives for evaluator in EVALUATORS]
    grid = [[importance.scores[e][o][d] for e, o in columns] for d in dimensions]
    figure = go.Figure(go.Heatmap(
        z=grid, x=[f"{o}<br>{e}" for e, o in columns], y=dimensions, colorscale="Oranges", zmin=0,
        text=[[f"{v:.2f}" for v in row] for row in grid], texttemplate="%{text}", showscale=False,
        hovertemplate="%{y}: %{z:.3f} of %{x}<extra></extra>"),
        layout={**LAYOUT, "height": 120 + 26 * len(dimensions), "margin": {"l": 200, "r": 20, "t": 60, "b": 20}})
    figure.update_xaxes(side="top")
    figure.update_yaxes(autorange="reversed")
    return figure


def choice_figure(view: ChoiceView) -> go.Figure:
    figure = make_subplots(rows=1, cols=len(view.objectives), horizontal_spacing=0.07,
                           subplot_titles=view.objectives)
    for column, (values, trials) in enumerate(zip(view.values, view.trials), start=1):
        for choice in view.choices:
            figure.add_trace(go.Box(
                y=values[choice], x=[choice] * len(values[choice]), name=choice, boxpoints="all", jitter=0.4,
                pointpos=0, customdata=[[n] for n in trials[choice]], marker={"color": COLOURS["front"], "size": 6},
                line={"color": "#555", "width": 1}, fillcolor="rgba(0,0,0,0)", showlegend=False,
                hovertemplate=f"trial %{{customdata[0]}}: {choice}<br>%{{y:.4g}}<extra></extra>"),
                row=1, col=column)
        figure.update_yaxes(type="log" if view.logs[column - 1] else "linear", row=1, col=column)
    figure.update_layout(**LAYOUT, height=380, title={"text": f"Objectives by {view.dimension}", "x": 0.02})
    figure.update_layout(margin={"t": 80})  # room for the title above the panels' own titles
    return figure


def bars_figure(view: BarsView) -> go.Figure:
    labels = [bar.label for bar in view.bars]
    figure = go.Figure(layout={**LAYOUT, "height": 380, "title": {"text": view.title, "x": 0.02},
                               "yaxis": {"title": view.y_label}})
    figure.add_trace(go.Bar(
        x=labels, y=[bar.mean for bar in view.bars], name="mean", marker={"color": "#c9d6e8",
                                                                          "line": {"color": "#4c78a8", "width": 1}},
        error_y={"type": "data", "symmetric": False, "color": "black",
                 "array": [None if None in (b.mean, b.high) else b.high - b.mean for b in view.bars],
                 "arrayminus": [None if None in (b.mean, b.low) else b.mean - b.low for b in view.bars]},
        hovertemplate=f"%{{x}}: mean %{{y:.4g}} ({view.confidence:.0%} CI)<extra></extra>"))
    seeds = [(bar.label, point) for bar in view.bars for point in bar.points]
    if seeds:
        figure.add_trace(go.Scatter(x=[s[0] for s in seeds], y=[s[1] for s in seeds], mode="markers", name="seed",
                                    marker={"color": "#222", "size": 6}))
    published = [(bar.label, bar.published) for bar in view.bars if bar.published is not None]
    if published:
        figure.add_trace(go.Scatter(x=[p[0] for p in published], y=[p[1] for p in published], mode="markers",
                                    name="paper", marker={"color": COLOURS["front"], "size": 11, "symbol": "diamond"}))
    return figure
