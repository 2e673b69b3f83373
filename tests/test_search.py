"""The search: Optuna proposes, Ray Tune runs, every finished trial persists; kill -9 and --resume lose nothing."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.nas.metrics import parse_objectives
from vitnas.nas.pareto import non_dominated
from vitnas.nas.search.samplers import make_sampler
from vitnas.nas.search.searcher import Budget, OptunaSearcher
from vitnas.nas.search.study import StudySpec, StudyStore
from vitnas.nas.search.worker import run_trial_in_worker
from vitnas.nas.trial import TrialSettings
from vitnas.nas.trainer import TrainSettings
from vitnas.errors import UserError
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=192,size=8,chans=1,classes=3"
TINY = ["--space", "metaformer", "--dataset", DATA, "--epochs", "1", "--robustness", "gaussian:0.1",
        "--workers", "2", "--seed", "0"]
runner = CliRunner()


def _report(directory) -> dict:
    result = runner.invoke(app, ["report", str(directory), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _complete(report: dict) -> dict:
    return {t["number"]: t["values"] for t in report["trials"] if t["state"] == "COMPLETE"}


def _macs_budget() -> int:
    """A MACs budget that most of the space's configs for DATA exceed, so rejection really happens."""
    from vitnas.nas.cost import count_cost
    space = load_space("metaformer")
    macs = sorted(count_cost(c).macs for c in space.sample(40, seed=1, image_size=8, in_chans=1, num_classes=3))
    return macs[len(macs) // 4]


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    budget = _macs_budget()
    result = runner.invoke(app, ["search", *TINY, "--trials", "3", "--out", str(out), "--study", "s",
                                 "--max-macs", str(budget)])
    assert result.exit_code == 0, result.output
    return out / "s", budget


def test_search_runs_trials_on_ray_and_persists_each(finished_study):
    directory, _ = finished_study
    report = _report(directory)
    assert [o["name"] for o in report["objectives"]] == ["accuracy", "macs", "robustness"]
    done = _complete(report)
    assert len(done) == 3
    for number in done:
        folder = directory / "trials" / f"{number:04d}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["seed"] == 0
        assert metrics["metrics"]["val_accuracy"] == done[number]["accuracy"]
        assert (folder / "config.yaml").read_text().startswith("name:")
    objectives = report["objectives"]
    points = [[v[o["name"]] for o in objectives] for v in done.values()]
    front = {list(done)[i] for i in non_dominated(points, [o["direction"] for o in objectives])}
    assert set(report["pareto"]) == front and report["hypervolume"] > 0


def test_budget_rejects_before_training_and_does_not_count(finished_study):
    directory, budget = finished_study
    store = StudyStore.open(directory)
    rejected = [t for t in store.study.get_trials() if t.user_attrs.get("rejected")]
    assert rejected, "the low MACs budget should have rejected some proposals"
    assert all("--max-macs" in t.user_attrs["error"] and not t.user_attrs.get("metrics") for t in rejected)
    assert all(v["macs"] <= budget for v in _complete(_report(directory)).values())
    assert store.counted_trials() == 3


def test_finished_study_is_not_overwritten_without_resume(finished_study):
    directory, _ = finished_study
    before = _report(directory)
    result = runner.invoke(app, ["search", *TINY, "--trials", "3", "--out", str(directory.parent), "--study", "s"])
    assert result.exit_code == 2
    assert "--resume" in result.stderr and "Traceback" not in result.output
    assert _report(directory)["trials"] == before["trials"]


def test_resume_needs_the_same_objectives(finished_study):
    directory, _ = finished_study
    result = runner.invoke(app, ["search", *TINY, "--trials", "4", "--out", str(directory.parent), "--study", "s",
                                 "--resume", "--objectives", "accuracy,params"])
    assert result.exit_code == 2 and "objectives" in result.stderr


def test_kill_9_then_resume_keeps_finished_trials(tmp_path):
    """The driver and every process it started are killed with SIGKILL; --resume completes the study."""
    args = [sys.executable, "-m", "vitnas.cli", "search", *TINY, "--trials", "3", "--out", str(tmp_path),
            "--study", "k"]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    before, deadline = {}, time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None and not before:
        time.sleep(1)
        if (tmp_path / "k" / "study.json").exists():
            before = _complete(_report(tmp_path / "k"))
    if driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert before, "no trial finished before the kill"
    resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = _complete(_report(tmp_path / "k"))
    assert len(after) == 3
    assert all(after[n] == v for n, v in before.items())


# -- the searcher and the worker, without Ray --------------------------------------------------------------

def _store(tmp_path, name: str, seed: int = 0) -> StudyStore:
    spec = StudySpec(name=name, storage=f"sqlite:///{tmp_path / name}.db", space="metaformer", dataset=DATA,
                     objectives=parse_objectives("accuracy,macs"), sampler="tpe", seed=seed)
    return StudyStore.create(tmp_path / name, spec, make_sampler("tpe", seed))


class _Quiet:
    def trial_started(self, number, config): pass
    def trial_progress(self, number, epoch, val_accuracy): pass
    def trial_finished(self, record): pass


def _searcher(store: StudyStore, total: int, budget: Budget = Budget()) -> OptunaSearcher:
    space = load_space("metaformer")
    propose = lambda trial: space.suggest(trial, image_size=8, in_chans=1, num_classes=3)  # noqa: E731
    return OptunaSearcher(store, propose, lambda cfg: (1000, 100), budget, total, _Quiet(), max_rejections=20)


def _drive(searcher: OptunaSearcher, n: int) -> list[dict]:
    """What Tune does with one worker: suggest, run, complete, in turn."""
    proposed = []
    for i in range(n):
        config = searcher.suggest(str(i))
        proposed.append(config["arch"])
        metrics = {"val_accuracy": 0.5 + 0.01 * i, "macs": 1000 + i}
        searcher.on_trial_complete(str(i), {"vitnas_outcome": json.dumps({"status": "ok", "metrics": metrics})})
    return proposed


def test_same_seed_proposes_the_same_configs(tmp_path):
    first = _drive(_searcher(_store(tmp_path, "a"), 12), 12)
    second = _drive(_searcher(_store(tmp_path, "b"), 12), 12)
    other = _drive(_searcher(_store(tmp_path, "c", seed=1), 12), 12)
    assert first == second
    assert first != other


def test_searcher_stops_at_the_total_and_counts_failures(tmp_path):
    store = _store(tmp_path, "f")
    searcher = _searcher(store, 2)
    searcher.suggest("x")
    searcher.on_trial_complete("x", None, error=True)  # Ray lost the worker: no result at all
    record = store.summary().trials[0]
    assert record.state == "FAIL" and "worker died" in record.error
    _drive(searcher, 1)
    assert searcher.suggest("z") == OptunaSearcher.FINISHED and store.counted_trials() == 2


def test_budget_that_nothing_meets_is_a_user_error(tmp_path):
    searcher = _searcher(_store(tmp_path, "b"), 3, Budget(max_macs=10))
    assert searcher.suggest("1") == OptunaSearcher.FINISHED
    assert isinstance(searcher.error, UserError) and "--max-macs" in str(searcher.error)
    assert searcher.store.counted_trials() == 0 and len(searcher.store.study.get_trials()) == 20


def test_a_trial_that_raises_is_reported_failed_with_its_reason(monkeypatch):
    reported = []
    monkeypatch.setattr("vitnas.nas.search.worker.tune.report", reported.append)
    settings = TrialSettings(train=TrainSettings(epochs=1))
    run_trial_in_worker({"arch": {"name": "broken", "stages": "not a list"}}, data=None, settings=settings, threads=1)
    payload = json.loads(reported[-1]["vitnas_outcome"])
    assert payload["status"] == "failed" and payload["error"] and "Traceback" in payload["log"]
