"""What passes between a producer of trials and the executor: requests in, per-epoch progress and results out."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from vitnas.nas.outcome import Outcome
from vitnas.errors import UserError

if TYPE_CHECKING:  # annotations only: reading a study (`vitnas report`) must not import torch
    from vitnas.nas.trainer import EpochMetrics
    from vitnas.nas.trial import TrialSettings


class Signal(Enum):
    WAIT = "wait"  # from next_request: nothing to run now; ask again on the executor's next step
    STOP = "stop"  # from on_progress: end this run now; it finishes PRUNED with the epochs it reached


WAIT, STOP = Signal.WAIT, Signal.STOP


@dataclass(frozen=True)
class TrialRequest:
    """One run: an architecture trained and measured once with these settings on the named data set."""

    key: str  # unique among the requests of one execution; the producer's callbacks name the run by it
    arch: dict  # ArchConfig.to_dict()
    settings: TrialSettings  # settings.train.seed is this run's seed
    data: str  # a key of the `datasets` given to execute (e.g. one per seed: the validation split is seeded)
    keep_weights: bool = False  # send the trained weights back (TrialResult.weights) when the run ends OK
    timeout_s: float | None = None  # wall clock from request to result; a run over it is killed and ends FAILED

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a trial request needs a non-empty key")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"a trial request's timeout must be positive, got {self.timeout_s}")


@dataclass(frozen=True)
class TrialResult:
    """How one run ended. A worker sends OK, DIVERGED or FAILED; the executor makes PRUNED (the producer stopped it)
    and FAILED (its worker died before reporting, or it ran over its timeout); INTERRUPTED and REJECTED never reach
    on_finished."""

    outcome: Outcome
    metrics: dict = field(default_factory=dict)  # every measured metric; a pruned run: its last epoch's metrics
    history: list[dict] = field(default_factory=list)  # one EpochMetrics dict per epoch run
    error: str | None = None  # why it did not end OK, one line
    log: str = ""  # the worker's per-epoch log and any traceback
    duration_s: float | None = None
    started_at: float | None = None  # wall clock (time.time())
    finished_at: float | None = None
    weights: bytes | None = None  # torch.save(state_dict) of Normalize + model, the format of a checkpoint's model.pt


@dataclass(frozen=True)
class Resources:
    """Where and how wide trials run: a local Ray (or the cluster at `address`), `workers` runs at a time."""

    workers: int = 2
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    address: str | None = None  # None: start a local Ray; "auto" or ray://host:port joins a cluster

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UserError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UserError(f"--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, got {self.cpus_per_trial:g} "
                            f"and {self.gpus_per_trial:g}")

    @property
    def threads(self) -> int:
        """Torch threads in one trial: its whole CPUs (at least one)."""
        return max(1, int(self.cpus_per_trial))


class Producer(Protocol):
    """Decides which runs happen and keeps their results. Every method runs on the driver, one call at a time.

    An exception raised by any method stops the execution: no request is asked for after it, runs that report
    before Ray has stopped them still reach on_finished, the rest are passed to on_interrupted, and execute()
    raises the exception once Ray has stopped.
    """

    def next_request(self) -> TrialRequest | Signal | None:
        """The next run; WAIT: none now (asked again soon); None: no more, ever (execute returns once runs end)."""

    def on_progress(self, key: str, epoch: EpochMetrics) -> Signal | None:
        """A run finished an epoch; return STOP to end it now as PRUNED (an early-stopping scheduler's hook)."""

    def on_finished(self, key: str, result: TrialResult) -> None:
        """A run ended (any outcome but INTERRUPTED): persist it here, at once."""

    def on_interrupted(self, keys: list[str]) -> None:
        """The execution stopped; these runs (maybe none) were cut off: they have no result and may run again later."""
