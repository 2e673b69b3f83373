"""The search: Optuna proposes, the executor runs, every finished trial persists with its outcome (and weights);
kill -9 and --resume lose nothing."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.nas.checkpoint import load_checkpoint
from vitnas.nas.data import load_dataset
from vitnas.nas.executor import WAIT, TrialResult
from vitnas.nas.metrics import parse_objectives
from vitnas.nas.outcome import Outcome
from vitnas.nas.search.prefilter import Prefilter, PrefilterSpec
from vitnas.nas.search.samplers import make_sampler
from vitnas.nas.search.searcher import CostLimits, OptunaProducer
from vitnas.nas.search.study import AVOID_ATTR, StudySpec, StudyStore
from vitnas.nas.search.weights import SMALL_MODEL_PARAMS, KeepWeights
from vitnas.nas.trainer import evaluate_accuracy
from vitnas.nas.trial import TrialSettings
from vitnas.errors import UserError
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=192,size=8,chans=1,classes=3"
TINY = ["--space", "metaformer", "--dataset", DATA, "--epochs", "1", "--robustness", "gaussian:0.1",
        "--workers", "2", "--seed", "0"]
runner = CliRunner()
SPACE = load_space("metaformer")  # read once: parsing the space file costs more than sampling from it


def _report(directory) -> dict:
    result = runner.invoke(app, ["report", str(directory), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _complete(report: dict) -> dict:
    return {t["number"]: t["values"] for t in report["trials"] if t["state"] == "COMPLETE"}


def _macs_budget() -> int:
    """A MACs budget that most of the space's configs for DATA exceed, so rejection really happens."""
    from vitnas.nas.cost import count_cost
    macs = sorted(count_cost(c).macs for c in SPACE.sample(40, seed=1, image_size=8, in_chans=1, num_classes=3))
    return macs[len(macs) // 4]


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    budget = _macs_budget()
    result = runner.invoke(app, ["search", *TINY, "--trials", "3", "--out", str(out), "--study", "s",
                                 "--max-macs", str(budget)])
    assert result.exit_code == 0, result.output
    return out / "s", budget


@pytest.mark.slow
def test_search_runs_trials_on_ray_and_persists_each(finished_study):
    directory, _ = finished_study
    report = _report(directory)
    assert [o["name"] for o in report["objectives"]] == ["accuracy", "macs", "robustness"]
    done = _complete(report)
    assert len(done) == 3
    for number in done:
        folder = directory / "trials" / f"{number:04d}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["seed"] == 0 and metrics["dataset"] == DATA
        assert metrics["metrics"]["val_accuracy"] == done[number]["accuracy"]
        assert (folder / "config.yaml").read_text().startswith("name:")
    # which trials form the front is checked against hand-made values, without Ray, at the end of this file
    assert report["pareto"] and set(report["pareto"]) <= set(done) and report["hypervolume"] > 0


@pytest.mark.slow
def test_trial_folders_hold_weights_that_reproduce_the_recorded_accuracy(finished_study):
    """Tiny models keep their weights by default (--keep-weights auto): config + model.pt load like a checkpoint."""
    directory, _ = finished_study
    data = load_dataset(DATA, seed=0)
    for number, values in _complete(_report(directory)).items():
        checkpoint = load_checkpoint(directory / "trials" / f"{number:04d}")
        assert checkpoint.info["dataset"] == DATA and checkpoint.info["seed"] == 0
        assert evaluate_accuracy(checkpoint.model, data.x_val, data.y_val, device="cpu") == values["accuracy"]


@pytest.mark.slow
def test_cost_limits_reject_before_training_and_do_not_count(finished_study):
    directory, budget = finished_study
    store = StudyStore.open(directory)
    rejected = [t for t in store.study.get_trials() if t.user_attrs.get("outcome") == "rejected"]
    assert rejected, "the low MACs limit should have rejected some proposals"
    assert all("--max-macs" in t.user_attrs["error"] and not t.user_attrs.get("metrics") for t in rejected)
    assert all(t.user_attrs.get(AVOID_ATTR) for t in rejected)  # the sampler learns where they lie
    assert all(v["macs"] <= budget for v in _complete(_report(directory)).values())
    assert store.counted_trials() == 3


@pytest.mark.slow
def test_finished_study_is_not_overwritten_without_resume(finished_study):
    directory, _ = finished_study
    before = _report(directory)
    result = runner.invoke(app, ["search", *TINY, "--trials", "3", "--out", str(directory.parent), "--study", "s"])
    assert result.exit_code == 2
    assert "--resume" in result.stderr and "Traceback" not in result.output
    assert _report(directory)["trials"] == before["trials"]


@pytest.mark.slow
def test_resume_needs_the_same_objectives(finished_study):
    directory, _ = finished_study
    result = runner.invoke(app, ["search", *TINY, "--trials", "4", "--out", str(directory.parent), "--study", "s",
                                 "--resume", "--objectives", "accuracy,params"])
    assert result.exit_code == 2 and "objectives" in result.stderr


@pytest.mark.slow
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


def test_an_unknown_keep_weights_choice_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["search", *TINY, "--out", str(tmp_path), "--keep-weights", "some"])
    assert result.exit_code == 2 and "--keep-weights" in result.stderr and not (tmp_path / "s").exists()


@pytest.mark.slow
def test_ctrl_c_records_running_trials_interrupted_and_exits_130(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: the runs in flight are re-queued, none is lost."""
    args = [sys.executable, "-m", "vitnas.cli", "search", "--space", "metaformer", "--dataset", DATA, "--time", "60",
            "--workers", "2", "--trials", "3", "--out", str(tmp_path), "--study", "c"]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None:
        time.sleep(1)
        if (tmp_path / "c" / "study.json").exists() and _report(tmp_path / "c")["counts"]["running"] == 2:
            break
    time.sleep(3)
    os.killpg(driver.pid, signal.SIGINT)
    _, stderr = driver.communicate(timeout=180)
    assert driver.returncode == 130 and "--resume" in stderr
    trials = _report(tmp_path / "c")["trials"]
    assert sorted((t["state"], t["outcome"]) for t in trials) == [("FAIL", "interrupted")] * 2 + [("WAITING", None)] * 2


# -- the producer and the store, without Ray --------------------------------------------------------------------

def _store(tmp_path, name: str, seed: int = 0) -> StudyStore:
    """A SQLite study, as a search makes it: for tests that read it back (the other tests use `memory_store`)."""
    spec = StudySpec(name=name, storage=f"sqlite:///{tmp_path / name}.db", space="metaformer", dataset=DATA,
                     objectives=parse_objectives("accuracy,macs"), sampler="tpe", seed=seed)
    return StudyStore.create(tmp_path / name, spec, make_sampler("tpe", seed))


class _Quiet:
    def trial_started(self, number, config): pass
    def trial_progress(self, number, epoch, val_accuracy): pass
    def trial_finished(self, record): pass


def _producer(store: StudyStore, total: int, limits: CostLimits = CostLimits(), keep: KeepWeights = KeepWeights(),
              params: int = 100) -> OptunaProducer:
    propose = lambda trial: SPACE.suggest(trial, image_size=8, in_chans=1, num_classes=3)  # noqa: E731
    return OptunaProducer(store, propose, lambda cfg: {"macs": 1000, "params": params}, limits, total, TrialSettings(),
                          _Quiet(), keep, max_rejections=20)


def _ok(accuracy: float, macs: int, params: int = 100, weights: bytes | None = None) -> TrialResult:
    return TrialResult(Outcome.OK, {"val_accuracy": accuracy, "macs": macs, "params": params}, weights=weights)


def _drive(producer: OptunaProducer, n: int) -> list[dict]:
    """What the executor does with one worker: request, run, finish, in turn."""
    proposed = []
    for i in range(n):
        request = producer.next_request()
        proposed.append(request.arch)
        producer.on_finished(request.key, _ok(0.5 + 0.01 * i, 1000 + i))
    return proposed


def test_same_seed_proposes_the_same_configs(memory_store):
    first = _drive(_producer(memory_store("a"), 12), 12)
    second = _drive(_producer(memory_store("b"), 12), 12)
    other = _drive(_producer(memory_store("c", seed=1), 12), 12)
    assert first == second
    assert first != other


def test_each_outcome_maps_to_its_optuna_state_and_count(tmp_path):
    store = _store(tmp_path, "o")
    producer = _producer(store, 10)
    ended = {Outcome.OK: _ok(0.5, 10), Outcome.PRUNED: TrialResult(Outcome.PRUNED, {"val_accuracy": 0.2}),
             Outcome.DIVERGED: TrialResult(Outcome.DIVERGED, error="diverged: NaN"),
             Outcome.FAILED: TrialResult(Outcome.FAILED, error="worker died")}
    for result in ended.values():
        producer.on_finished(producer.next_request().key, result)
    running = producer.next_request()
    producer.on_interrupted([running.key])
    records = {t.outcome: t for t in store.summary().trials}
    assert {o: records[o.value].state for o in ended} == {Outcome.OK: "COMPLETE", Outcome.PRUNED: "PRUNED",
                                                          Outcome.DIVERGED: "FAIL", Outcome.FAILED: "FAIL"}
    assert records["interrupted"].state == "FAIL" and records[None].state == "WAITING"  # queued to run again
    assert store.counted_trials() == 4
    report = _report(tmp_path / "o")
    assert sorted(t["outcome"] or "" for t in report["trials"]) == sorted(
        ["", "diverged", "failed", "interrupted", "ok", "pruned"])
    folder = json.loads((tmp_path / "o" / "trials" / f"{records['pruned'].number:04d}" / "metrics.json").read_text())
    # a pruned run keeps its last metrics and the cost counted before it ran
    assert folder["status"] == "pruned" and folder["metrics"] == {"val_accuracy": 0.2, "macs": 1000, "params": 100}


def test_an_ok_run_without_its_objectives_is_recorded_failed(memory_store):
    store = memory_store()
    producer = _producer(store, 2)
    producer.on_finished(producer.next_request().key, TrialResult(Outcome.OK, {"val_accuracy": float("nan"),
                                                                               "macs": 1}))
    producer.on_finished(producer.next_request().key, TrialResult(Outcome.OK, {"val_accuracy": 0.5}))
    errors = [(t.state, t.outcome, t.error) for t in store.summary().trials]
    assert [e[:2] for e in errors] == [("FAIL", "failed")] * 2
    assert "NaN" in errors[0][2] and "macs" in errors[1][2]


def test_producer_stops_at_the_total(memory_store):
    store = memory_store()
    producer = _producer(store, 2)
    producer.on_finished(producer.next_request().key, TrialResult(Outcome.FAILED, error="boom"))
    _drive(producer, 1)
    assert producer.next_request() is None and store.counted_trials() == 2


def test_cost_limits_that_nothing_meets_are_a_user_error(memory_store):
    store = memory_store()
    with pytest.raises(UserError, match="--max-macs"):
        _producer(store, 3, CostLimits(max_macs=10)).next_request()
    assert store.counted_trials() == 0 and len(store.study.get_trials()) == 20
    assert {t.user_attrs["outcome"] for t in store.study.get_trials()} == {"rejected"}


def test_a_time_slice_hands_the_executor_back_between_rejected_proposals(memory_store):
    """With a slice of 0 s each call proposes once: rejected proposals return WAIT (the executor handles reports,
    then asks again), the count of rejections in a row carries across calls, and proposals still being gathered
    when the execution stops are interrupted like queued ones, not left RUNNING."""
    store = memory_store()
    macs = iter([50, 60, 5, 70, 80, 90, 95])  # over --max-macs 10 except the third
    producer = OptunaProducer(store, lambda trial: SPACE.suggest(trial, image_size=8, in_chans=1, num_classes=3),
                              lambda config: {"macs": next(macs), "params": 1}, CostLimits(max_macs=10), 5,
                              TrialSettings(), _Quiet(), max_rejections=4, proposal_slice_s=0.0)
    assert [producer.next_request() for _ in range(2)] == [WAIT, WAIT]
    request = producer.next_request()
    assert request.key == "2" and len(store.study.get_trials()) == 3
    assert [producer.next_request() for _ in range(4)] == [WAIT] * 4
    with pytest.raises(UserError, match="4 proposals in a row"):
        producer.next_request()

    stopping = memory_store("stopping")
    batch = OptunaProducer(stopping, lambda trial: SPACE.suggest(trial, image_size=8, in_chans=1, num_classes=3),
                           lambda config: {"macs": 5, "params": 1}, CostLimits(), 5, TrialSettings(), _Quiet(),
                           prefilter=Prefilter(PrefilterSpec("naswot", keep=0.5, batch=4), lambda config: 0.0,
                                               parse_objectives("accuracy,macs")),
                           proposal_slice_s=0.0)
    assert batch.next_request() is WAIT
    batch.on_interrupted([])
    assert [(t.state.name, t.user_attrs.get("outcome")) for t in stopping.study.get_trials()] == [
        ("FAIL", "interrupted"), ("WAITING", None)]  # failed as interrupted, its config queued for --resume


def _weights_study(store: StudyStore, keep: KeepWeights, params: int) -> dict[int, bool]:
    """Three trials (accuracy up, MACs down); the second is dominated by the third, the first and third trade off."""
    producer = _producer(store, 3, keep=keep, params=params)
    for accuracy, macs in ((0.9, 900), (0.5, 600), (0.6, 500)):
        request = producer.next_request()
        assert request.keep_weights == keep.wanted
        producer.on_finished(request.key, _ok(accuracy, macs, params, b"weights" if request.keep_weights else None))
    return {n: store.weights_path(n).exists() for n in range(3)}


@pytest.mark.parametrize("mode, params, kept", [
    ("all", SMALL_MODEL_PARAMS * 2, [True, True, True]),
    ("front", 100, [True, False, True]),
    ("none", 100, [False, False, False]),
    ("auto", SMALL_MODEL_PARAMS, [True, True, True]),
    ("auto", SMALL_MODEL_PARAMS + 1, [True, False, True]),
])
def test_keep_weights_keeps_what_it_says(memory_store, mode, params, kept):
    store = memory_store()
    exists = _weights_study(store, KeepWeights(mode), params)
    assert [exists[n] for n in range(3)] == kept
    assert all(store.weights_path(n).read_bytes() == b"weights" for n in range(3) if exists[n])


def test_the_reports_front_is_the_trials_no_other_trial_beats(tmp_path):
    """Hand-made (accuracy, MACs): 1 is beaten by 2 on both; 0 and 2 trade off; 3 ties 0's accuracy at a higher
    cost, so 0 beats it."""
    producer = _producer(_store(tmp_path, "p"), 4)
    for accuracy, macs in ((0.9, 900), (0.5, 600), (0.6, 500), (0.9, 950)):
        producer.on_finished(producer.next_request().key, _ok(accuracy, macs))
    report = _report(tmp_path / "p")
    assert report["pareto"] == [0, 2] and report["hypervolume"] > 0
