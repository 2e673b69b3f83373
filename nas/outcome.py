"""How a run ended, as one type from the worker through the searcher to the study store and reports (Optuna-style).

A worker says OK, DIVERGED, FAILED or PRUNED; the driver adds INTERRUPTED (Ctrl-C or a killed driver cut the run
off; re-queued) and REJECTED (never trained: over a cost limit or infeasible). A trial stopped by a scheduler is
PRUNED, never FAILED; a worker that died before reporting is FAILED with that reason.
"""
from enum import Enum


class Outcome(str, Enum):
    OK = "ok"
    DIVERGED = "diverged"  # the loss became NaN/inf: a result about the architecture, recorded as failed
    FAILED = "failed"  # raised, ran out of memory, over time, or the worker died
    PRUNED = "pruned"  # stopped early by a scheduler; keeps its last metrics and the rung it reached
    INTERRUPTED = "interrupted"  # cut off by the driver stopping; its config runs again
    REJECTED = "rejected"  # never trained; does not count as a trial

    @property
    def completed(self) -> bool:
        """Has objective values: the only outcome that may sit on a Pareto front."""
        return self is Outcome.OK

    @property
    def counted(self) -> bool:
        """Counts towards --trials (INTERRUPTED runs again, REJECTED never ran)."""
        return self not in (Outcome.INTERRUPTED, Outcome.REJECTED)
