"""A study's claim as data: metric references (`accuracy`, `relative:highfreq:0.08`, `fooling_rate:0.1`) and the
comparisons of `expect` (`accuracy: identity < pool < conv`, `accuracy: T=4 > T=1 - 0.02`), so that a verdict is
computed from the runs rather than written by hand.

Metric references:
- `NAME`: a metric of the registry (nas/metrics.py: params, macs, robustness, latency_ms, ...), except that
  `accuracy` is TEST accuracy in an ablation: nothing is selected on it, so the held-out test split is the honest
  estimate (`val_accuracy` is there too);
- `component:KIND:LEVEL`: accuracy under one robustness part, e.g. `component:fgsm:1`;
- `relative:KIND:LEVEL`: that accuracy divided by the clean accuracy, e.g. `relative:highfreq:0.08`;
- `fooling_rate[:AREA]`: the adversarial patch's fooling rate (default area 0.1).
KIND and LEVEL are written as in a robustness suite (`highfreq:0.08` or `high_freq_noise:0.08`), and the study's
suite must measure that part.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from vitnas.errors import UserError
from vitnas.nas.metrics import METRICS
from vitnas.nas.robustness.suite import parse_suite

# name -> (key in a run's metrics, the measurement that yields it). The registry's `accuracy` ranks a search on
# validation; an ablation's `accuracy` is test accuracy, and validation accuracy keeps its own name.
SCALAR_METRICS = {**{m.name: (m.key, m.measurement) for m in METRICS.values()},
                  "accuracy": ("accuracy", "test"), "val_accuracy": ("val_accuracy", "accuracy")}
_ROBUSTNESS_FIELDS = {"component": "robustness_components", "relative": "robustness_relative"}
_FOOLING = "fooling_rate"
_DEFAULT_PATCH_AREA = "0.1"
_OPERATORS = ("<", ">")
_ARM_TOKEN = re.compile(r"^[A-Za-z0-9_.=+-]+$")


@dataclass(frozen=True)
class MetricRef:
    text: str  # as written in the study
    field: str  # the run metric: a scalar name, or a robustness_* mapping
    measurement: str  # what a run must measure to have it (nas.metrics.MEASUREMENTS)
    part: str | None = None  # robustness part name (e.g. "high_freq_noise@0.08") inside that mapping

    def value(self, metrics: dict) -> float:
        """The number in one run's metrics; NaN when the run did not produce it."""
        found = metrics.get(self.field)
        if self.part is not None:
            found = (found or {}).get(self.part)
            if self.field == "robustness_details":
                found = (found or {}).get(_FOOLING)
        return float(found) if isinstance(found, (int, float)) and not isinstance(found, bool) else math.nan


def parse_metric(text: Any, where: str) -> MetricRef:
    if not isinstance(text, str) or not text:
        raise UserError(f"{where}: metric {text!r} is not a name such as accuracy or relative:highfreq:0.08")
    head, _, rest = text.partition(":")
    if head in _ROBUSTNESS_FIELDS:
        return MetricRef(text, _ROBUSTNESS_FIELDS[head], "robustness", _part_name(rest, text, where))
    if head == _FOOLING:
        part = _part_name(f"patch:{rest or _DEFAULT_PATCH_AREA}", text, where)
        return MetricRef(text, "robustness_details", "robustness", part)
    if rest or text not in SCALAR_METRICS:
        raise UserError(f"{where}: unknown metric {text!r}; use one of {', '.join(SCALAR_METRICS)}, "
                        "component:KIND:LEVEL, relative:KIND:LEVEL or fooling_rate[:AREA]")
    return MetricRef(text, *SCALAR_METRICS[text])


def _part_name(spec: str, text: str, where: str) -> str:
    kind, _, level = spec.partition(":")
    if not kind or not level or "," in level or ";" in spec:
        raise UserError(f"{where}: metric {text!r} needs one robustness part as KIND:LEVEL, e.g. "
                        "relative:highfreq:0.08 or component:fgsm:1")
    try:
        (part,) = parse_suite(spec).parts
    except UserError as err:
        raise UserError(f"{where}: metric {text!r}: {err}") from None
    return part.name


def suite_parts(suite: str) -> set[str]:
    return {part.name for part in parse_suite(suite).parts}


@dataclass(frozen=True)
class Comparison:
    """`left OP right + offset` on `metric`: the claim is that left - right - offset is > 0 (OP '>') or < 0."""

    metric: MetricRef
    left: str
    op: str  # '<' or '>'
    right: str
    offset: float = 0.0

    @property
    def text(self) -> str:
        margin = f" {'+' if self.offset > 0 else '-'} {abs(self.offset):g}" if self.offset else ""
        return f"{self.metric.text}: {self.left} {self.op} {self.right}{margin}"

    @property
    def sign(self) -> int:
        """+1 when the claim is a positive difference, -1 when negative."""
        return 1 if self.op == ">" else -1


def parse_expectation(item: Any, where: str) -> list[Comparison]:
    """One `expect` entry, `{metric: "a < b < c"}` or the string "metric: a < b", as its pairwise comparisons."""
    if isinstance(item, dict) and len(item) == 1:
        ((metric_text, expression),) = item.items()
    elif isinstance(item, str) and ": " in item:
        metric_text, expression = item.split(": ", 1)
    else:
        raise UserError(f"{where}: got {item!r}; write 'METRIC: ARM < ARM' (e.g. 'accuracy: identity < pool', "
                        "'relative:highfreq:0.08: attention > conv')")
    metric = parse_metric(str(metric_text).strip(), where)
    tokens = str(expression).split()
    offset = 0.0
    if len(tokens) == 5 and tokens[3] in ("+", "-"):  # a margin: `a > b - 0.02`
        offset = _number(tokens[4], where) * (1 if tokens[3] == "+" else -1)
        tokens = tokens[:3]
    arms, ops = tokens[0::2], tokens[1::2]
    if len(tokens) < 3 or len(tokens) % 2 == 0 or any(op not in _OPERATORS for op in ops) \
            or any(not _ARM_TOKEN.match(arm) for arm in arms):
        raise UserError(f"{where}: cannot read {expression!r}; write ARM < ARM, ARM > ARM, a chain "
                        "(a < b < c) or one comparison with a margin (a > b - 0.02), with spaces around < and >")
    if offset and len(arms) > 2:
        raise UserError(f"{where}: a margin applies to one comparison, not to the chain {expression!r}")
    return [Comparison(metric, arms[i], ops[i], arms[i + 1], offset) for i in range(len(ops))]


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: margin {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{where}: margin {text!r} must be a finite number >= 0")
    return value
