"""The search as a producer on the trial executor: Optuna proposes each architecture, the study store keeps each result.

Asked for the next run, it asks Optuna's study for a config (define-by-run through the space), rejects configs over
the MACs/params limits before they cost anything, and records each run in the study store the moment it ends.
"""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import optuna

from vitnas.nas.executor import TrialRequest, TrialResult
from vitnas.nas.outcome import Outcome
from vitnas.nas.records import TrialRecord
from vitnas.nas.search.study import StudyStore
from vitnas.nas.search.weights import KeepWeights
from vitnas.nas.trainer import EpochMetrics
from vitnas.nas.trial import TrialSettings
from vitnas.errors import UserError

MAX_CONSECUTIVE_REJECTIONS = 500
SEARCH_DATA = "search"  # a search trains every trial on one data set (one seed)


class SearchListener(Protocol):
    """What a live view is told; every method runs on the driver."""

    def trial_started(self, number: int, config: dict) -> None: ...
    def trial_progress(self, number: int, epoch: int, val_accuracy: float) -> None: ...
    def trial_finished(self, record: TrialRecord) -> None: ...


@dataclass(frozen=True)
class CostLimits:
    """The most MACs and parameters a proposed architecture may have; larger ones are rejected untrained."""

    max_macs: int | None = None
    max_params: int | None = None

    def violation(self, macs: int, params: int) -> str | None:
        if self.max_macs is not None and macs > self.max_macs:
            return f"rejected before training: {macs:,} MACs > --max-macs {self.max_macs:,}"
        if self.max_params is not None and params > self.max_params:
            return f"rejected before training: {params:,} params > --max-params {self.max_params:,}"
        return None


class OptunaProducer:
    def __init__(self, store: StudyStore, propose: Callable, cost: Callable[[object], tuple[int, int]],
                 limits: CostLimits, total: int, settings: TrialSettings, listener: SearchListener,
                 keep: KeepWeights = KeepWeights(), max_rejections: int = MAX_CONSECUTIVE_REJECTIONS):
        self.store, self.propose, self.cost, self.limits = store, propose, cost, limits
        self.total, self.settings, self.listener, self.keep = total, settings, listener, keep
        self.max_rejections = max_rejections
        self._running: dict[str, tuple[optuna.trial.Trial, dict]] = {}

    def next_request(self) -> TrialRequest | None:
        if self.store.counted_trials() + len(self._running) >= self.total:
            return None
        for _ in range(self.max_rejections):
            trial = self.store.ask()
            try:
                config = self.propose(trial)
            except UserError as err:  # a space file whose choices cannot make a valid model
                self.store.reject(trial, {}, str(err))
                raise
            macs, params = self.cost(config)
            reason = self.limits.violation(macs, params)
            if reason is None:
                break
            self.store.reject(trial, config.to_dict(), reason)
        else:
            raise UserError(f"{self.max_rejections} proposals in a row were over the cost limits "
                            "(--max-macs/--max-params): raise the limits or narrow the space")
        config_dict = config.to_dict()
        key = str(trial.number)
        self._running[key] = (trial, config_dict)
        self.listener.trial_started(trial.number, config_dict)
        return TrialRequest(key=key, arch=config_dict, settings=self.settings, data=SEARCH_DATA,
                            keep_weights=self.keep.wanted)

    def on_progress(self, key: str, epoch: EpochMetrics) -> None:
        self.listener.trial_progress(int(key), epoch.epoch, epoch.val_accuracy)

    def on_finished(self, key: str, result: TrialResult) -> None:
        trial, config = self._running.pop(key)
        record = self.store.finish(trial, config, result)
        if result.outcome is Outcome.OK:
            self.keep.drop_off_front(self.store)
        self.listener.trial_finished(record)

    def on_interrupted(self, keys: list[str]) -> None:
        """Runs cut off by Ctrl-C or an error: recorded as interrupted and queued again for --resume."""
        for key in keys:
            self.store.interrupt(self._running.pop(key)[0])
