"""MO-ASHA: rungs, the ranking at a rung (properties over random rungs, hand-worked cases), records that survive a
resume, and the search's producer stopping a run at a rung (PRUNED with the rung it reached)."""
import json
import random

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.errors import UserError
from vitnas.nas.executor import STOP, TrialResult
from vitnas.nas.metrics import parse_objectives
from vitnas.nas.outcome import Outcome
from vitnas.nas.search.moasha import (RUNG_ATTR, RUNGS_ATTR, EarlyStopping, MoAsha, Rungs, ahead_of, continues,
                                      crowding_distances)
from vitnas.nas.search.samplers import make_sampler
from vitnas.nas.search.searcher import CostLimits, OptunaProducer
from vitnas.nas.search.study import StudySpec, StudyStore
from vitnas.nas.trainer import EpochMetrics
from vitnas.nas.trial import TrialSettings
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=192,size=8,chans=1,classes=3"
MAX_MIN = ["maximize", "minimize"]  # validation accuracy, MACs
runner = CliRunner()


def test_rungs_sit_at_grace_times_powers_of_the_factor_below_the_budget():
    assert Rungs(1, 3, 27).epochs == (1, 3, 9)
    assert Rungs(2, 2, 16).epochs == (2, 4, 8)
    assert Rungs(1, 3, 2).epochs == (1,)
    with pytest.raises(UserError, match="--grace"):
        Rungs(4, 3, 4)
    with pytest.raises(UserError, match="--reduction-factor"):
        Rungs(1, 1, 9)


def test_early_stopping_needs_an_epoch_budget_and_a_known_method():
    assert EarlyStopping("none").rungs(None) is None
    assert EarlyStopping("moasha", 1, 3).rungs(9) == Rungs(1, 3, 9)
    with pytest.raises(UserError, match="--epochs"):
        EarlyStopping("moasha").rungs(None)
    with pytest.raises(UserError, match="--early-stop"):
        EarlyStopping("hyperband")


def test_crowding_distance_by_hand():
    # columns: levels (1, 2, 4) and (1, 3, 4); the middle row's neighbours span 3 of 3 in each column: 1 + 1
    assert crowding_distances([[1, 4], [2, 3], [4, 1]]).tolist() == [float("inf"), 2.0, float("inf")]
    # duplicates get equal distances; a column where all rows agree adds nothing
    assert crowding_distances([[1, 5], [2, 5], [2, 5], [3, 5]]).tolist() == [float("inf"), 1.0, 1.0, float("inf")]


def test_a_rung_ranked_by_hand():
    """A(0.9, 100) and B(0.8, 50) trade off (front 0); P(0.85, 120) is dominated by A only (front 1); P dominates
    C(0.5, 200), which dominates D(0.4, 300). Two results are ahead of P."""
    recorded = [[0.9, 100], [0.8, 50], [0.5, 200], [0.4, 300]]
    point = [0.85, 120]
    assert ahead_of(point, recorded, MAX_MIN) == 2
    assert not continues(point, recorded, MAX_MIN, reduction_factor=2)  # 5 results: the best 2 go on
    assert continues(point, recorded + [[0.1, 1000]], MAX_MIN, reduction_factor=2)  # 6 results: the best 3 go on
    assert continues(point, recorded[:1], MAX_MIN, reduction_factor=3)  # 2 results < rf: no evidence yet


values = st.integers(0, 6).map(float)  # a coarse grid: ties and duplicates are common
points_2d = st.lists(st.tuples(values, values).map(list), min_size=0, max_size=12)
factors = st.integers(2, 4)


@settings(max_examples=100, deadline=None)
@given(points_2d, factors)
def test_a_trial_that_dominates_every_recorded_result_continues(recorded, reduction_factor):
    best = [max((p[0] for p in recorded), default=0.0) + 1, min((p[1] for p in recorded), default=0.0) - 1]
    assert continues(best, recorded, MAX_MIN, reduction_factor)


@settings(max_examples=100, deadline=None)
@given(points_2d, factors)
def test_a_trial_dominated_by_every_recorded_result_stops_once_the_rung_holds_rf_results(recorded, reduction_factor):
    worst = [min((p[0] for p in recorded), default=0.0) - 1, max((p[1] for p in recorded), default=0.0) + 1]
    assert continues(worst, recorded, MAX_MIN, reduction_factor) == (len(recorded) + 1 < reduction_factor)


@settings(max_examples=100, deadline=None)
@given(points_2d, st.tuples(values, values).map(list), factors, st.randoms(use_true_random=False))
def test_the_decision_does_not_depend_on_the_order_of_the_recorded_list(recorded, point, reduction_factor, rng):
    shuffled = list(recorded)
    rng.shuffle(shuffled)
    assert ahead_of(point, shuffled, MAX_MIN) == ahead_of(point, recorded, MAX_MIN)
    assert continues(point, shuffled, MAX_MIN, reduction_factor) == continues(point, recorded, MAX_MIN,
                                                                             reduction_factor)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(values, values, values).map(list), min_size=1, max_size=10))
def test_in_three_objectives_a_recorded_result_that_dominates_the_trial_is_ahead_of_it(recorded):
    directions = ["maximize", "minimize", "minimize"]
    point = recorded.pop()
    dominating = sum(all(a >= b if d == "maximize" else a <= b for a, b, d in zip(q, point, directions))
                     and q != point for q in recorded)
    assert ahead_of(point, recorded, directions) >= dominating


# -- records in the Optuna storage --------------------------------------------------------------------------------

def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=MAX_MIN)


def test_rung_records_persist_as_trial_attributes_and_reload_without_interrupted_runs():
    study = _study()
    objectives = parse_objectives("accuracy,macs,robustness")  # robustness is unknown at a rung: left out
    moasha = MoAsha(Rungs(1, 2, 8), objectives, study)
    assert moasha.keys == ["val_accuracy", "macs"]
    trials = [study.ask() for _ in range(3)]
    for trial, (accuracy, macs) in zip(trials, [(0.5, 100), (0.6, 50), (0.2, 400)]):
        assert moasha.judge(trial, 3, accuracy, {"macs": macs}) is None  # epoch 3 is no rung
        moasha.judge(trial, 1, accuracy, {"macs": macs})
    assert trials[0].user_attrs[RUNGS_ATTR] == {"1": [0.5, 100.0]}
    trials[2].set_user_attr("outcome", Outcome.INTERRUPTED.value)
    study.tell(trials[2], state=optuna.trial.TrialState.FAIL)
    resumed = MoAsha(Rungs(1, 2, 8), objectives, study)
    assert resumed.recorded(1) == {0: [0.5, 100.0], 1: [0.6, 50.0]}
    # the third result at the rung, dominated by both: 3 // 2 = 1 goes on, and it is not that one
    decision = resumed.judge(study.ask(), 1, 0.1, {"macs": 500})
    assert decision.stop and (decision.place, decision.size) == (2, 3)


# -- the producer, without Ray -------------------------------------------------------------------------------------

class _Quiet:
    def trial_started(self, number, config): pass
    def trial_progress(self, number, epoch, val_accuracy): pass
    def trial_finished(self, record): pass


def _store(tmp_path) -> StudyStore:
    """A SQLite study, for the test that reopens it (the others use `memory_store`)."""
    spec = StudySpec(name="m", storage=f"sqlite:///{tmp_path / 'm'}.db", space="metaformer", dataset=DATA,
                     objectives=parse_objectives("accuracy,macs"), sampler="random", seed=0)
    return StudyStore.create(tmp_path / "m", spec, make_sampler("random", 0))


def _producer(store: StudyStore, macs: list[int]) -> OptunaProducer:
    space = load_space("metaformer")
    costs = iter(macs)
    return OptunaProducer(store, lambda trial: space.suggest(trial, image_size=8, in_chans=1, num_classes=3),
                          lambda config: {"macs": next(costs), "params": 10}, CostLimits(), 10, TrialSettings(),
                          _Quiet(), early_stop=MoAsha(Rungs(1, 2, 4), store.spec.objectives, store.study))


def _epoch(n: int, accuracy: float) -> EpochMetrics:
    return EpochMetrics(n, 1.0, accuracy, accuracy, 0.1, 100.0)


def test_the_producer_stops_a_dominated_run_at_its_rung_and_records_it_pruned_with_the_rung(memory_store):
    store = memory_store(sampler="random")
    producer = _producer(store, [100, 200])
    first, second = producer.next_request(), producer.next_request()
    assert producer.on_progress(first.key, _epoch(1, 0.8)) is None  # alone at the rung
    assert producer.on_progress(first.key, _epoch(2, 0.85)) is None  # epoch 2 is a rung, but the only result there
    assert producer.on_progress(second.key, _epoch(1, 0.3)) is STOP  # worse and costlier: 2 // 2 = 1 goes on
    # the executor ends a stopped run PRUNED with its last epoch's metrics
    producer.on_finished(second.key, TrialResult(Outcome.PRUNED, {"val_accuracy": 0.3, "epoch": 1}))
    frozen = store.study.get_trials()[int(second.key)]
    assert frozen.state == optuna.trial.TrialState.PRUNED and frozen.user_attrs[RUNG_ATTR] == 1
    assert "MO-ASHA" in frozen.user_attrs["error"] and frozen.user_attrs["metrics"]["macs"] == 200
    record = next(t for t in store.summary().trials if t.number == int(second.key))
    assert record.state == "PRUNED" and record.values == {}  # never on a front
    metrics = json.loads((store.trial_dir(int(second.key)) / "metrics.json").read_text())
    assert metrics["status"] == "pruned" and metrics["metrics"]["macs"] == 200


def test_a_resumed_search_ranks_against_the_rung_records_it_had(tmp_path):
    store = _store(tmp_path)
    producer = _producer(store, [100])
    request = producer.next_request()
    producer.on_progress(request.key, _epoch(1, 0.9))
    producer.on_finished(request.key, TrialResult(Outcome.OK, {"val_accuracy": 0.9, "macs": 100}))
    reopened = StudyStore.open(tmp_path / "m", make_sampler("random", 0))
    resumed = _producer(reopened, [300] * 10)  # a proposal repeating the study's architecture is skipped
    late = resumed.next_request()
    assert resumed.on_progress(late.key, _epoch(1, 0.4)) is STOP


def test_interrupted_runs_leave_no_rung_record(memory_store):
    store = memory_store(sampler="random")
    producer = _producer(store, [100, 100])
    request = producer.next_request()
    producer.on_progress(request.key, _epoch(1, 0.9))
    producer.on_interrupted([request.key])
    assert producer.early_stop.recorded(1) == {}
    assert MoAsha(Rungs(1, 2, 4), store.spec.objectives, store.study).recorded(1) == {}


def test_moasha_under_a_time_budget_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["search", "--dataset", DATA, "--time", "5", "--early-stop", "moasha",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--epochs" in result.stderr and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_moasha_search_on_ray_prunes_at_rungs_and_keeps_pruned_trials_off_the_front(tmp_path):
    args = ["search", "--space", "metaformer", "--dataset", DATA, "--epochs", "4", "--robustness", "none",
            "--objectives", "accuracy,macs", "--workers", "2", "--trials", "8", "--early-stop", "moasha",
            "--reduction-factor", "2", "--out", str(tmp_path), "--study", "e", "--sampler", "random"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(runner.invoke(app, ["report", str(tmp_path / "e"), "--json"]).stdout)
    pruned = [t for t in report["trials"] if t["state"] == "PRUNED"]
    assert pruned and report["counts"]["pruned"] == len(pruned)
    assert not {t["number"] for t in pruned} & set(report["pareto"])
    store = StudyStore.open(tmp_path / "e")
    for frozen in store.study.get_trials():
        if frozen.state == optuna.trial.TrialState.PRUNED:
            assert frozen.user_attrs[RUNG_ATTR] in (1, 2) and str(frozen.user_attrs[RUNG_ATTR]) in \
                frozen.user_attrs[RUNGS_ATTR]


def test_seeded_random_rungs_agree_with_a_brute_force_count_of_dominating_results():
    """Results that dominate the trial are always ahead of it; results it dominates never are."""
    rng = random.Random(7)
    for _ in range(300):
        recorded = [[rng.randint(0, 5), rng.randint(0, 5)] for _ in range(rng.randint(1, 9))]
        point = [rng.randint(0, 5), rng.randint(0, 5)]
        better = sum(q[0] >= point[0] and q[1] <= point[1] and q != point for q in recorded)
        worse = sum(point[0] >= q[0] and point[1] <= q[1] and q != point for q in recorded)
        assert better <= ahead_of(point, recorded, MAX_MIN) <= len(recorded) - worse
