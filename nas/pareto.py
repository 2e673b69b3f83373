"""Pareto maths over plain numbers: non-dominated sets and fronts, exact hypervolume, reference point, knee.

Every function takes `points` (one row per trial, one column per objective) and `directions` (one "maximize" or
"minimize" per column, Optuna's spelling). Internally maximised columns are negated so that smaller is better.

Dominance: a dominates b when a is at least as good in every objective and strictly better in one. Two identical
points therefore do not dominate each other: exact duplicates on the front are all non-dominated.
"""
from collections.abc import Sequence

import numpy as np

REFERENCE_MARGIN = 0.1  # the reference point sits this fraction of each objective's range beyond its worst value
REFERENCE_RULE = (f"per objective, the worst completed value pushed out by {REFERENCE_MARGIN:.0%} of the objective's "
                  f"range (by {REFERENCE_MARGIN:.0%} of max(|worst|, 1) when the range is 0)")
KNEE_RULE = "the front member closest to the ideal point, each objective normalised to [0, 1] over the front"


def non_dominated(points, directions: Sequence[str]) -> list[int]:
    """Indices (ascending) of the points that no other point dominates; ties and duplicates are all kept."""
    minimised = _as_minimisation(points, directions)
    return np.flatnonzero(_non_dominated_mask(minimised)).tolist()


def non_dominated_fronts(points, directions: Sequence[str]) -> list[list[int]]:
    """Non-dominated sort: front 0 is the Pareto set, front 1 the Pareto set of the rest, and so on."""
    minimised = _as_minimisation(points, directions)
    remaining = np.arange(len(minimised))
    fronts = []
    while len(remaining):
        mask = _non_dominated_mask(minimised[remaining])
        fronts.append(remaining[mask].tolist())
        remaining = remaining[~mask]
    return fronts


def reference_point(points, directions: Sequence[str]) -> list[float]:
    """The hypervolume reference: per objective, the worst value pushed outwards by 10% of the objective's range.

    The range is max - min over the given points (pass all completed trials). Where it is zero (a single trial, or
    every trial equal in that objective) the margin is 10% of max(|worst value|, 1). Either way every given point is
    strictly better than the reference, so the hypervolume of a non-empty set is always positive.
    """
    minimised = _as_minimisation(points, directions)
    if not len(minimised):
        raise ValueError("the reference point needs at least one point")
    worst, best = minimised.max(axis=0), minimised.min(axis=0)
    spread = worst - best
    margin = np.where(spread > 0, REFERENCE_MARGIN * spread, REFERENCE_MARGIN * np.maximum(np.abs(worst), 1.0))
    return (_signs(directions) * (worst + margin)).tolist()


def hypervolume(points, reference: Sequence[float], directions: Sequence[str]) -> float:
    """Exact volume of objective space dominated by the points and bounded by the reference point.

    Points that are not strictly better than the reference in every objective add nothing. Exact for any number of
    objectives (WFG-style: exclusive volumes over limit sets, slicing off one objective per level); fast enough for
    hundreds of points and up to about five objectives.
    """
    minimised = _as_minimisation(points, directions)
    ref = _as_minimisation([reference], directions)[0]
    inside = minimised[(minimised < ref).all(axis=1)]
    if not len(inside):
        return 0.0
    return float(_wfg(_unique_non_dominated(inside), ref))


def knee(points, directions: Sequence[str]) -> int | None:
    """Index of the knee of a front (pass the front's points): the point closest to the ideal point.

    Each objective is normalised to [0, 1] over the given points (0 = best value on the front, 1 = worst; an objective
    with no spread is 0 for all), and the knee is the point at the smallest Euclidean distance from the origin,
    i.e. the best balanced compromise. Ties go to the first such point. None for no points.
    """
    minimised = _as_minimisation(points, directions)
    if not len(minimised):
        return None
    low, high = minimised.min(axis=0), minimised.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    distance = np.linalg.norm((minimised - low) / span, axis=1)
    return int(np.argmin(distance))


def _signs(directions: Sequence[str]) -> np.ndarray:
    """+1 for minimised objectives, -1 for maximised ones: multiplying by it converts both ways."""
    unknown = [d for d in directions if d not in ("maximize", "minimize")]
    if unknown:
        raise ValueError(f"directions must be 'maximize' or 'minimize', got {unknown}")
    return np.array([-1.0 if d == "maximize" else 1.0 for d in directions])


def _as_minimisation(points, directions: Sequence[str]) -> np.ndarray:
    """Validated float array of shape (n, objectives) in which smaller is better for every column."""
    signs = _signs(directions)
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        array = array.reshape(0, len(signs))
    if array.ndim != 2 or array.shape[1] != len(signs):
        raise ValueError(f"points must be rows of {len(signs)} objective values, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("points must be finite numbers")
    return array * signs


def _non_dominated_mask(minimised: np.ndarray) -> np.ndarray:
    """True for rows that no other row dominates (all pairs at once: n^2 * objectives booleans)."""
    no_worse = (minimised[:, None, :] <= minimised[None, :, :]).all(axis=2)  # [i, j]: i no worse than j anywhere
    better = (minimised[:, None, :] < minimised[None, :, :]).any(axis=2)  # [i, j]: i better than j somewhere
    return ~(no_worse & better).any(axis=0)


def _unique_non_dominated(minimised: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows: duplicates add no volume and only slow the recursion."""
    distinct = np.unique(minimised, axis=0)
    return distinct[_non_dominated_mask(distinct)]


def _wfg(front: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of mutually non-dominated points that are all strictly better than ref (minimisation).

    Points are taken worst-first in the last objective. The exclusive volume of point k (what it adds beyond the later
    points) is its box minus the volume of the later points clipped into that box (the limit set). Clipped points all
    share k's last value, so that part is a slab of the last objective times a volume one dimension down.
    """
    count, dims = front.shape
    if count == 0:
        return 0.0
    if dims == 1:
        return float(ref[0] - front[:, 0].min())
    if dims == 2:
        return _area_2d(front, ref)
    ordered = front[np.argsort(-front[:, -1], kind="stable")]
    total = 0.0
    for k, point in enumerate(ordered):
        slab = ref[-1] - point[-1]
        limit_set = np.maximum(ordered[k + 1:, :-1], point[:-1])
        covered = _wfg(_unique_non_dominated(limit_set), ref[:-1]) if len(limit_set) else 0.0
        total += slab * (np.prod(ref[:-1] - point[:-1]) - covered)
    return total


def _area_2d(points: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume by one sweep along the first objective (dominated points are harmless here)."""
    ordered = points[np.argsort(points[:, 0], kind="stable")]
    best_second = np.minimum.accumulate(ordered[:, 1])
    widths = np.diff(np.append(ordered[:, 0], ref[0]))
    return float(np.sum(widths * (ref[1] - best_second)))
