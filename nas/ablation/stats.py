"""Statistics of an ablation: per-arm summaries, paired differences, Holm's correction and verdicts.

Plain functions over numbers (scipy.stats for the distributions), so they are tested against hand-made results.
- Per arm and metric: mean, sample standard deviation, 95 % t-interval of the mean, and a BCa bootstrap interval
  once there are at least BOOTSTRAP_MIN_N values (below that a bootstrap interval is too narrow to mean anything).
- Per comparison `left OP right + offset`: the paired differences left_s - right_s over the seeds where both runs
  finished, their mean, 95 % t-interval and the two-sided one-sample t-test p-value of mean = offset (the paired
  t-test; with offset 0 exactly scipy's ttest_rel). Holm's step-down adjusts the p-values across the study.
- Verdict: `supported` when the Holm-adjusted p < ALPHA and the mean difference lies on the claimed side of the
  offset; `contradicted` when adjusted p < ALPHA on the other side; else `inconclusive`. With one comparison this
  is exactly "the 95 % interval excludes the offset" on that side; with several it is the same test at Holm's
  stricter levels, so a study with many comparisons cannot reach `supported` by chance.
- A run that failed has no value: its seed leaves the arm's summary and every pair it belongs to.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
BOOTSTRAP_MIN_N = 10
BOOTSTRAP_RESAMPLES = 9999
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float  # sample standard deviation (ddof 1); NaN below two values
    ci: tuple[float, float] | None  # t-interval of the mean; None below two values
    bootstrap_ci: tuple[float, float] | None  # BCa interval; None below BOOTSTRAP_MIN_N values


def finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def t_interval(values: np.ndarray) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    mean, sem = float(values.mean()), float(stats.sem(values))
    if sem == 0.0:  # every value equal: the interval is that value (scipy would give NaN)
        return mean, mean
    low, high = stats.t.interval(CONFIDENCE, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def bootstrap_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float] | None:
    if len(values) < BOOTSTRAP_MIN_N:
        return None
    if np.ptp(values) == 0.0:
        return float(values[0]), float(values[0])
    result = stats.bootstrap((values,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                             method="BCa", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarize(values: Sequence[float | None]) -> Summary:
    """Mean, SD and intervals of the finite values (a failed run's None or NaN is left out)."""
    kept = finite(values)
    if len(kept) == 0:
        return Summary(0, math.nan, math.nan, None, None)
    sd = float(kept.std(ddof=1)) if len(kept) > 1 else math.nan
    return Summary(len(kept), float(kept.mean()), sd, t_interval(kept), bootstrap_interval(kept))


@dataclass(frozen=True)
class Paired:
    seeds: tuple[int, ...]  # the seeds where both arms have a value
    differences: tuple[float, ...]  # left - right at those seeds
    mean: float
    sd: float
    ci: tuple[float, float] | None
    p: float  # two-sided, of mean difference == offset; NaN below two pairs


def paired(left: Mapping[int, float | None], right: Mapping[int, float | None], offset: float = 0.0) -> Paired:
    seeds = tuple(s for s in left if s in right and _ok(left[s]) and _ok(right[s]))
    diffs = np.array([left[s] - right[s] for s in seeds], dtype=float)
    if len(diffs) < 2:
        mean = float(diffs.mean()) if len(diffs) else math.nan
        return Paired(seeds, tuple(diffs.tolist()), mean, math.nan, None, math.nan)
    sd = float(diffs.std(ddof=1))
    if sd == 0.0:  # identical differences: certain when they differ from the offset, no evidence when equal
        p = 1.0 if diffs[0] == offset else 0.0
    else:
        p = float(stats.ttest_1samp(diffs, popmean=offset).pvalue)
    return Paired(seeds, tuple(diffs.tolist()), float(diffs.mean()), sd, t_interval(diffs), p)


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: the k-th smallest of m is multiplied by m - k + 1,
    made non-decreasing, capped at 1. A NaN (no test) counts as 1."""
    p = np.array([1.0 if math.isnan(v) else v for v in pvalues], dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def verdict(result: Paired, adjusted_p: float, sign: int, offset: float = 0.0) -> str:
    """`sign` +1: the claim is left - right > offset; -1: left - right < offset."""
    if math.isnan(result.mean) or not adjusted_p < ALPHA:
        return INCONCLUSIVE
    side = result.mean - offset
    if side * sign > 0:
        return SUPPORTED
    return CONTRADICTED if side * sign < 0 else INCONCLUSIVE


def study_verdict(verdicts: Sequence[str]) -> str:
    """One phrase for the study: supported / contradicted when every comparison agrees, otherwise how far."""
    supported, contradicted = verdicts.count(SUPPORTED), verdicts.count(CONTRADICTED)
    if verdicts and supported == len(verdicts):
        return SUPPORTED
    if verdicts and contradicted == len(verdicts):
        return CONTRADICTED
    if supported and contradicted:
        return "mixed"
    if supported:
        return "partly supported"
    if contradicted:
        return "partly contradicted"
    return INCONCLUSIVE
