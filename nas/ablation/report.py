"""An ablation's results: statistics of every arm and comparison as one JSON-safe dict, and that dict as tables
(terminal, Markdown) and as the shared report page with charts (nas.report_page). The paper's figures stand beside
ours."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from vitnas.errors import UserError
from vitnas.nas.ablation import stats
from vitnas.nas.ablation.store import RunRecord
from vitnas.nas.ablation.study import Profile, Study
from vitnas.nas.files import json_safe, json_text, write_text_atomic
from vitnas.nas.outcome import Outcome
from vitnas.nas.report_format import format_number

if TYPE_CHECKING:
    from vitnas.nas.report_page import Chart, Section

Table = tuple[list[str], list[list[str]]]


def results(study: Study, profile: Profile, records: dict[tuple[str, int], RunRecord]) -> dict:
    """Everything a report shows, computed from the finished runs (failed and missing runs have no value)."""
    values = {(metric.text, arm): {seed: _value(records.get((arm, seed)), metric) for seed in profile.seeds}
              for metric in study.metrics for arm in study.arms}
    arms = [{"name": arm, "reference": arm == study.reference,
             "published": (study.published.values or {}).get(arm),
             "runs": {str(seed): _state(records.get((arm, seed))) for seed in profile.seeds},
             "metrics": {metric.text: _summary(values[(metric.text, arm)]) for metric in study.metrics}}
            for arm in study.arms]
    pairs = [stats.paired(values[(c.metric.text, c.left)], values[(c.metric.text, c.right)], c.offset)
             for c in study.expect]
    adjusted = stats.holm([pair.p for pair in pairs])
    comparisons = [_comparison(study, c, pair, p_holm) for c, pair, p_holm in zip(study.expect, pairs, adjusted)]
    ran = [records[key] for key in records if key[0] in study.arms and key[1] in profile.seeds]
    reference = next((r.metrics for r in ran if r.arm == study.reference and r.outcome is Outcome.OK), {})
    return json_safe({
        "study": study.name, "claim": study.claim, "source": study.source, "profile": profile.name,
        "published": {"data": study.published.data, "scale": study.published.scale,
                      "metric": study.published.metric, "note": study.published.note},
        "setting": {"data": profile.data, "train_images": profile.train_images, "budget": profile.budget.describe(),
                    "seeds": list(profile.seeds), "robustness": profile.robustness, "train": profile.train,
                    "reference_params": reference.get("params"), "reference_macs": reference.get("macs")},
        "confidence": stats.CONFIDENCE,
        "verdict": stats.study_verdict([c["verdict"] for c in comparisons]),
        "comparisons": comparisons, "arms": arms,
        "counts": {"planned": len(study.arms) * len(profile.seeds), "finished": len(ran),
                   "ok": sum(r.outcome is Outcome.OK for r in ran),
                   "failed": sum(r.outcome is not Outcome.OK for r in ran)},
        "failures": [{"arm": r.arm, "seed": r.seed, "outcome": r.outcome.value, "error": r.error}
                     for r in ran if r.outcome is not Outcome.OK],
    })


def write_results(directory: Path, report: dict) -> None:
    """results.json and results.md in the ablation's folder."""
    write_text_atomic(directory / "results.json", json_text(report, indent=2) + "\n")
    write_text_atomic(directory / "results.md", markdown(report))


def _value(record: RunRecord | None, metric) -> float | None:
    if record is None or record.outcome is not Outcome.OK:
        return None
    value = metric.value(record.metrics)
    return None if math.isnan(value) else value


def _state(record: RunRecord | None) -> str:
    return "missing" if record is None else record.outcome.value


def _interval(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else list(ci)


def _summary(per_seed: dict[int, float | None]) -> dict:
    summary = stats.summarize(list(per_seed.values()))
    return {"n": summary.n, "mean": summary.mean, "sd": summary.sd, "ci95": _interval(summary.ci),
            "bootstrap_ci95": _interval(summary.bootstrap_ci), "values": {str(s): v for s, v in per_seed.items()}}


def _comparison(study: Study, comparison, pair: stats.Paired, p_holm: float) -> dict:
    published = (study.published.values or {}) if comparison.metric.text == study.published.of else {}
    return {"text": comparison.text, "metric": comparison.metric.text, "left": comparison.left,
            "op": comparison.op, "right": comparison.right, "offset": comparison.offset,
            "published": [published.get(comparison.left), published.get(comparison.right)],
            "n": len(pair.seeds), "mean_difference": pair.mean, "sd": pair.sd, "ci95": _interval(pair.ci),
            "p": pair.p, "p_holm": p_holm, "verdict": stats.verdict(pair, p_holm, comparison.sign, comparison.offset),
            "differences": {str(s): d for s, d in zip(pair.seeds, pair.differences)}}


# ---- tables: the same rows for the terminal, Markdown and HTML

def _number(value) -> str:
    return format_number(value)


def _ci(ci) -> str:
    return "n/a" if ci is None else f"[{_number(ci[0])}, {_number(ci[1])}]"


def _paper(values: list) -> str:
    return " vs ".join("-" if v is None else _number(v) for v in values) if any(v is not None for v in values) else "-"


def comparisons_table(report: dict) -> Table:
    headers = ["comparison", "paper", "ours: mean difference [95% CI]", "n", "p", "p (Holm)", "verdict"]
    rows = [[c["text"], _paper(c["published"]), f"{_number(c['mean_difference'])} {_ci(c['ci95'])}", str(c["n"]),
             _number(c["p"]), _number(c["p_holm"]), c["verdict"]] for c in report["comparisons"]]
    return headers, rows


def arms_table(report: dict) -> Table:
    metrics = list(report["arms"][0]["metrics"]) if report["arms"] else []
    headers = ["arm", "paper", *(f"{m}: mean ± sd [95% CI]" for m in metrics), "runs ok"]
    rows = []
    for arm in report["arms"]:
        cells = [f"{_number(s['mean'])} ± {_number(s['sd'])} {_ci(s['ci95'])}"
                 if s["n"] else "n/a" for s in arm["metrics"].values()]
        ok = sum(state == Outcome.OK.value for state in arm["runs"].values())
        name = arm["name"] + (" (reference)" if arm["reference"] else "")
        rows.append([name, "-" if arm["published"] is None else _number(arm["published"]), *cells,
                     f"{ok}/{len(arm['runs'])}"])
    return headers, rows


def seeds_table(report: dict) -> Table:
    seeds = report["setting"]["seeds"]
    headers = ["arm", "metric", *(f"seed {s}" for s in seeds)]
    rows = [[arm["name"], metric, *(_number(summary["values"][str(s)]) if arm["runs"][str(s)] == "ok"
                                    else arm["runs"][str(s)] for s in seeds)]
            for arm in report["arms"] for metric, summary in arm["metrics"].items()]
    return headers, rows


def failures_table(report: dict) -> Table:
    return ["arm", "seed", "outcome", "reason"], [[f["arm"], str(f["seed"]), f["outcome"], f["error"] or ""]
                                                  for f in report["failures"]]


def _lead(report: dict) -> list[str]:
    """The lines above the tables: the claim, both settings, the run counts and the note on the paper's figures."""
    note = report["published"]["note"]
    return _setting_lines(report) + ([f"Note on the paper's figures: {note}"] if note else [])


def _setting_lines(report: dict) -> list[str]:
    setting, published = report["setting"], report["published"]
    subset = f", a stratified subset of {setting['train_images']} training images" if setting["train_images"] else ""
    scale = (f"; the reference arm has {setting['reference_params']:,} params, {setting['reference_macs']:,} MACs"
             if setting["reference_params"] is not None and setting["reference_macs"] is not None else "")
    return [f"Claim: {report['claim']}",
            f"Source: {report['source']}",
            f"Paper's setting: {published['data']}; {published['scale']}"
            + (f"; {published['metric']}" if published["metric"] else ""),
            f"Ours: {setting['data']}{subset}{scale}; {setting['budget']} per run; seeds {setting['seeds']} (paired "
            f"across arms); robustness suite {setting['robustness']!r}; accuracy is test accuracy",
            f"Runs: {report['counts']['ok']} ok, {report['counts']['failed']} failed, "
            f"{report['counts']['planned'] - report['counts']['finished']} not run, of {report['counts']['planned']}"]


def _sections(report: dict) -> list[tuple[str, Table]]:
    sections = [("Comparisons (95 % t-intervals of the paired differences; Holm across the study)",
                 comparisons_table(report)),
                ("Arms", arms_table(report)), ("Every seed", seeds_table(report))]
    if report["failures"]:
        sections.append(("Failed runs", failures_table(report)))
    return sections


def markdown(report: dict) -> str:
    lines = [f"# {report['study']} (profile {report['profile']}): {report['verdict']}", ""]
    lines += [f"- {line}" for line in _lead(report)]
    for title, (headers, rows) in _sections(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_html(report: dict, path: Path, interactive: bool | None = None) -> list[Path]:
    """The self-contained page (the shared report machinery) and each chart as a PNG beside it; returns the PNG
    paths. interactive: plotly charts (None: when the `report` extra is installed); False: a page of PNGs only."""
    # matplotlib and plotly take seconds to import, and only the HTML page needs them
    from vitnas.nas.report_page import html_page, plotly_installed, write_page

    if interactive and not plotly_installed():
        raise UserError("the interactive report needs plotly: pip install 'vitnas[report]', or pass --static")
    sections = html_sections(report, plotly_installed() if interactive is None else interactive)
    title = f"{report['study']} (profile {report['profile']}): {report['verdict']}"
    return write_page(Path(path), html_page(title, sections, lead=_lead(report)), sections)


def html_sections(report: dict, interactive: bool) -> list[Section]:
    """The page's sections: the verdict per comparison beside the paper's figures, then the arms' charts above
    their table, every seed, and the failed runs."""
    from vitnas.nas.report_page import Section, table

    comparisons, arms, seeds, *failures = _sections(report)
    return [Section(comparisons[0], table(*comparisons[1], numeric=frozenset({3, 4, 5}))),
            Section(arms[0], charts=tuple(_charts(report, interactive)), after=table(*arms[1])),
            *(Section(title, table(*rows)) for title, rows in (seeds, *failures))]


def _charts(report: dict, interactive: bool) -> list[Chart]:
    """One chart per metric (our means, CI whiskers, each seed), the paper's figures beside the claim's metric."""
    from vitnas.nas.report_charts import Bar, BarsView, bars_chart

    metrics = list(report["arms"][0]["metrics"]) if report["arms"] else []
    charts = []
    for metric in metrics:
        bars = [Bar(arm["name"], s["mean"], *(s["ci95"] or (None, None)),
                    tuple(v for v in s["values"].values() if v is not None))
                for arm in report["arms"] for s in [arm["metrics"][metric]]]
        chart = bars_chart(BarsView(f"{metric} by arm", metric, bars, report["confidence"]), slug=metric,
                           interactive=interactive)
        charts.append(replace(chart, caption=f"{metric} by arm ({report['setting']['data']}): bar = mean, whisker = "
                                             f"{report['confidence']:.0%} confidence interval, dots = seeds"))
    published = report["published"]
    if any(arm["published"] is not None for arm in report["arms"]):
        # its own axis: the paper measured another data set at another scale (often in %), so its figures on our
        # axis would flatten our bars, and only the arms' order within each chart is comparable
        bars = [Bar(arm["name"], arm["published"], None, None, published=arm["published"]) for arm in report["arms"]]
        title = "The paper's figures" + (f": {published['metric']}" if published["metric"] else "")
        chart = bars_chart(BarsView(title, published["metric"] or "the paper's figure", bars, report["confidence"]),
                           slug="paper", interactive=interactive)
        claimed = report["comparisons"][0]["metric"] if report["comparisons"] else None
        charts.insert(metrics.index(claimed) + 1 if claimed in metrics else len(charts),
                      replace(chart, caption=f"{title} ({published['data']}; {published['scale']}): bar and diamond "
                                             "= the paper's figure; an arm without one has none published"))
    return charts


def print_results(report: dict, console) -> None:
    from rich.table import Table as RichTable

    console.print(f"[bold]{report['study']}[/] (profile {report['profile']}): [bold]{report['verdict']}[/]")
    for line in _setting_lines(report):
        console.print(line, highlight=False)
    for title, (headers, rows) in _sections(report):
        table = RichTable(title=title)
        for header in headers:
            table.add_column(header)
        for row in rows:
            table.add_row(*row)
        console.print(table)
