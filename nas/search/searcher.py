"""The bridge between Ray Tune and Optuna: Tune asks this searcher for the next trial, Optuna proposes it.

Tune decides when and where trials run; this searcher asks Optuna's study for a config (define-by-run through the
space), rejects configs outside the MACs/params budget before they cost anything, and records each finished trial
in the study store the moment Tune reports it.
"""
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ray.tune.search import Searcher

from vitnas.nas.records import TrialRecord
from vitnas.nas.search.study import StudyStore
from vitnas.errors import UserError

MAX_CONSECUTIVE_REJECTIONS = 500


class SearchListener(Protocol):
    """What a live view is told; every method runs on the driver."""

    def trial_started(self, number: int, config: dict) -> None: ...
    def trial_progress(self, number: int, epoch: int, val_accuracy: float) -> None: ...
    def trial_finished(self, record: TrialRecord) -> None: ...


@dataclass(frozen=True)
class Budget:
    max_macs: int | None = None
    max_params: int | None = None

    def violation(self, macs: int, params: int) -> str | None:
        if self.max_macs is not None and macs > self.max_macs:
            return f"rejected before training: {macs:,} MACs > --max-macs {self.max_macs:,}"
        if self.max_params is not None and params > self.max_params:
            return f"rejected before training: {params:,} params > --max-params {self.max_params:,}"
        return None


class OptunaSearcher(Searcher):
    def __init__(self, store: StudyStore, propose: Callable, cost: Callable, budget: Budget, total: int,
                 listener: SearchListener, max_rejections: int = MAX_CONSECUTIVE_REJECTIONS):
        super().__init__()
        self.max_rejections = max_rejections
        self.store, self.propose, self.cost, self.budget = store, propose, cost, budget
        self.total, self.listener = total, listener
        self.error: UserError | None = None  # raised by the runner after Tune returns
        self._running: dict[str, tuple] = {}

    def suggest(self, trial_id: str):
        if self.error is not None or self.store.counted_trials() + len(self._running) >= self.total:
            return Searcher.FINISHED
        for _ in range(self.max_rejections):
            trial = self.store.ask()
            try:
                config = self.propose(trial)
            except UserError as err:  # a space file whose choices cannot make a valid model
                self.store.reject(trial, {}, str(err))
                self.error = err
                return Searcher.FINISHED
            macs, params = self.cost(config)
            reason = self.budget.violation(macs, params)
            if reason is None:
                break
            self.store.reject(trial, config.to_dict(), reason)
        else:
            self.error = UserError(f"{self.max_rejections} proposals in a row were over budget "
                                   "(--max-macs/--max-params): raise the budget or narrow the space")
            return Searcher.FINISHED
        config_dict = config.to_dict()
        self._running[trial_id] = (trial, config_dict, time.monotonic())
        self.listener.trial_started(trial.number, config_dict)
        return {"number": trial.number, "arch": config_dict}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._running and "epoch" in result:
            self.listener.trial_progress(self._running[trial_id][0].number, int(result["epoch"]),
                                         float(result.get("val_accuracy", float("nan"))))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._running:
            return
        trial, config, started = self._running.pop(trial_id)
        if result and "vitnas_outcome" in result:
            payload = json.loads(result["vitnas_outcome"])
        else:  # Ray lost the worker before it could report: killed, out of memory, node gone
            payload = {"status": "failed", "error": "the trial's Ray worker died before reporting "
                       "(out of memory, killed, or its node left the cluster); see Ray's logs"}
        payload.setdefault("duration_s", time.monotonic() - started)
        self.listener.trial_finished(self.store.finish(trial, config, payload))

    def interrupt_running(self) -> None:
        """The search stops with trials in flight (Ctrl-C): record them as interrupted and queue them again."""
        for trial, _, _ in self._running.values():
            self.store.interrupt(trial)
        self._running.clear()

    # The Optuna storage is the search's checkpoint: Tune's own copies of this searcher (it pickles the Tuner to
    # disk, and checkpoints searchers) carry no state, and the live study, view and locks stay in the driver.
    def __getstate__(self) -> dict:
        return {}

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass
