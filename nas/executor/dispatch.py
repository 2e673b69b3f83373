"""The executor's bookkeeping between Ray Tune's calls and a producer, free of Ray so it is testable on its own.

It knows which request each Tune trial runs, turns how a run ended into a TrialResult (a run the producer stopped
is PRUNED, a run that ended without reporting is FAILED because its worker died), and keeps the first exception a
producer raises so the execution can stop and re-raise it on the driver's main path.
"""
import time
from collections.abc import Callable, Collection
from dataclasses import asdict

from vitnas.nas.executor.requests import STOP, WAIT, Producer, Signal, TrialRequest, TrialResult
from vitnas.nas.outcome import Outcome
from vitnas.nas.trainer import EpochMetrics

WORKER_DIED = ("the trial's Ray worker died before reporting (out of memory, killed, or its node left the "
               "cluster); see Ray's logs")


class Dispatcher:
    def __init__(self, producer: Producer, datasets: Collection[str]):
        self.producer, self.datasets = producer, datasets
        self.error: Exception | None = None  # the producer's exception: the execution stops and raises it
        self._done = False  # the producer said no more requests
        self._running: dict[str, TrialRequest] = {}  # Tune trial id -> its request
        self._keys: set[str] = set()  # every key requested so far: keys must stay unique
        self._started: dict[str, tuple[float, float]] = {}  # trial id -> (monotonic, wall clock) at request
        self._history: dict[str, list[dict]] = {}
        self._stopping: set[str] = set()  # runs the producer stopped: they end PRUNED
        self._over_time: set[str] = set()  # runs killed over their timeout: they end FAILED

    @property
    def stopped(self) -> bool:
        """No request will come any more: the producer finished or raised."""
        return self._done or self.error is not None

    def next_request(self, trial_id: str) -> TrialRequest | Signal | None:
        if self.stopped:
            return None
        request = self._call(self.producer.next_request)
        if request is None or self.error is not None:
            self._done = True
            return None
        if request is WAIT:
            return WAIT
        self._check(request)
        if self.error is not None:
            return None
        self._keys.add(request.key)
        self._running[trial_id] = request
        self._started[trial_id] = (time.monotonic(), time.time())
        self._history[trial_id] = []
        return request

    def progress(self, trial_id: str, epoch: EpochMetrics) -> bool:
        """A run's epoch ended; True: the producer wants it stopped."""
        if trial_id not in self._running or trial_id in self._stopping or self.error is not None:
            return False
        self._history[trial_id].append(asdict(epoch))
        if self._call(self.producer.on_progress, self._running[trial_id].key, epoch) is STOP:
            self._stopping.add(trial_id)
            return True
        return False

    def overdue(self) -> list[str]:
        """Runs past their request's timeout and not killed yet: the executor kills each once it has a worker."""
        now = time.monotonic()
        return [trial_id for trial_id, request in self._running.items()
                if request.timeout_s is not None and trial_id not in self._over_time
                and now - self._started[trial_id][0] > request.timeout_s]

    def killed(self, trial_id: str) -> None:
        """The executor killed this overdue run's worker: it ends FAILED, over time."""
        self._over_time.add(trial_id)

    def finished(self, trial_id: str, result: TrialResult) -> None:
        """A run reported its result. A run stopped in its last moments keeps the result it reached."""
        request = self._running.pop(trial_id, None)
        self._stopping.discard(trial_id)
        self._over_time.discard(trial_id)
        if request is not None:
            self._call(self.producer.on_finished, request.key, result)

    def ended(self, trial_id: str) -> None:
        """Tune ended a run: if it did not report, the producer stopped it (PRUNED), it ran over its timeout and was
        killed (FAILED, over time) or its worker died (FAILED)."""
        if trial_id not in self._running or self.error is not None:  # reported already, or all stop: interrupted
            return
        history = self._history[trial_id]
        if trial_id in self._over_time:
            limit = self._running[trial_id].timeout_s
            result = self._result(trial_id, Outcome.FAILED, f"over time: killed at the trial timeout of {limit:g} s "
                                  f"after {len(history)} epochs")
        elif trial_id in self._stopping:
            result = self._result(trial_id, Outcome.PRUNED, f"pruned after epoch {len(history)}",
                                  metrics=dict(history[-1]) if history else {})
        else:
            result = self._result(trial_id, Outcome.FAILED, WORKER_DIED)
        self.finished(trial_id, result)

    def interrupt_running(self) -> None:
        """The execution stops (Ctrl-C, a producer error, or done): tell the producer which runs were in flight, if
        any; it may also hold proposals that never became runs."""
        keys = [request.key for request in self._running.values()]
        self._running.clear()
        self.producer.on_interrupted(keys)

    def _result(self, trial_id: str, outcome: Outcome, error: str, metrics: dict | None = None) -> TrialResult:
        started, started_at = self._started[trial_id]
        return TrialResult(outcome, metrics or {}, list(self._history[trial_id]), error=error,
                           duration_s=time.monotonic() - started, started_at=started_at, finished_at=time.time())

    def _check(self, request) -> None:
        if not isinstance(request, TrialRequest):
            self.error = TypeError(f"next_request must return a TrialRequest, WAIT or None, not {request!r}")
        elif request.key in self._keys:
            self.error = ValueError(f"trial request key {request.key!r} was used before: keys must be unique")
        elif request.data not in self.datasets:
            self.error = ValueError(f"trial request {request.key!r} names data set {request.data!r}, but execute "
                                    f"was given {sorted(self.datasets)}")

    def _call(self, method: Callable, *args):
        try:
            return method(*args)
        except Exception as err:  # noqa: BLE001 -- kept and re-raised by execute() once Ray has stopped
            self.error = self.error or err
            return None
