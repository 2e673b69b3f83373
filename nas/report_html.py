"""The study report page: what matters (importance per dimension and objective, objectives per choice), the front
(pair projections and parallel coordinates; hover a point for its architecture, click it for its config, metrics
and export command; brush an axis to filter), progress (hypervolume over trials and wall time), a diagram of every
front member, and every trial with its outcome.

Built on `report_page`; every string from the study goes through html.escape or inert JSON: configs are user files.
"""
import json
import shlex
from html import escape
from pathlib import Path

from vitnas.nas.pareto import KNEE_RULE, REFERENCE_RULE
from vitnas.nas.report_charts import (choice_charts, front_charts, importance_chart, placed_values,
                                      progress_chart)
from vitnas.nas.report_diagram import architecture_svg, legend_html
from vitnas.nas.report_format import FINAL_COLUMNS, config_summary, describe_objective, format_number
from vitnas.nas.report_importance import EVALUATORS, FANOVA_TREES, MIN_TRIALS, Importance, importance
from vitnas.nas.report_page import Section, html_page, json_script, table
from vitnas.nas.report_progress import hypervolume_progress

FEW_TRIALS = 30  # below this, importance is a hint: a random forest over tens of dimensions needs many trials
STYLE = """
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; }
.card h3 { font-size: 15px; margin: 2px 0 6px; } .card p { margin: 4px 0; font-size: 13px; }
.legend { font-size: 12px; color: #444; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin: 0 3px 0 8px; }
svg.arch { display: block; max-width: 100%; }
tr.FAIL td { background: #fdf0ee; } tr.PRUNED td { background: #eef3fa; } tr.front td:first-child { font-weight: bold; }
#trial-panel { position: fixed; top: 0; right: 0; width: 420px; height: 100%; overflow: auto; background: #fff;
  border-left: 1px solid #bbb; box-shadow: -4px 0 12px rgba(0,0,0,.12); padding: 12px 16px; box-sizing: border-box;
  z-index: 10; }
#trial-panel h3 { margin: 4px 0 8px; font-size: 16px; } #trial-panel h4 { margin: 12px 0 4px; font-size: 13px; }
#trial-panel button.close { float: right; font-size: 18px; border: none; background: none; cursor: pointer; }
#trial-panel pre { background: #f7f7f7; padding: 6px; }
button.show { font-size: 12px; cursor: pointer; }
"""
# The page's own script: open a trial's details on click, close them, carry a parallel-coordinates brush over to the
# pair charts. Text goes in through textContent only; the diagrams are the page's own escaped SVG.
SCRIPT = """
(function () {
  var trials = JSON.parse(document.getElementById("vitnas-trials").textContent);
  var panel = document.getElementById("trial-panel");
  function field(name) { return panel.querySelector('[data-field="' + name + '"]'); }
  function show(number) {
    var trial = trials[String(number)];
    if (!trial) { return; }
    field("title").textContent = "Trial " + number + " (" + trial.state + ")";
    field("summary").textContent = trial.summary;
    field("values").textContent = trial.values;
    field("export").textContent = trial.export;
    field("diagram").innerHTML = trial.diagram;
    field("config").textContent = JSON.stringify(trial.config, null, 2);
    field("metrics").textContent = JSON.stringify(trial.metrics, null, 2);
    panel.dataset.trial = String(number);
    panel.hidden = false;
  }
  panel.querySelector("button.close").addEventListener("click", function () { panel.hidden = true; });
  document.querySelectorAll("button[data-trial]").forEach(function (button) {
    button.addEventListener("click", function () { show(button.dataset.trial); });
  });
  document.querySelectorAll(".js-plotly-plot").forEach(function (plot) {
    plot.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (point && point.customdata) { show(point.customdata[0]); }
    });
  });
  var parallel = document.getElementById("chart-parallel");
  if (!parallel) { return; }
  parallel.on("plotly_restyle", function () {
    var order = parallel.layout.meta.trials, keep = null;
    parallel.data[0].dimensions.forEach(function (dimension) {
      var range = dimension.constraintrange;
      if (!range || !range.length) { return; }
      var ranges = Array.isArray(range[0]) ? range : [range];
      keep = keep || new Set(order);
      order.forEach(function (number, i) {
        var value = dimension.values[i];
        var inside = ranges.some(function (r) {
          return value >= Math.min(r[0], r[1]) && value <= Math.max(r[0], r[1]);
        });
        if (!inside) { keep.delete(number); }
      });
    });
    document.querySelectorAll('[data-chart^="pareto-"] .js-plotly-plot').forEach(function (plot) {
      var selected = plot.data.map(function (trace) {
        if (keep === null || !trace.customdata) { return null; }
        return trace.customdata.map(function (c, i) { return keep.has(c[0]) ? i : -1; })
          .filter(function (i) { return i >= 0; });
      });
      Plotly.restyle(plot, {selectedpoints: selected});
    });
  });
})();
"""
PANEL = """<aside id="trial-panel" hidden aria-live="polite">
<button type="button" class="close" title="close">&times;</button>
<h3 data-field="title"></h3><p data-field="summary"></p><div data-field="diagram"></div>
<h4>Values</h4><pre data-field="values"></pre>
<h4>Export it</h4><pre data-field="export"></pre>
<h4>Config</h4><pre data-field="config"></pre>
<h4>Metrics</h4><pre data-field="metrics"></pre>
</aside>"""


def study_page(report: dict, study_dir: Path | None, interactive: bool) -> tuple[str, list[Section]]:
    """The page's HTML and its sections (whose charts are the PNGs to write beside it)."""
    ranked = importance(report)
    sections = [_what_matters(report, ranked, interactive), _front(report, ranked, interactive),
                _progress(report, interactive), _members(report, study_dir), _trials(report)]
    sections = [section for section in sections if section is not None]
    tail = PANEL + json_script("vitnas-trials", _details(report, study_dir)) if interactive else ""
    page = html_page(f"vitnas report: {report['study']}", sections, lead=_lead(report), head=STYLE, tail=tail,
                     script=SCRIPT if interactive else "")
    return page, sections


def _lead(report: dict) -> list[str]:
    counts = report["counts"]
    lines = [f"Objectives: {'; '.join(describe_objective(o) for o in report['objectives'])}",
             f"Trials: {counts['complete']} complete, {counts['failed']} failed, {counts['pruned']} pruned, "
             f"{counts['running']} running or waiting"]
    if report["pareto"]:
        reference = ", ".join(f"{name} = {format_number(value)}" for name, value in report["reference_point"].items())
        count = len(report["pareto"])
        lines += [f"Pareto front: {count} trial{'s' if count > 1 else ''} ({', '.join(map(str, report['pareto']))}); "
                  f"knee: trial {report['knee']} ({KNEE_RULE})",
                  f"Hypervolume: {format_number(report['hypervolume'])} with reference point {reference} "
                  f"({REFERENCE_RULE})"]
    return lines


def _what_matters(report: dict, ranked: Importance | None, interactive: bool) -> Section:
    title = "What matters"
    if ranked is None:
        return Section(title, f'<p class="notice">Importance needs at least {MIN_TRIALS} completed trials whose '
                              "architectures differ; this study has not got them yet.</p>")
    objectives = [o["name"] for o in report["objectives"]]
    answers = []
    for objective in objectives:
        if objective in ranked.flat:
            answers.append(f"<li><b>{escape(objective)}</b>: the same in every trial, nothing to explain</li>")
            continue
        tops = [(e, max(ranked.scores[e][objective], key=ranked.scores[e][objective].get)) for e in EVALUATORS]
        said = "; ".join(f"{e}: <b>{escape(d)}</b> ({ranked.scores[e][objective][d]:.2f})" for e, d in tops)
        answers.append(f"<li>Most important for <b>{escape(objective)}</b>: {said}</li>")
    caution = (f" With fewer than {FEW_TRIALS} trials over {len(ranked.dimensions)} dimensions, read it as a hint."
               if ranked.trials < FEW_TRIALS else "")
    method = (f"Optuna's evaluators over the {ranked.trials} completed trials: fANOVA ({FANOVA_TREES} trees, the share "
              f"of the objective's variance a dimension explains) and PED-ANOVA (how differently the best "
              f"{ranked.top_trials} trials use a dimension than all trials do); each sums to 1 per objective. "
              "A stage or setting a trial lacks counts as the choice 'absent'." + caution)
    constant = (f"<p>Same in every trial, so not assessed: {escape(', '.join(ranked.constant))}.</p>"
                if ranked.constant else "")
    headers = ["dimension", "kind", *(f"{o} {e}" for o in objectives for e in EVALUATORS)]
    rows = [[d, "choice" if d in ranked.categorical else "number",
             *(f"{ranked.scores[e][o][d]:.3f}" for o in objectives for e in EVALUATORS)] for d in ranked.dimensions]
    body = f"<ul>{''.join(answers)}</ul><p>{escape(method)}</p>"
    charts = (importance_chart(report, ranked, interactive), *choice_charts(report, ranked, interactive))
    after = ("<details><summary>Every dimension's importance as a table</summary>"
             + table(headers, rows, numeric=frozenset(range(2, len(headers)))) + f"</details>{constant}")
    return Section(title, body, charts, after)


def _front(report: dict, ranked: Importance | None, interactive: bool) -> Section | None:
    charts = front_charts(report, ranked, interactive)
    if not charts:
        return Section("The front", '<p class="notice">No completed trials: there is no Pareto front to plot yet. '
                                    "The table below lists every trial and why it did not complete.</p>")
    how = ("Hover a point for its architecture; click it for its config, metrics and export command. Drag along a "
           "parallel-coordinates axis to keep only the trials in that range, here and in the pair charts."
           if interactive else "Each trial of the front is listed below with its diagram and config.")
    return Section("The front", f"<p>{escape(how)}</p>", tuple(charts))


def _progress(report: dict, interactive: bool) -> Section | None:
    steps = hypervolume_progress(report)
    if not steps:
        return None
    timed = "" if steps[0].elapsed_s is not None else " The storage holds no trial times, so there is no time axis."
    return Section("Progress", f"<p>{escape('How fast the search improved the front.' + timed)}</p>",
                   (progress_chart(report, steps, interactive),))


def _members(report: dict, study_dir: Path | None) -> Section | None:
    if not report["pareto"]:
        return None
    by_number = {trial["number"]: trial for trial in report["trials"]}
    cards = []
    for number in report["pareto"]:
        trial = by_number[number]
        knee = " (knee)" if number == report["knee"] else ""
        values = ", ".join([f"{o['name']} {format_number(trial['values'][o['name']])}" for o in report["objectives"]]
                           + [f"{title} {format_number(trial['final_metrics'][key])}"
                              for key, title in FINAL_COLUMNS.items() if key in trial["final_metrics"]])
        config = json.dumps(trial["config"], indent=1, sort_keys=True)
        cards.append(f'<div class="card" id="trial-{number}"><h3>Trial {number}{escape(knee)}</h3>'
                     f"{architecture_svg(trial['config'])}<p>{escape(values)}</p>"
                     f"<p><code>{escape(_export_command(study_dir, report['study'], number))}</code></p>"
                     f"<details><summary>config</summary><pre>{escape(config)}</pre></details></div>")
    kinds = [stage.get("mixer", {}).get("kind", "?") for n in report["pareto"]
             for stage in by_number[n]["config"].get("stages", []) if isinstance(stage, dict)]
    return Section(f"Front members ({len(cards)})", (legend_html(kinds) if kinds else "")
                   + f'<div class="cards">{"".join(cards)}</div>')


def _trials(report: dict) -> Section:
    if not report["trials"]:
        return Section("All trials", '<p class="notice">This study has no trials yet.</p>')
    names = [objective["name"] for objective in report["objectives"]]
    front = set(report["pareto"])
    finals = {key: title for key, title in FINAL_COLUMNS.items()
              if any(key in trial["final_metrics"] for trial in report["trials"])}
    header = "".join(f"<th>{escape(h)}</th>" for h in ["trial", "state", *names, *finals.values(), "seconds",
                                                       "architecture", "error"])
    rows = []
    for trial in report["trials"]:
        cells = [str(trial["number"]), trial["state"], *(format_number(trial["values"].get(n)) for n in names),
                 *(format_number(trial["final_metrics"][key]) if key in trial["final_metrics"] else ""
                   for key in finals),
                 format_number(trial["duration_s"]), config_summary(trial["config"], limit=None), trial["error"] or ""]
        classes = f"{trial['state']}{' front' if trial['number'] in front else ''}"
        rows.append(f'<tr class="{classes}">' + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return Section("All trials", f"<table>\n<tr>{header}</tr>\n" + "\n".join(rows) + "\n</table>")


def _details(report: dict, study_dir: Path | None) -> dict:
    """What the trial panel shows for each trial: keyed by number."""
    details = {}
    for trial in report["trials"]:
        measured = placed_values(report, trial)  # a pruned or failed trial's values when it stopped
        when = "" if trial["state"] == "COMPLETE" else " (when it stopped)"
        values = "\n".join(f"{o['name']}: {format_number(measured.get(o['name']))}{when}"
                           for o in report["objectives"])
        exportable = trial["state"] == "COMPLETE"
        details[str(trial["number"])] = {
            "state": trial["state"].lower() + (" (Pareto front)" if trial["number"] in report["pareto"] else ""),
            "summary": config_summary(trial["config"], limit=None), "values": values,
            "export": _export_command(study_dir, report["study"], trial["number"]) if exportable
            else f"not exported: the trial is {trial['state'].lower()}"
                 + (f" ({trial['error'].splitlines()[0]})" if trial["error"] else ""),
            "diagram": architecture_svg(trial["config"]), "config": trial["config"], "metrics": trial["metrics"]}
    return details


def _export_command(study_dir: Path | None, study: str, number: int) -> str:
    folder = str(study_dir) if study_dir is not None else f"runs/{study}"
    return f"vitnas export {shlex.quote(folder)} --trial {number} --out {shlex.quote(f'exported/trial-{number}')}"
