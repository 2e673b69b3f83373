"""Ablation statistics against hand-computed numbers (textbook t quantiles and the closed-form t CDFs for 1 and 2
degrees of freedom) and against scipy's own paired t-test."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from vitnas.nas.ablation import stats

T_975_DF2 = 4.302653  # two-sided 95 % quantile of Student's t with 2 degrees of freedom (textbook table: 4.303)


def t2_two_sided_p(t: float) -> float:
    """Student's t with 2 df has CDF 1/2 + t / (2 sqrt(2 + t^2)), so the two-sided p is 1 - |t| / sqrt(2 + t^2)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def t1_two_sided_p(t: float) -> float:
    """With 1 df (Cauchy) the two-sided p is 1 - 2 arctan(|t|) / pi."""
    return 1 - 2 * math.atan(abs(t)) / math.pi


def test_summary_of_three_values_by_hand():
    summary = stats.summarize([0.70, 0.74, 0.78])
    half_width = T_975_DF2 * 0.04 / math.sqrt(3)  # sd 0.04, n 3
    assert summary.n == 3
    assert summary.mean == pytest.approx(0.74)
    assert summary.sd == pytest.approx(0.04)
    assert summary.ci == pytest.approx((0.74 - half_width, 0.74 + half_width), abs=1e-6)
    assert summary.bootstrap_ci is None  # too few values for a bootstrap interval


def test_failed_runs_leave_the_summary():
    summary = stats.summarize([0.70, None, 0.78, float("nan")])
    assert summary.n == 2 and summary.mean == pytest.approx(0.74)
    assert summary.sd == pytest.approx(math.sqrt(2) * 0.04)


def test_constant_values_have_a_point_interval():
    summary = stats.summarize([5.0, 5.0, 5.0])
    assert summary.sd == 0.0 and summary.ci == (5.0, 5.0)


def test_bootstrap_interval_once_there_are_enough_values():
    values = [0.70, 0.71, 0.73, 0.74, 0.74, 0.75, 0.76, 0.78, 0.79, 0.81]
    summary = stats.summarize(values)
    low, high = summary.bootstrap_ci
    assert min(values) < low < np.mean(values) < high < max(values)
    assert high - low < summary.ci[1] - summary.ci[0] + 0.02  # of the same order as the t-interval
    assert stats.summarize(values) == summary  # seeded: the same interval every time


def test_paired_difference_of_three_seeds_by_hand_and_against_scipy():
    left, right = {0: 0.80, 1: 0.85, 2: 0.83}, {0: 0.75, 1: 0.78, 2: 0.80}
    result = stats.paired(left, right)
    # differences 0.05, 0.07, 0.03: mean 0.05, sd 0.02, t = 0.05 / (0.02 / sqrt 3)
    t = 0.05 / (0.02 / math.sqrt(3))
    assert result.differences == pytest.approx((0.05, 0.07, 0.03))
    assert result.mean == pytest.approx(0.05) and result.sd == pytest.approx(0.02)
    assert result.p == pytest.approx(t2_two_sided_p(t), rel=1e-6)
    assert result.p == pytest.approx(scipy_stats.ttest_rel([0.80, 0.85, 0.83], [0.75, 0.78, 0.80]).pvalue)
    half_width = T_975_DF2 * 0.02 / math.sqrt(3)
    assert result.ci == pytest.approx((0.05 - half_width, 0.05 + half_width), abs=1e-6)
    assert result.ci[0] > 0  # the interval excludes 0 on the claimed side
    assert stats.verdict(result, result.p, sign=+1) == stats.SUPPORTED
    assert stats.verdict(result, result.p, sign=-1) == stats.CONTRADICTED


def test_a_failed_run_drops_its_seed_from_the_pairs():
    result = stats.paired({0: 0.80, 1: 0.85, 2: 0.83}, {0: 0.75, 1: None, 2: 0.80})
    assert result.seeds == (0, 2)
    # differences 0.05 and 0.03: mean 0.04, sd 0.02/sqrt 2, t = 0.04 / 0.01 = 4 with 1 df
    assert result.mean == pytest.approx(0.04)
    assert result.p == pytest.approx(t1_two_sided_p(4.0), rel=1e-6)
    assert stats.verdict(result, result.p, sign=+1) == stats.INCONCLUSIVE  # p = 0.156


def test_ties_are_inconclusive_and_constant_differences_are_certain():
    tie = stats.paired({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.5, 1: 0.6, 2: 0.7})
    assert tie.mean == 0.0 and tie.p == 1.0 and tie.ci == (0.0, 0.0)
    assert stats.verdict(tie, tie.p, sign=+1) == stats.INCONCLUSIVE
    shift = stats.paired({0: 2.0, 1: 3.0, 2: 4.0}, {0: 1.0, 1: 2.0, 2: 3.0})  # e.g. params: identical every seed
    assert shift.p == 0.0 and shift.ci == (1.0, 1.0)
    assert stats.verdict(shift, shift.p, sign=+1) == stats.SUPPORTED


def test_some_tied_pairs_are_ordinary_data():
    result = stats.paired({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.5, 1: 0.6, 2: 0.6})
    assert result.p == pytest.approx(scipy_stats.ttest_rel([0.5, 0.6, 0.7], [0.5, 0.6, 0.6]).pvalue)


def test_a_margin_shifts_the_null_hypothesis():
    """`left > right - 0.02`: the differences are tested against -0.02."""
    left, right = {0: 0.79, 1: 0.80, 2: 0.78}, {0: 0.80, 1: 0.80, 2: 0.80}
    result = stats.paired(left, right, offset=-0.02)
    # differences -0.01, 0, -0.02 (mean -0.01, sd 0.01); against -0.02: t = 0.01 / (0.01 / sqrt 3) = sqrt 3
    assert result.p == pytest.approx(t2_two_sided_p(math.sqrt(3)), rel=1e-6)
    assert stats.verdict(result, 0.01, sign=+1, offset=-0.02) == stats.SUPPORTED
    assert stats.verdict(result, 0.01, sign=+1) == stats.CONTRADICTED  # without the margin left is lower


def test_fewer_than_two_pairs_have_no_test():
    result = stats.paired({0: 0.8, 1: None, 2: None}, {0: 0.7, 1: 0.7, 2: 0.7})
    assert result.seeds == (0,) and result.ci is None and math.isnan(result.p)
    assert stats.verdict(result, stats.holm([result.p])[0], sign=+1) == stats.INCONCLUSIVE


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> monotone 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.4]) == pytest.approx([0.8, 0.8])  # 0.4 x 2 = 0.8; 0.5 x 1 raised to 0.8
    assert stats.holm([0.9, float("nan")]) == pytest.approx([1.0, 1.0])  # capped; NaN is no evidence
    assert stats.holm([0.02]) == [0.02]


def test_holm_turns_a_marginal_comparison_inconclusive():
    left, right = {0: 0.80, 1: 0.85, 2: 0.83}, {0: 0.75, 1: 0.78, 2: 0.80}
    result = stats.paired(left, right)  # p = 0.0494: supported alone
    adjusted = stats.holm([result.p, 0.001])[0]  # second-smallest of two: x 1, but at least 0.002 -> 0.0494
    assert stats.verdict(result, adjusted, sign=+1) == stats.SUPPORTED
    adjusted = stats.holm([result.p, 0.3, 0.001])[0]  # second-smallest of three: x 2 = 0.0988
    assert stats.verdict(result, adjusted, sign=+1) == stats.INCONCLUSIVE


@pytest.mark.parametrize("verdicts, expected", [
    (["supported", "supported"], "supported"),
    (["contradicted"], "contradicted"),
    (["supported", "inconclusive"], "partly supported"),
    (["contradicted", "inconclusive"], "partly contradicted"),
    (["supported", "contradicted"], "mixed"),
    (["inconclusive", "inconclusive"], "inconclusive"),
])
def test_study_verdict(verdicts, expected):
    assert stats.study_verdict(verdicts) == expected
