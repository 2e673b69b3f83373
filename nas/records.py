"""Plain records of a study: what the search module reads out of the Optuna storage and every report consumes.

They hold numbers and dicts only (no Optuna objects), so reports and Pareto maths are testable on hand-made studies.
"""
from dataclasses import dataclass, field
from typing import Literal

DIRECTIONS = ("maximize", "minimize")
TRIAL_STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING", "WAITING")


@dataclass(frozen=True)
class Objective:
    """One optimised metric and whether larger or smaller is better (Optuna's spelling)."""

    name: str
    direction: Literal["maximize", "minimize"]

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"objective {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")


@dataclass(frozen=True)
class TrialRecord:
    """One trial as persisted: its state, objective values (empty unless COMPLETE), config and every measured metric."""

    number: int
    state: str  # one of TRIAL_STATES
    values: dict[str, float]
    config: dict
    metrics: dict  # floats, ints or nested dicts of them
    duration_s: float | None = None
    error: str | None = None
    seed: int | None = None
    outcome: str | None = None  # a vitnas.nas.outcome.Outcome value: how the run ended; None while running
    started_at: float | None = None  # POSIX seconds, as the storage timed the trial (reports plot progress over time)
    finished_at: float | None = None
    # a front member's test accuracy and robustness on test images, measured when its search finished
    # (nas/search/final.py); empty where they were not measured
    final_metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in TRIAL_STATES:
            raise ValueError(f"trial {self.number}: state must be one of {TRIAL_STATES}, got {self.state!r}")


@dataclass(frozen=True)
class StudySummary:
    """A whole study: its objectives in order and all its trials, whatever their state."""

    name: str
    objectives: list[Objective]
    trials: list[TrialRecord]
    storage: str = ""


def final_metrics_key(number: int) -> str:
    """The study user attribute that holds trial `number`'s final metrics. The study's, not the trial's own: Optuna
    refuses to change a finished trial, and the front is measured after its trials have finished."""
    return f"final_metrics:{number:04d}"


def trial_record(number: int, state: str, values: dict[str, float], attrs: dict,
                 started_at: float | None = None, finished_at: float | None = None,
                 study_attrs: dict | None = None) -> TrialRecord:
    """A trial as the study store keeps it in the storage's user attributes, the trial's and (its final metrics)
    the study's: one mapping for every reader."""
    return TrialRecord(number=number, state=state, values=values if state == "COMPLETE" else {},
                       config=attrs.get("config", {}), metrics=attrs.get("metrics", {}),
                       duration_s=attrs.get("duration_s"), error=attrs.get("error"), seed=attrs.get("seed"),
                       outcome=attrs.get("outcome"), started_at=started_at, finished_at=finished_at,
                       final_metrics=(study_attrs or {}).get(final_metrics_key(number), {}))
