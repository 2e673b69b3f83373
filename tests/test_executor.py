"""The trial executor: a producer's requests run, their progress and results come back typed, and stop/die/error
each end a run the way the producer is promised. The dispatcher and the worker function run here without Ray; one
slow test runs a fixed list of requests through the real Ray executor."""
import io

import pytest
import torch

from vitnas.nas.data import load_dataset
from vitnas.nas.executor import STOP, WAIT, Resources, TrialRequest, TrialResult
from vitnas.nas.executor.dispatch import WORKER_DIED, Dispatcher
from vitnas.nas.executor.worker import run_request
from vitnas.nas.outcome import Outcome
from vitnas.nas.trainer import EpochMetrics, TrainSettings, evaluate_accuracy
from vitnas.nas.trial import TrialSettings, build_trial_model
from vitnas.errors import UserError
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=192,size=8,chans=1,classes=3"
SETTINGS = TrialSettings(train=TrainSettings(epochs=2, device="cpu"), measurements=frozenset())
SPACE = load_space("metaformer")  # read once: parsing the space file costs more than sampling from it


def _arch(classes: int = 3, seed: int = 0) -> dict:
    return SPACE.sample(1, seed=seed, image_size=8, in_chans=1, num_classes=classes)[0].to_dict()


def _request(key: str, data: str = "d", **kwargs) -> TrialRequest:
    return TrialRequest(key=key, arch=_arch(), settings=SETTINGS, data=data, **kwargs)


def _epoch(n: int, val: float = 0.5) -> EpochMetrics:
    return EpochMetrics(epoch=n, train_loss=1.0 / n, train_accuracy=val, val_accuracy=val, seconds=0.1,
                        images_per_second=100.0)


class ListProducer:
    """Hands out its requests in order (WAIT where the list says so); records what the executor tells it."""

    def __init__(self, requests: list, stop_at: dict[str, int] | None = None):
        self.requests, self.stop_at = list(requests), stop_at or {}
        self.progress: list[tuple[str, int]] = []
        self.results: dict[str, TrialResult] = {}
        self.interrupted: list[str] = []

    def next_request(self):
        return self.requests.pop(0) if self.requests else None

    def on_progress(self, key, epoch):
        self.progress.append((key, epoch.epoch))
        return STOP if self.stop_at.get(key) == epoch.epoch else None

    def on_finished(self, key, result):
        assert key not in self.results, f"{key} finished twice"
        self.results[key] = result

    def on_interrupted(self, keys):
        self.interrupted.extend(keys)


# -- the dispatcher, without Ray -----------------------------------------------------------------------------

def test_requests_are_handed_out_in_order_and_none_ends_for_good():
    first, second = _request("a"), _request("b")
    dispatcher = Dispatcher(ListProducer([first, WAIT, second]), {"d"})
    assert dispatcher.next_request("t1") is first
    assert dispatcher.next_request("t2") is WAIT
    assert dispatcher.next_request("t2") is second
    assert dispatcher.next_request("t3") is None and dispatcher.stopped
    assert dispatcher.next_request("t4") is None


def test_a_reported_result_reaches_the_producer_once():
    producer = ListProducer([_request("a")])
    dispatcher = Dispatcher(producer, {"d"})
    dispatcher.next_request("t1")
    dispatcher.progress("t1", _epoch(1))
    result = TrialResult(Outcome.OK, {"val_accuracy": 0.9})
    dispatcher.finished("t1", result)
    dispatcher.ended("t1")  # Tune's completion call comes after the result: nothing more to tell
    assert producer.progress == [("a", 1)] and producer.results == {"a": result}


def test_a_run_the_producer_stops_ends_pruned_with_the_epochs_it_reached():
    producer = ListProducer([_request("a")], stop_at={"a": 2})
    dispatcher = Dispatcher(producer, {"d"})
    dispatcher.next_request("t1")
    assert dispatcher.progress("t1", _epoch(1, 0.4)) is False
    assert dispatcher.progress("t1", _epoch(2, 0.6)) is True
    assert dispatcher.progress("t1", _epoch(3, 0.7)) is False  # an epoch already under way when it was stopped
    dispatcher.ended("t1")
    result = producer.results["a"]
    assert result.outcome is Outcome.PRUNED and "epoch 2" in result.error
    assert [h["epoch"] for h in result.history] == [1, 2] and result.metrics["val_accuracy"] == 0.6
    assert result.duration_s >= 0 and result.weights is None


def test_a_run_that_ends_without_reporting_failed_because_its_worker_died():
    producer = ListProducer([_request("a")])
    dispatcher = Dispatcher(producer, {"d"})
    dispatcher.next_request("t1")
    dispatcher.ended("t1")
    assert producer.results["a"].outcome is Outcome.FAILED and producer.results["a"].error == WORKER_DIED


def test_a_producer_error_stops_requests_and_running_runs_are_interrupted():
    class Failing(ListProducer):
        def on_finished(self, key, result):
            raise UserError("disk full")

    producer = Failing([_request("a"), _request("b"), _request("c")])
    dispatcher = Dispatcher(producer, {"d"})
    dispatcher.next_request("t1")
    dispatcher.next_request("t2")
    dispatcher.finished("t1", TrialResult(Outcome.OK))
    assert isinstance(dispatcher.error, UserError) and dispatcher.stopped
    assert dispatcher.next_request("t3") is None
    dispatcher.ended("t2")  # Tune stops everything: not a dead worker
    dispatcher.interrupt_running()
    assert producer.interrupted == ["b"]


@pytest.mark.parametrize("bad, message", [("dup", "used before"), ("other-data", "names data set"),
                                          ("not-a-request", "must return a TrialRequest")])
def test_malformed_requests_stop_the_execution_with_a_reason(bad, message):
    request = {"dup": _request("a"), "other-data": _request("b", data="elsewhere"), "not-a-request": {"key": "c"}}[bad]
    dispatcher = Dispatcher(ListProducer([_request("a"), request]), {"d"})
    dispatcher.next_request("t1")
    assert dispatcher.next_request("t2") is None
    assert message in str(dispatcher.error)


def test_resources_are_checked_once():
    assert Resources(workers=3, cpus_per_trial=2.5).threads == 2
    assert Resources(cpus_per_trial=0.25).threads == 1
    for bad in ({"workers": 0}, {"cpus_per_trial": 0}, {"gpus_per_trial": -1}):
        with pytest.raises(UserError):
            Resources(**bad)


# -- the worker function, without Ray ------------------------------------------------------------------------

def test_the_worker_trains_reports_each_epoch_and_sends_loadable_weights():
    data = load_dataset(DATA, seed=0)
    epochs = []
    result = run_request(_request("a", keep_weights=True), data, epochs.append)
    assert result.outcome is Outcome.OK and result.error is None
    assert [e.epoch for e in epochs] == [1, 2] and len(result.history) == 2
    model = build_trial_model(ArchConfig.from_dict(_arch()), data)
    model.load_state_dict(torch.load(io.BytesIO(result.weights), weights_only=True))
    assert evaluate_accuracy(model, data.x_val, data.y_val, device="cpu") == result.metrics["val_accuracy"]
    assert run_request(_request("b"), data).weights is None  # not asked for


def test_a_trial_that_raises_is_reported_failed_with_its_reason():
    request = TrialRequest(key="x", arch={"name": "broken", "stages": "not a list"}, settings=SETTINGS, data="d")
    result = run_request(request, None)
    assert result.outcome is Outcome.FAILED and result.error and "Traceback" in result.log


# -- the real executor on Ray -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_list_of_requests_runs_on_ray_with_per_request_data_and_a_stop(tmp_path, capfd):
    """Data sets are routed by name (an arch for 4 classes fails on 3-class data), a STOP prunes at that epoch, and
    stdout stays the caller's (Tune prints nothing there)."""
    from vitnas.nas.executor.run import execute

    four = DATA.replace("classes=3", "classes=4")
    slow = TrialSettings(train=TrainSettings(epochs=4, device="cpu"), measurements=frozenset())
    requests = [TrialRequest("three", _arch(3), SETTINGS, "three", keep_weights=True),
                TrialRequest("four", _arch(4, seed=1), SETTINGS, "four"),
                TrialRequest("stopped", _arch(3, seed=2), slow, "three")]
    producer = ListProducer(requests, stop_at={"stopped": 1})
    execute(producer, {"three": load_dataset(DATA, seed=0), "four": load_dataset(four, seed=1)},
            Resources(workers=2, cpus_per_trial=1), tmp_path / "ray")
    results = producer.results
    assert set(results) == {"three", "four", "stopped"} and not producer.interrupted
    assert results["three"].outcome is Outcome.OK and results["three"].weights
    assert results["four"].outcome is Outcome.OK and results["four"].weights is None
    assert results["stopped"].outcome is Outcome.PRUNED and len(results["stopped"].history) == 1
    assert ("stopped", 1) in producer.progress and ("stopped", 2) not in producer.progress
    assert capfd.readouterr().out == ""


@pytest.mark.slow
def test_a_producer_error_is_raised_after_ray_stops(tmp_path):
    from vitnas.nas.executor.run import execute

    class Failing(ListProducer):
        def on_progress(self, key, epoch):
            raise UserError("the producer gave up")

    long = TrialSettings(train=TrainSettings(seconds=60, device="cpu"), measurements=frozenset())
    producer = Failing([TrialRequest(key, _arch(), long, "d") for key in ("a", "b")])
    with pytest.raises(UserError, match="gave up"):
        execute(producer, {"d": load_dataset(DATA, seed=0)}, Resources(workers=2), tmp_path / "ray")
    assert sorted(producer.interrupted) == ["a", "b"] and not producer.results
