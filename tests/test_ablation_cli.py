"""`vitnas ablate`: one-line errors with exit 2, the list of shipped studies, reports of a store, and end to end on
Ray: the quick profiles of two shipped studies, and kill -9 then --resume."""
import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.nas.ablation.plan import identity
from vitnas.nas.ablation.store import AblationStore
from vitnas.nas.ablation.study import study_from_dict
from vitnas.nas.executor import TrialResult
from vitnas.nas.outcome import Outcome

runner = CliRunner()
STUDY = {
    "name": "tiny", "claim": "Conv beats identity.", "source": "hand-made",
    "published": {"data": "d", "scale": "s"},
    "base": {"stem": {"kind": "patch", "patch_size": 2},
             "stages": [{"depth": 1, "width": 8, "mixer": {"kind": "conv", "kernel_size": 3}}]},
    "reference": "conv",
    "arms": {"conv": {}, "identity": {"stages[*].mixer": "identity"}},
    "expect": ["accuracy: identity < conv"],
    "profiles": {"quick": {"data": "synthetic:n=192,size=8,chans=1,classes=3", "budget": {"epochs": 1}},
                 "full": {"data": "digits", "budget": {"epochs": 3}}},
}


def write_study(tmp_path, **changes):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**copy.deepcopy(STUDY), **changes}, sort_keys=False))
    return path


@pytest.mark.parametrize("changes, fragment", [
    ({"seeds": 2}, "error: seeds: got 2; a confidence interval needs at least 3 seeds"),
    ({"expect": ["accuracy: identity < attention"]}, "error: expect[0]: 'attention' is not an arm"),
    ({"arms": {"conv": {}, "identity": {"stages[*].mixer": {"kind": "attention", "heads": 3}}}},
     "error: arms.identity (profile quick): stages[0].mixer.heads: got 3; must divide the stage width 8"),
])
def test_a_malformed_study_is_one_line_and_exit_2_before_anything_runs(tmp_path, changes, fragment):
    out = tmp_path / "out"
    result = runner.invoke(app, ["ablate", str(write_study(tmp_path, **changes)), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip() == fragment.strip() or (fragment in result.stderr
                                                         and len(result.stderr.strip().splitlines()) == 1)
    assert not out.exists()


def test_unknown_study_profile_and_bad_options_are_one_line(tmp_path):
    for args, fragment in ((["ablate", "no-such-study"], "no shipped study of that name"),
                           (["ablate", str(write_study(tmp_path)), "--profile", "huge"], "has no profile 'huge'"),
                           (["ablate", "poolformer-token-mixer", "--seeds", "2"], "--seeds"),
                           (["ablate", "report", str(tmp_path)], "no study.json here")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and fragment in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1


def test_list_shows_every_shipped_study_with_its_claim():
    result = runner.invoke(app, ["ablate", "list", "--json"])
    assert result.exit_code == 0, result.output
    studies = {s["name"]: s for s in json.loads(result.stdout)}
    assert len(studies) >= 10
    assert studies["poolformer-token-mixer"]["arms"][:2] == ["pool", "identity"]
    assert all(s["claim"] and {"quick", "full"} <= set(s["profiles"]) for s in studies.values())


def test_report_of_a_store_writes_results_and_pages(tmp_path):
    study = study_from_dict(copy.deepcopy(STUDY))
    profile = study.profile("quick")
    store = AblationStore.create(tmp_path / "a", study, profile, identity(study, profile))
    for arm, accuracies in (("conv", (0.80, 0.85, 0.83)), ("identity", (0.75, 0.78, 0.80))):
        for seed, accuracy in enumerate(accuracies):
            store.record(arm, seed, {}, {}, TrialResult(Outcome.OK, {"accuracy": accuracy}))
    result = runner.invoke(app, ["ablate", "report", str(tmp_path / "a"), "--json", "--html",
                                 str(tmp_path / "r.html"), "--markdown", str(tmp_path / "r.md")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "supported" and report["comparisons"][0]["n"] == 3
    assert json.loads((tmp_path / "a" / "results.json").read_text()) == report
    assert (tmp_path / "a" / "results.md").read_text() == (tmp_path / "r.md").read_text()
    assert "supported" in (tmp_path / "r.html").read_text()
    table = runner.invoke(app, ["ablate", "report", str(tmp_path / "a")])
    assert table.exit_code == 0 and "Comparisons" in table.stdout and "supported" in table.stdout


def _results(directory) -> dict:
    return json.loads((directory / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["poolformer-token-mixer", "attention-temperature"])
def test_quick_profile_of_a_shipped_study_end_to_end(tmp_path, name):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "vitnas.cli", "ablate", name, "--profile", "quick",
                             "--out", str(tmp_path), "--json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report == _results(tmp_path)
    assert report["counts"]["ok"] == report["counts"]["planned"]
    assert report["verdict"] and all(c["n"] == 3 for c in report["comparisons"])
    assert all(arm["metrics"]["accuracy"]["n"] == 3 for arm in report["arms"])
    print(f"{name} quick: {time.monotonic() - started:.0f} s")


@pytest.mark.slow
def test_kill_9_during_a_study_then_resume_loses_and_repeats_nothing(tmp_path):
    """The driver and every process it started are killed with SIGKILL once some runs have finished; --resume
    runs exactly the missing ones and leaves the finished ones as they were."""
    path = write_study(tmp_path, arms={"conv": {}, "identity": {"stages[*].mixer": "identity"},
                                       "pool": {"stages[*].mixer": "pool"}}, seeds=4)
    args = [sys.executable, "-m", "vitnas.cli", "ablate", str(path), "--out", str(tmp_path / "a"), "--workers", "1"]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = tmp_path / "a" / "runs"
    before, deadline = {}, time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None and len(before) < 2:
        time.sleep(0.5)
        before = {p: p.read_bytes() for p in runs.glob("*/seed-*/metrics.json")}
    if driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert 2 <= len(before) < 12, "the kill came too late to test anything"
    resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = {p: p.read_bytes() for p in runs.glob("*/seed-*/metrics.json")}
    assert len(after) == 12
    assert {p: after[p] for p in before} == before  # finished runs kept byte for byte: nothing repeated
    assert f"{len(before)} finished before" in resumed.stderr or f"{len(after) - 12 + len(before)}" in resumed.stderr
    assert _results(tmp_path / "a")["counts"]["ok"] == 12


@pytest.mark.slow
def test_a_changed_study_refuses_to_resume(tmp_path):
    path = write_study(tmp_path)
    args = [sys.executable, "-m", "vitnas.cli", "ablate", str(path), "--out", str(tmp_path / "a")]
    assert subprocess.run(args, capture_output=True, text=True, timeout=600).returncode == 0
    write_study(tmp_path, arms={"conv": {}, "identity": {"stages[*].mixer": "pool"}})
    refused = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "the study's arms changed" in refused.stderr
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "add --resume" in again.stderr
