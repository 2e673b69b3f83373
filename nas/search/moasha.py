"""Multi-objective asynchronous successive halving (MO-ASHA, Schmucker et al. 2021) as the search's early stopping.

Rungs sit at epochs grace * rf**k below the epoch budget. When a trial finishes a rung's epoch, the objectives known
by then (its validation accuracy at that epoch, and the objectives measured before training, such as MACs) are
recorded at the rung and ranked against every result recorded there before: non-dominated sorting, ties within a
front broken by crowding distance (NSGA-II). Of the n results at the rung (the trial's own included) the best
n // rf go on; the trial stops when it is not among them. With fewer than rf results there is no evidence yet, and
every trial goes on, as in ASHA.

The rank is computed for the trial being judged (how many recorded results are strictly ahead of it), never read
off a sorted order, and crowding distances depend on values only, so the decision is the same whatever the order
of the recorded list; ties favour the trial being judged. Records live in the Optuna storage as the trial's `rungs`
user attribute, so a resumed study ranks against everything it recorded before; records of interrupted runs are
dropped (their retry records again).

Rungs are in epochs, which needs an epoch budget: under a time budget each model reaches a given epoch at a
different point of its learning-rate schedule, so equal epochs would not compare like with like.
"""
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from vitnas.errors import UserError
from vitnas.nas.metrics import METRICS
from vitnas.nas.outcome import Outcome
from vitnas.nas.pareto import non_dominated_fronts
from vitnas.nas.records import Objective

EARLY_STOP = ("moasha", "none")
RUNGS_ATTR = "rungs"  # trial user attribute: {"epoch": [rung values]}
COST_MEASUREMENT = "cost"
RUNG_ATTR = "rung"  # trial user attribute of a stopped trial: the epoch of the rung where it stopped


@dataclass(frozen=True)
class EarlyStopping:
    """`--early-stop`, `--grace` and `--reduction-factor` as given; `rungs` checks them against the budget."""

    method: str = "none"
    grace: int = 1
    reduction_factor: int = 3

    def __post_init__(self) -> None:
        if self.method not in EARLY_STOP:
            raise UserError(f"--early-stop: unknown method {self.method!r}; choose from {', '.join(EARLY_STOP)}")

    def rungs(self, epochs: int | None) -> "Rungs | None":
        """The rungs for an epoch budget; None without early stopping."""
        if self.method == "none":
            return None
        if epochs is None:
            raise UserError("--early-stop moasha compares trials at equal epochs: give an epoch budget (--epochs N); "
                            "under --time each model reaches an epoch at a different point of its schedule")
        return Rungs(self.grace, self.reduction_factor, epochs)


@dataclass(frozen=True)
class Rungs:
    """Where trials are judged: epochs grace, grace * rf, grace * rf**2, ... below the epoch budget."""

    grace: int
    reduction_factor: int
    max_epochs: int

    def __post_init__(self) -> None:
        if self.grace < 1:
            raise UserError(f"--grace must be at least 1 epoch, got {self.grace}")
        if self.reduction_factor < 2:
            raise UserError(f"--reduction-factor must be at least 2, got {self.reduction_factor}")
        if self.grace >= self.max_epochs:
            raise UserError(f"--grace {self.grace} leaves no rung below the budget of {self.max_epochs} epochs: "
                            "lower --grace or raise --epochs")

    @property
    def epochs(self) -> tuple[int, ...]:
        rungs, epoch = [], self.grace
        while epoch < self.max_epochs:
            rungs.append(epoch)
            epoch *= self.reduction_factor
        return tuple(rungs)


def crowding_distances(minimised: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within one front (smaller is better in every column), from values only:
    a row's neighbours in a column are the next distinct values above and below it, so exact duplicates get equal
    distances whatever their order. A row holding a column's extreme value is infinitely far; a column in which
    every row is equal tells nothing and adds 0."""
    minimised = np.asarray(minimised, dtype=float)
    distance = np.zeros(len(minimised))
    for column in minimised.T:
        levels = np.unique(column)
        if len(levels) < 2:
            continue
        position = np.searchsorted(levels, column)
        below, above = levels[np.maximum(position - 1, 0)], levels[np.minimum(position + 1, len(levels) - 1)]
        edge = (position == 0) | (position == len(levels) - 1)
        distance += np.where(edge, np.inf, (above - below) / (levels[-1] - levels[0]))
    return distance


def ahead_of(point: Sequence[float], recorded: Sequence[Sequence[float]], directions: Sequence[str]) -> int:
    """How many recorded results rank strictly ahead of `point`: in an earlier non-dominated front, or in its front
    with a larger crowding distance."""
    if not len(recorded):
        return 0
    points = np.asarray([*recorded, point], dtype=float)
    front_of = np.empty(len(points), dtype=int)
    crowding = np.empty(len(points))
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    for rank, members in enumerate(non_dominated_fronts(points, directions)):
        front_of[members] = rank
        crowding[members] = crowding_distances(points[members] * signs)
    own_front, own_crowding = front_of[-1], crowding[-1]
    others_front, others_crowding = front_of[:-1], crowding[:-1]
    return int(np.sum((others_front < own_front) | ((others_front == own_front) & (others_crowding > own_crowding))))


def continues(point: Sequence[float], recorded: Sequence[Sequence[float]], directions: Sequence[str],
              reduction_factor: int) -> bool:
    """Does a trial with `point` at a rung that holds `recorded` (other trials' results) go on?"""
    keep = (len(recorded) + 1) // reduction_factor
    return keep == 0 or ahead_of(point, recorded, directions) < keep


@dataclass(frozen=True)
class Decision:
    stop: bool
    rung: int  # the rung's epoch
    place: int  # results ahead of the trial at the rung
    size: int  # results at the rung, the trial's own included

    def reason(self, reduction_factor: int) -> str:
        return (f"pruned by MO-ASHA at the epoch-{self.rung} rung: {self.place} of {self.size} results there rank "
                f"ahead of it, only the best {self.size // reduction_factor} go on")


class MoAsha:
    """Judges trials at their rungs and keeps the rung records, in memory and in the Optuna storage."""

    def __init__(self, rungs: Rungs, objectives: Sequence[Objective], study: optuna.Study):
        self.rungs = rungs
        # validation accuracy is what a rung learns; the cost objectives (counted before training) are known too
        costs = [o for o in objectives if METRICS[o.name].measurement == COST_MEASUREMENT]
        self.keys = ["val_accuracy"] + [METRICS[o.name].key for o in costs]
        self.directions = ["maximize"] + [o.direction for o in costs]
        self._records: dict[int, dict[int, list[float]]] = {epoch: {} for epoch in rungs.epochs}
        for frozen in study.get_trials(deepcopy=False):
            if frozen.user_attrs.get("outcome") != Outcome.INTERRUPTED.value:
                for epoch, values in frozen.user_attrs.get(RUNGS_ATTR, {}).items():
                    if int(epoch) in self._records:
                        self._records[int(epoch)][frozen.number] = values

    def recorded(self, epoch: int) -> dict[int, list[float]]:
        """Trial number -> rung values of the results recorded at the rung of `epoch`."""
        return dict(self._records[epoch])

    def judge(self, trial: optuna.trial.Trial, epoch: int, val_accuracy: float, costs: dict) -> Decision | None:
        """At a rung: record the trial's result there and decide; elsewhere None. `costs`: the trial's cost metrics."""
        if epoch not in self._records:
            return None
        point = [float(val_accuracy)] + [float(costs[key]) for key in self.keys[1:]]
        others = [values for number, values in self._records[epoch].items() if number != trial.number]
        decision = Decision(stop=not continues(point, others, self.directions, self.rungs.reduction_factor),
                            rung=epoch, place=ahead_of(point, others, self.directions), size=len(others) + 1)
        self._records[epoch][trial.number] = point
        trial.set_user_attr(RUNGS_ATTR, {str(e): records[trial.number] for e, records in self._records.items()
                                         if trial.number in records})
        return decision

    def forget(self, number: int) -> None:
        """An interrupted run's records: its retry records its own."""
        for records in self._records.values():
            records.pop(number, None)
