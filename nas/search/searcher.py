"""The search as a producer on the trial executor: Optuna proposes each architecture, the study store keeps each result.

Asked for the next run, it asks Optuna's study for a config (define-by-run through the space), rejects configs over
the MACs/params limits, infeasible for the budget or already run in the study (a sampler may propose an architecture
again) before they cost anything, optionally keeps only the best of a batch by a zero-cost proxy (--prefilter), stops
runs that MO-ASHA judges at a rung (--early-stop), and records each run in the study store the moment it ends.
"""
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import optuna

from vitnas.nas.executor import STOP, WAIT, Signal, TrialRequest, TrialResult
from vitnas.nas.outcome import Outcome
from vitnas.nas.records import TrialRecord
from vitnas.nas.search.feasibility import Feasibility
from vitnas.nas.search.moasha import RUNG_ATTR, Decision, MoAsha
from vitnas.nas.search.prefilter import Prefilter
from vitnas.nas.search.study import StudyStore, config_key
from vitnas.nas.search.weights import KeepWeights
from vitnas.nas.trainer import EpochMetrics
from vitnas.nas.trial import TrialSettings
from vitnas.errors import UserError

MAX_CONSECUTIVE_REJECTIONS = 500
# The most seconds one call for the next run spends proposing (each proposal: a sampler step over the whole study and
# a cost count, 0.2-1 s) before it lets the executor go on. Ray Tune asks on its driver loop, and a running trial's
# epoch report waits on that loop: a long run of rejected proposals once held two trials for 23 s.
PROPOSAL_SLICE_S = 0.25
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

    def violation(self, costs: dict) -> str | None:
        """Why a config with these cost metrics (nas.measurements.cost_metrics) is over a limit; None if it is not."""
        macs, params = costs["macs"], costs["params"]
        if self.max_macs is not None and macs > self.max_macs:
            return f"rejected before training: {macs:,} MACs > --max-macs {self.max_macs:,}"
        if self.max_params is not None and params > self.max_params:
            return f"rejected before training: {params:,} params > --max-params {self.max_params:,}"
        return None


@dataclass(frozen=True)
class _Proposal:
    trial: optuna.trial.Trial
    config: dict  # ArchConfig.to_dict()
    costs: dict  # the cost metrics, counted before training


class OptunaProducer:
    def __init__(self, store: StudyStore, propose: Callable, cost: Callable[[object], dict], limits: CostLimits,
                 total: int, settings: TrialSettings, listener: SearchListener, keep: KeepWeights = KeepWeights(),
                 max_rejections: int = MAX_CONSECUTIVE_REJECTIONS, *, feasibility: Feasibility | None = None,
                 prefilter: Prefilter | None = None, early_stop: MoAsha | None = None,
                 trial_timeout: float | None = None, allow_repeats: bool = False,
                 proposal_slice_s: float | None = None):
        self.store, self.propose, self.cost, self.limits = store, propose, cost, limits
        self.total, self.settings, self.listener, self.keep = total, settings, listener, keep
        self.max_rejections, self.feasibility, self.prefilter = max_rejections, feasibility, prefilter
        self.early_stop, self.trial_timeout, self.allow_repeats = early_stop, trial_timeout, allow_repeats
        self.proposal_slice_s = proposal_slice_s  # None: propose until a run is ready, however long it takes
        self._ran = store.ran_configs()  # architecture -> the trial that ran it: not run again unless allowed
        self._pending: list[_Proposal] = []  # admissible proposals of the batch being gathered
        self._rejected_in_a_row, self._last_rejection = 0, ""
        self._queued: list[_Proposal] = []  # proposals that passed the prefilter, waiting for a worker
        self._running: dict[str, _Proposal] = {}
        self._stopped: dict[str, Decision] = {}  # runs MO-ASHA stopped, until they end

    def next_request(self) -> TrialRequest | Signal | None:
        if self.store.counted_trials() + len(self._running) >= self.total:
            return None
        if not self._queued:
            if not self._gather(self.prefilter.batch if self.prefilter else 1):
                return WAIT  # asked again on the executor's next step, after it has handled the runs' reports
            needed = self.total - self.store.counted_trials() - len(self._running)
            self._queued, self._pending = self._select(self._pending, needed), []
        proposal = self._queued.pop(0)
        key = str(proposal.trial.number)
        self._running[key] = proposal
        self.listener.trial_started(proposal.trial.number, proposal.config)
        return TrialRequest(key=key, arch=proposal.config, settings=self.settings, data=SEARCH_DATA,
                            keep_weights=self.keep.wanted, timeout_s=self.trial_timeout)

    def _gather(self, count: int) -> bool:
        """Propose until `count` proposals are within the cost limits and feasible for the budget (True), or the time
        slice is spent (False: the batch is gathered on later calls). The others are told to the sampler as rejected
        (they never ran, and do not count); those over a limit or infeasible as ones to avoid."""
        deadline = None if self.proposal_slice_s is None else time.monotonic() + self.proposal_slice_s
        while len(self._pending) < count:
            if self._rejected_in_a_row == self.max_rejections:
                raise UserError(f"{self.max_rejections} proposals in a row were rejected before training (the last: "
                                f"{self._last_rejection}): raise the limits or the budget, or narrow the space")
            trial = self.store.ask()
            try:
                config = self.propose(trial)
            except UserError as err:  # a space file whose choices cannot make a valid model
                self.store.reject(trial, {}, str(err))
                raise
            costs = self.cost(config)
            too_costly = (self.limits.violation(costs)
                          or (self.feasibility.violation(costs) if self.feasibility else None))
            reason = too_costly or self._repeat(config.to_dict())
            if reason is None:
                self._pending.append(_Proposal(trial, config.to_dict(), costs))
                self._rejected_in_a_row = 0
            else:
                self.store.reject(trial, config.to_dict(), reason, avoid=too_costly is not None)
                self._rejected_in_a_row, self._last_rejection = self._rejected_in_a_row + 1, reason
            if len(self._pending) < count and deadline is not None and time.monotonic() > deadline:
                return False  # at least one proposal per call, so a batch is always gathered in the end
        return True

    def _repeat(self, config: dict) -> str | None:
        """Why `config` is not run: the study ran it, or it is running or waiting to run; None when it is new (or
        repeats are allowed: with a time budget a repeat measures the noise of training)."""
        if self.allow_repeats:
            return None
        taken = {**self._ran, **{config_key(p.config): p.trial.number
                                 for p in (*self._running.values(), *self._queued, *self._pending)}}
        number = taken.get(config_key(config))
        return None if number is None else (f"rejected before training: the architecture of trial {number} "
                                            "(--allow-repeats runs it again)")

    def _select(self, proposals: list[_Proposal], needed: int) -> list[_Proposal]:
        """Without a prefilter, all of them; with one, its best fraction, best first, at most `needed` (the rest are
        told to the sampler as rejected ones to avoid, so no kept proposal is left unrun when the study is full)."""
        if self.prefilter is None:
            return proposals
        kept, skipped = self.prefilter.split([(p.config, p.costs) for p in proposals], needed)
        for index, reason in skipped.items():
            self.store.reject(proposals[index].trial, proposals[index].config, reason, avoid=True)
        return [proposals[index] for index in kept]

    def on_progress(self, key: str, epoch: EpochMetrics) -> Signal | None:
        self.listener.trial_progress(int(key), epoch.epoch, epoch.val_accuracy)
        if self.early_stop is None:
            return None
        proposal = self._running[key]
        decision = self.early_stop.judge(proposal.trial, epoch.epoch, epoch.val_accuracy, proposal.costs)
        if decision is None or not decision.stop:
            return None
        self._stopped[key] = decision
        return STOP

    def on_finished(self, key: str, result: TrialResult) -> None:
        proposal = self._running.pop(key)
        decision = self._stopped.pop(key, None)
        if result.outcome is Outcome.PRUNED:  # keep what was known when it stopped: its cost, and where it stopped
            reason = decision.reason(self.early_stop.rungs.reduction_factor) if decision else result.error
            result = replace(result, metrics={**proposal.costs, **result.metrics}, error=reason)
            if decision:
                proposal.trial.set_user_attr(RUNG_ATTR, decision.rung)
        record = self.store.finish(proposal.trial, proposal.config, result)
        self._ran[config_key(proposal.config)] = proposal.trial.number
        if result.outcome is Outcome.OK:
            self.keep.drop_off_front(self.store)
        self.listener.trial_finished(record)

    def on_interrupted(self, keys: list[str]) -> None:
        """Runs cut off by Ctrl-C or an error: recorded as interrupted and queued again for --resume; so are the
        proposals that passed the prefilter, or were being gathered for it, but never started."""
        for proposal in [self._running.pop(key) for key in keys] + self._queued + self._pending:
            if self.early_stop is not None:
                self.early_stop.forget(proposal.trial.number)
            self.store.interrupt(proposal.trial)
        self._queued, self._pending = [], []
