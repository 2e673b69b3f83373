"""Reports on hand-made studies: the JSON contract, Pareto correctness, CSV, HTML (escaping, PNGs) and edge cases."""
import csv
import dataclasses
import json
import re
import subprocess
import sys

import pytest
from rich.console import Console

from vitnas.errors import UserError
from vitnas.nas.records import Objective, StudySummary, TrialRecord
from vitnas.nas.report import print_report, report_dict, write_csv, write_html

ACC_MACS = [Objective("accuracy", "maximize"), Objective("macs", "minimize")]
MALICIOUS = '<script>alert("x")</script>'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def complete(number, accuracy, macs, **config):
    return TrialRecord(number, "COMPLETE", {"accuracy": accuracy, "macs": macs}, config or {"name": f"t{number}"},
                       {"accuracy": accuracy, "cost": {"macs": macs, "params": 10 * number}}, duration_s=1.5, seed=0)


def failed(number, error="loss became NaN"):
    return TrialRecord(number, "FAIL", {}, {"name": f"t{number}"}, {}, duration_s=0.5, error=error)


def study(*trials, objectives=ACC_MACS):
    return StudySummary("study", objectives, list(trials))


def mixed_study():
    """Ties, an exact duplicate, a dominated trial, and one trial of every other state."""
    return study(
        complete(0, 0.9, 200.0), complete(1, 0.8, 100.0), complete(2, 0.8, 100.0),  # 1 and 2: exact duplicates
        complete(3, 0.9, 300.0),  # ties 0 on accuracy, worse MACs: dominated
        complete(4, 0.7, 100.0),  # ties 1 on MACs, worse accuracy: dominated
        failed(5), TrialRecord(6, "PRUNED", {}, {}, {}), TrialRecord(7, "RUNNING", {}, {}, {}),
        TrialRecord(8, "WAITING", {}, {}, {}))


def render(summary):
    console = Console(record=True, width=160)
    print_report(summary, console)
    return console.export_text()


def test_json_contract_shape():
    report = json.loads(json.dumps(report_dict(mixed_study()), allow_nan=False))
    assert set(report) == {"study", "objectives", "trials", "pareto", "hypervolume", "reference_point", "knee",
                           "counts"}
    assert report["objectives"] == [{"name": "accuracy", "direction": "maximize"},
                                    {"name": "macs", "direction": "minimize"}]
    assert [t["number"] for t in report["trials"]] == list(range(9))
    assert all(set(t) == {"number", "state", "values", "config", "metrics", "duration_s", "error", "outcome",
                          "started_at", "finished_at", "final_metrics"} for t in report["trials"])
    assert report["trials"][0]["metrics"]["cost"] == {"macs": 200.0, "params": 0}
    assert report["counts"] == {"complete": 5, "failed": 1, "pruned": 1, "running": 2}
    assert set(report["reference_point"]) == {"accuracy", "macs"}


def test_pareto_keeps_ties_and_duplicates_and_drops_dominated_trials():
    report = report_dict(mixed_study())
    assert report["pareto"] == [0, 1, 2]
    # reference: accuracy 0.7 - 0.02, MACs 300 + 20; boxes [0.68, 0.9] x [200, 320] and [0.68, 0.8] x [100, 320]
    assert report["reference_point"] == pytest.approx({"accuracy": 0.68, "macs": 320.0})
    assert report["hypervolume"] == pytest.approx(0.22 * 120 + 0.12 * 220 - 0.12 * 120)
    assert report["knee"] == 0  # 0 and 1 are equally far from the ideal point: ties go to the lower number


def test_single_trial_is_its_own_front_with_positive_hypervolume():
    report = report_dict(study(complete(3, 0.5, 1e6)))
    assert report["pareto"] == [3] and report["knee"] == 3
    assert report["hypervolume"] > 0
    assert "hypervolume" in render(study(complete(3, 0.5, 1e6)))


def test_all_failed_and_empty_studies_report_nothing_to_rank(tmp_path):
    for summary in (study(failed(0, "CUDA out of memory\nTraceback ..."), failed(1)), study()):
        report = report_dict(summary)
        assert report["pareto"] == [] and report["hypervolume"] == 0.0
        assert report["knee"] is None and report["reference_point"] == {}
        text = render(summary)
        assert "No completed trials" in text
        html_path = tmp_path / "report.html"
        assert write_html(summary, html_path) == []
        assert "No completed trials" in html_path.read_text()
        write_csv(summary, tmp_path / "trials.csv")
    assert "CUDA out of memory" in render(study(failed(0, "CUDA out of memory\nTraceback ...")))


def test_non_finite_objective_values_are_left_out_of_the_front_and_written_as_null():
    summary = study(complete(0, 0.9, 200.0), complete(1, float("inf"), 100.0))
    report = report_dict(summary)
    assert report["pareto"] == [0]
    assert report["trials"][1]["values"]["accuracy"] is None


def test_csv_has_one_row_per_trial_with_objectives_and_flattened_metrics_and_config(tmp_path):
    path = tmp_path / "trials.csv"
    write_csv(mixed_study(), path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["number"] for row in rows] == [str(n) for n in range(9)]
    assert rows[0]["accuracy"] == "0.9" and rows[0]["metrics.cost.params"] == "0" and rows[0]["config.name"] == "t0"
    assert [row["pareto"] for row in rows[:5]] == ["1", "1", "1", "0", "0"]
    assert rows[5]["state"] == "FAIL" and rows[5]["error"] == "loss became NaN" and rows[5]["accuracy"] == ""


def test_trials_measured_differently_report_blanks_not_errors(tmp_path):
    """A search measures latency only when asked: a study can mix trials with and without a metric."""
    with_latency = TrialRecord(0, "COMPLETE", {"accuracy": 0.9, "macs": 200.0}, {"name": "a"},
                               {"val_accuracy": 0.9, "macs": 200, "latency_ms": 1.5})
    without = TrialRecord(1, "COMPLETE", {"accuracy": 0.8, "macs": 100.0}, {"name": "b"},
                          {"val_accuracy": 0.8, "macs": 100, "robustness": None})
    summary = study(with_latency, without)
    assert report_dict(summary)["pareto"] == [0, 1]
    write_csv(summary, tmp_path / "trials.csv")
    with open(tmp_path / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["metrics.latency_ms"] for row in rows] == ["1.5", ""]
    assert [row["metrics.robustness"] for row in rows] == ["", ""]
    write_html(summary, tmp_path / "report.html")
    assert "Pareto front" in render(summary)


def test_objectives_are_described_from_the_metric_registry(tmp_path):
    objectives = [Objective("accuracy", "maximize"), Objective("macs", "minimize"), Objective("custom", "minimize")]
    summary = StudySummary("s", objectives, [TrialRecord(0, "COMPLETE", {"accuracy": 0.9, "macs": 5, "custom": 1},
                                                         {"name": "t"}, {})])
    write_html(summary, tmp_path / "report.html")
    page = tmp_path.joinpath("report.html").read_text()
    assert "accuracy (maximize): validation accuracy, 0..1" in page and "custom (minimize)" in page
    assert "macs (min, MACs)" in render(summary)


@pytest.mark.parametrize("interactive", [False, True])
def test_html_escapes_user_strings_and_needs_no_network(tmp_path, interactive):
    summary = StudySummary(MALICIOUS, ACC_MACS, [complete(0, 0.9, 200.0, name=MALICIOUS, mixer={"kind": MALICIOUS}),
                                                 complete(1, 0.8, 100.0), failed(2, MALICIOUS)])
    path = tmp_path / "report.html"
    write_html(summary, path, interactive=interactive)
    page = path.read_text()
    assert MALICIOUS not in page and "<script>alert" not in page  # only escaped forms
    assert "&lt;script&gt;" in page
    assert ("<script" in page) == interactive  # the static page has no script at all
    # everything inline: nothing in the page loads anything (the library in <head> mentions URLs in its code, and the
    # browser test checks that it fetches none)
    body = page.split("<body>", 1)[1]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body, re.IGNORECASE)
    assert "<link" not in page.lower() and "@import" not in page


def test_terminal_table_shows_config_text_verbatim_not_as_rich_markup():
    text = render(study(complete(0, 0.9, 1.0, name="[bold]x[/bold]")))
    assert "[bold]x[/bold]" in text


def test_html_has_a_pair_plot_per_objective_pair_and_parallel_coordinates_saved_as_png(tmp_path):
    objectives = [Objective("accuracy", "maximize"), Objective("macs", "minimize"),
                  Objective("robust$ness", "maximize"), Objective("latency ms", "minimize")]
    trials = [TrialRecord(n, "COMPLETE", {"accuracy": a, "macs": m, "robust$ness": r, "latency ms": lat}, {"name": "x"},
                          {}) for n, (a, m, r, lat) in enumerate([(0.9, 3, 0.5, 2.0), (0.8, 1, 0.6, 1.0),
                                                                  (0.7, 2, 0.4, 3.0)])]
    path = tmp_path / "report.html"
    pngs = write_html(StudySummary("four", objectives, trials), path, interactive=False)
    pairs = {f"report-pareto-{i}-{a}-vs-{j}-{b}.png" for (i, a), (j, b) in
             [((1, "accuracy"), (2, "macs")), ((1, "accuracy"), (3, "robust_ness")),
              ((1, "accuracy"), (4, "latency_ms")),
              ((2, "macs"), (3, "robust_ness")), ((2, "macs"), (4, "latency_ms")),
              ((3, "robust_ness"), (4, "latency_ms"))]}
    # no importance: the configs are not architectures, nothing about them varies
    assert {png.name for png in pngs} == pairs | {"report-parallel.png", "report-hypervolume.png"}
    assert all(png.parent == tmp_path and png.read_bytes().startswith(PNG_SIGNATURE) for png in pngs)
    assert path.read_text().count('src="data:image/png;base64,') == len(pngs)


def test_interactive_page_holds_one_plotly_figure_per_chart_and_each_trials_details(tmp_path):
    summary = mixed_study()
    path = tmp_path / "report.html"
    pngs = write_html(summary, path, study_dir=tmp_path / "my study", interactive=True)
    page = path.read_text()
    body = page.split("<body>", 1)[1]
    assert body.count("Plotly.newPlot(") == len(pngs) and 'src="data:image/png' not in body
    details = json.loads(re.search(r'<script type="application/json" id="vitnas-trials">(.*?)</script>', page,
                                   re.DOTALL).group(1))
    assert set(details) == {str(n) for n in range(9)}
    assert details["1"]["export"] == f"vitnas export '{tmp_path / 'my study'}' --trial 1 --out exported/trial-1"
    assert details["5"]["export"].startswith("not exported: the trial is fail (loss became NaN)")
    assert details["0"]["config"] == {"name": "t0"} and details["0"]["metrics"]["cost"]["macs"] == 200.0


def test_hypervolume_progress_steps_through_trials_in_the_order_they_finished():
    from vitnas.nas.report_progress import hypervolume_progress

    def timed(trial, started, finished):
        return dataclasses.replace(trial, started_at=started, finished_at=finished)

    summary = study(timed(complete(0, 0.5, 100.0), 0.0, 50.0), timed(failed(1), 10.0, 20.0),
                    timed(complete(2, 0.8, 300.0), 5.0, 30.0))
    steps = hypervolume_progress(report_dict(summary))
    # reference: accuracy 0.5 - 0.03 = 0.47, MACs 300 + 20 = 320
    assert [(s.trial, s.finished, s.elapsed_s) for s in steps] == [(1, 1, 20.0), (2, 2, 30.0), (0, 3, 50.0)]
    assert [s.hypervolume for s in steps] == pytest.approx([0.0, 0.33 * 20, 0.33 * 20 + 0.03 * 200])
    untimed = hypervolume_progress(report_dict(study(complete(3, 0.5, 1.0), complete(2, 0.6, 2.0))))
    assert [(s.trial, s.elapsed_s) for s in untimed] == [(2, None), (3, None)]


def test_a_missing_plotly_is_a_one_line_error_when_the_interactive_page_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr("vitnas.nas.report_page.plotly_installed", lambda: False)
    with pytest.raises(UserError, match="pip install 'vitnas\\[report\\]'"):
        write_html(mixed_study(), tmp_path / "r.html", interactive=True)
    write_html(mixed_study(), tmp_path / "r.html")  # asked for nothing: the static page
    assert "<script" not in (tmp_path / "r.html").read_text()


def test_report_modules_import_no_optuna_ray_or_torch():
    code = ("import sys, vitnas.nas.pareto, vitnas.nas.report, vitnas.nas.report_html, vitnas.nas.report_plots, "
            "vitnas.nas.report_charts, vitnas.nas.report_importance, vitnas.nas.report_diagram; "
            "print(sorted(m for m in ('optuna', 'ray', 'torch', 'plotly') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_architecture_diagram_draws_stem_each_stage_and_head_escaping_names():
    from vitnas.nas.report_diagram import MIXER_COLOURS, architecture_svg

    config = {"stem": {"kind": "conv", "patch_size": 4}, "head": "gap", "norm": "layernorm",
              "stages": [{"depth": 2, "width": 32, "mixer": {"kind": "pool", "kernel_size": 3}},
                         {"depth": 4, "width": 256, "mixer": {"kind": "attention"}},
                         {"depth": 1, "width": 64, "mixer": {"kind": MALICIOUS}}]}
    svg = architecture_svg(config)
    assert svg.startswith("<svg") and svg.count("<rect") == 1 + 3 + 1
    assert MIXER_COLOURS["pool"] in svg and MIXER_COLOURS["attention"] in svg
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert heights[1] < heights[3] < heights[2]  # box height grows with the width: 32 < 64 < 256
    assert "conv p4" in svg and "256x4" in svg and "stage 1: pool mixer (kernel_size=3)" in svg
    assert MALICIOUS not in svg and "&lt;script&gt;" in svg
    assert architecture_svg({"name": "not an architecture"}) == ""


def test_page_machinery_for_other_reports_bars_with_confidence_intervals(tmp_path):
    """The ablation report's use: sections of tables and bar charts, written as one page with PNGs beside it."""
    from vitnas.nas.report_charts import Bar, BarsView, bars_chart
    from vitnas.nas.report_page import Section, html_page, table, write_page

    view = BarsView("accuracy by arm", "test accuracy", [Bar("pool", 0.8, 0.75, 0.85, (0.77, 0.8, 0.83), 0.82),
                                                         Bar(MALICIOUS, 0.7, 0.6, 0.8, (0.7,)),
                                                         Bar("failed arm", None, None, None)], confidence=0.95)
    chart = bars_chart(view, "accuracy", interactive=True)
    bars, seeds, paper = chart.figure.data
    assert list(bars.y) == [0.8, 0.7, None]
    assert list(bars.error_y.array) == pytest.approx([0.05, 0.1, None])
    assert bars.error_y.arrayminus[0] == pytest.approx(0.05)
    assert list(seeds.y) == [0.77, 0.8, 0.83, 0.7] and list(paper.x) == ["pool"] and list(paper.y) == [0.82]
    sections = [Section("Arms", body=table(["arm", "mean"], [[MALICIOUS, "0.7"]], numeric=frozenset({1})),
                        charts=(bars_chart(view, "accuracy", interactive=False),))]
    pngs = write_page(tmp_path / "ablation.html", html_page("study <x>", sections, lead=["claim"]), sections)
    page = (tmp_path / "ablation.html").read_text()
    assert [p.name for p in pngs] == ["ablation-accuracy.png"] and pngs[0].read_bytes().startswith(PNG_SIGNATURE)
    assert "<title>study &lt;x&gt;</title>" in page and MALICIOUS not in page and "<script" not in page
    assert '<td class=num>0.7</td>' in page
