"""Budgets that bound a whole trial: bounded evaluation subsets, the default trial timeout, proposals infeasible for
the budget rejected untrained, and a run over its timeout killed and recorded failed (over time)."""
import dataclasses
import time

import pytest
import torch

from vitnas.cli import options
from vitnas.nas.data import load_dataset
from vitnas.nas.executor import Resources, TrialRequest, TrialResult
from vitnas.nas.executor.dispatch import Dispatcher
from vitnas.nas.metrics import measurements_for, parse_objectives
from vitnas.nas.outcome import Outcome
from vitnas.nas.search.feasibility import Feasibility, default_trial_timeout, epoch_limit, peak_training_rate
from vitnas.nas.search.searcher import CostLimits, OptunaProducer
from vitnas.nas.trainer import TrainSettings
from vitnas.nas.trial import TrialSettings, bounded, measurement_work, run_trial
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=600,size=8,chans=1,classes=3"


@pytest.fixture(scope="module")
def data():
    return load_dataset(DATA, seed=0)


def _arch():
    return load_space("metaformer").sample(1, seed=0, image_size=8, in_chans=1, num_classes=3)[0]


def test_bounded_splits_are_seeded_stratified_subsets_and_training_is_untouched(data):
    settings = TrialSettings(val_images=30, test_images=12)
    cut = bounded(data, settings)
    assert len(cut.y_val) == 30 and len(cut.y_test) == 12  # 10 and 4 of each of the 3 balanced classes
    assert torch.bincount(cut.y_val).tolist() == [10, 10, 10]
    assert cut.x_train is data.x_train
    val = {tuple(x.flatten().tolist()) for x in data.x_val}
    assert all(tuple(x.flatten().tolist()) in val for x in cut.x_val)
    assert torch.equal(bounded(data, settings).x_val, cut.x_val)
    assert bounded(data, TrialSettings()) is data and bounded(data, TrialSettings(val_images=10**6)).x_val is data.x_val


def test_a_bounded_trial_validates_on_its_subset(data):
    settings = TrialSettings(train=TrainSettings(epochs=1, batch_size=64), measurements=frozenset(), val_images=30)
    outcome = run_trial(_arch(), data, settings)
    from vitnas.nas.inference import evaluate_accuracy
    expected = evaluate_accuracy(outcome.model, bounded(data, settings).x_val, bounded(data, settings).y_val)
    assert outcome.metrics["val_accuracy"] == outcome.history[-1]["val_accuracy"] == expected
    assert round(expected * 30) == pytest.approx(expected * 30)  # a count out of 30 images


def test_a_search_trial_evaluates_on_bounded_subsets_and_measures_only_what_is_asked():
    objectives = parse_objectives("accuracy,macs,robustness")
    search = options.trial_settings(None, 45.0, 0, "cpu", "default", search=True,
                                    measurements=measurements_for(objectives))
    assert search.val_images == search.test_images == options.SEARCH_EVAL_IMAGES
    assert search.measurements == {"cost", "accuracy", "training", "robustness"}  # no test pass, latency, memory
    train = options.trial_settings(5, None, 0, "cpu", "default", search=False,
                                   measurements=measurements_for(objectives))
    assert train.val_images is None and train.test_images is None


class _Counting(torch.nn.Module):
    """Counts the images of every forward pass, and of those that build a graph (a backward pass follows)."""

    def __init__(self, classes: int):
        super().__init__()
        self.linear = torch.nn.Linear(3 * 8 * 8, classes)
        self.images = self.graph_images = 0

    def forward(self, x):
        self.images += len(x)
        self.graph_images += len(x) if torch.is_grad_enabled() and x.requires_grad else 0
        return self.linear(x.flatten(1))


@pytest.mark.parametrize("spec", ["default", "pgd:1,2;patch:0.1;jpeg:3", "none"])
def test_a_suites_declared_work_is_the_forward_passes_it_runs(spec):
    from vitnas.nas.robustness import evaluate_robustness, parse_suite

    suite = dataclasses.replace(parse_suite(spec), pgd_steps=3, patch_steps=4)
    model, x, y = _Counting(4), torch.rand(50, 3, 8, 8), torch.randint(0, 4, (50,))
    evaluate_robustness(model, x, y, suite, batch_size=16, max_images=40)
    # a pass that builds a graph is followed by a backward pass, which costs about two forwards
    assert suite.forward_images(40, batch_size=16) == model.images + 2 * model.graph_images


def test_a_trial_reserves_the_work_of_the_measurements_it_takes(data):
    from vitnas.nas.robustness import parse_suite

    search = TrialSettings(measurements=frozenset({"robustness"}), robustness_images=100, val_images=60)
    cut = bounded(data, search)
    assert measurement_work(cut, search) == parse_suite("default").forward_images(60, 256)  # only 60 to measure
    with_test = dataclasses.replace(search, measurements=frozenset({"robustness", "test"}))
    assert measurement_work(cut, with_test) == measurement_work(cut, search) + len(cut.y_test)
    assert measurement_work(cut, TrialSettings(measurements=frozenset({"latency", "proxies"}))) == 0


def test_a_time_budget_keeps_time_for_the_measurements_but_at_most_half(data):
    from vitnas.nas.trainer import train

    def trained_for(reserve_images: int) -> float:
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        return train(model, data, TrainSettings(seconds=1.0, batch_size=8, device="cpu"),
                     reserve_images=reserve_images).train_seconds

    assert trained_for(0) >= 0.9  # the budget trains, less only the last validation of 60 images
    assert 0.5 <= trained_for(10**9) < 0.9  # measurements that would need hours leave training half the budget


def test_a_trial_takes_its_validation_accuracy_from_training_without_a_second_pass(data, monkeypatch):
    import vitnas.nas.measurements

    monkeypatch.setattr(vitnas.nas.measurements, "accuracy", None)  # calling it would fail
    settings = TrialSettings(train=TrainSettings(epochs=1, batch_size=64), measurements=frozenset(), val_images=30)
    outcome = run_trial(_arch(), data, settings)
    assert outcome.metrics["val_accuracy"] == outcome.history[-1]["val_accuracy"]


def test_the_default_trial_timeout_is_a_stated_multiple_of_a_time_budget():
    assert default_trial_timeout(TrainSettings(seconds=45)) == 135  # 3 x 45
    assert default_trial_timeout(TrainSettings(seconds=10)) == 70  # at least a minute beyond the budget
    assert default_trial_timeout(TrainSettings(epochs=3)) is None
    assert epoch_limit(TrainSettings(seconds=45), None) == 45
    assert epoch_limit(TrainSettings(epochs=3), 90) == 30 and epoch_limit(TrainSettings(epochs=3), None) is None


def test_feasibility_by_hand():
    check = Feasibility(epoch_seconds=10, macs_per_second=1e9, train_images=1000)
    assert check.estimate(5_000_000) == 5.0
    assert check.violation({"macs": 10_000_000}) is None  # exactly 10 s
    assert "infeasible for the budget" in check.violation({"macs": 20_000_000})


def test_the_peak_training_rate_is_a_plausible_cpu_rate():
    assert 1e8 < peak_training_rate(threads=1, precision="fp32", width=128, batch=64) < 1e13


class _Quiet:
    def trial_started(self, number, config): pass
    def trial_progress(self, number, epoch, val_accuracy): pass
    def trial_finished(self, record): pass


def test_infeasible_proposals_are_rejected_untrained_and_not_counted(memory_store):
    store = memory_store(sampler="random", dataset=DATA)
    space = load_space("metaformer")
    macs = iter([10**12, 10**6, 10**12, 10**6])
    producer = OptunaProducer(store, lambda t: space.suggest(t, image_size=8, in_chans=1, num_classes=3),
                              lambda config: {"macs": next(macs), "params": 1}, CostLimits(), 2, TrialSettings(),
                              _Quiet(), feasibility=Feasibility(45, 1e9, 45_000), trial_timeout=135)
    first = producer.next_request()
    assert first.key == "1" and first.timeout_s == 135
    producer.on_finished(first.key, TrialResult(Outcome.OK, {"val_accuracy": 0.5, "macs": 10**6}))
    assert producer.next_request().key == "3"
    rejected = [t for t in store.study.get_trials() if t.user_attrs.get("outcome") == "rejected"]
    assert [t.number for t in rejected] == [0, 2] and "infeasible" in rejected[0].user_attrs["error"]
    assert store.counted_trials() == 1


class _Recorder:
    def __init__(self, requests):
        self.requests, self.results = list(requests), {}

    def next_request(self):
        return self.requests.pop(0) if self.requests else None

    def on_progress(self, key, epoch):
        return None

    def on_finished(self, key, result):
        self.results[key] = result

    def on_interrupted(self, keys):
        pass


def _request(key: str, timeout: float | None, epochs: int = 1) -> TrialRequest:
    return TrialRequest(key=key, arch=_arch().to_dict(), data="d", timeout_s=timeout,
                        settings=TrialSettings(train=TrainSettings(epochs=epochs, device="cpu"),
                                               measurements=frozenset()))


def test_the_dispatcher_reports_a_run_over_its_timeout_until_killed_and_ends_it_failed_over_time():
    producer = _Recorder([_request("late", 0.05), _request("free", None)])
    dispatcher = Dispatcher(producer, {"d"})
    dispatcher.next_request("t1"), dispatcher.next_request("t2")
    assert dispatcher.overdue() == []
    time.sleep(0.1)
    assert dispatcher.overdue() == ["t1"] == dispatcher.overdue()  # until the executor has killed it
    dispatcher.killed("t1")
    assert dispatcher.overdue() == []
    dispatcher.ended("t1")  # Tune ends the killed run without a report
    result = producer.results["late"]
    assert result.outcome is Outcome.FAILED and result.error.startswith("over time")


@pytest.mark.slow
def test_a_run_over_its_timeout_is_killed_on_ray_and_the_others_go_on(tmp_path, data):
    from vitnas.nas.executor.run import execute

    producer = _Recorder([_request("late", 5.0, epochs=10_000), _request("quick", None)])
    execute(producer, {"d": data}, Resources(workers=2, cpus_per_trial=1), tmp_path)
    assert producer.results["quick"].outcome is Outcome.OK
    late = producer.results["late"]
    # 10,000 epochs would take hours; it is killed once its worker is up (a worker's start on a loaded machine
    # can take longer than the 5 s timeout itself)
    assert late.outcome is Outcome.FAILED and late.error.startswith("over time") and late.duration_s < 120
