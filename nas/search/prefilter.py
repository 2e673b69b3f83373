"""`--prefilter PROXY[:keep=F]`: score a batch of proposals with a zero-cost proxy and train only the best fraction.

Proposals are ranked by the proxy (larger is better) together with the search's cost objectives (known before
training) in the same way MO-ASHA ranks a rung: non-dominated sorting, crowding distance within a front. The best
ceil(keep x batch) are trained; the others are told to the sampler as rejected (never trained, not counted).
"""
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vitnas.errors import UserError
from vitnas.nas.metrics import METRICS
from vitnas.nas.proxies import PROXIES
from vitnas.nas.records import Objective
from vitnas.nas.search.moasha import COST_MEASUREMENT, ahead_of

PREFILTER_BATCH = 16  # proposals scored together
DEFAULT_KEEP = 0.25


@dataclass(frozen=True)
class PrefilterSpec:
    proxy: str
    keep: float = DEFAULT_KEEP
    batch: int = PREFILTER_BATCH

    def __post_init__(self) -> None:
        if self.proxy not in PROXIES:
            raise UserError(f"--prefilter: unknown proxy {self.proxy!r}; choose from {', '.join(PROXIES)}")
        if not 0 < self.keep <= 1:
            raise UserError(f"--prefilter: keep must be a fraction in (0, 1], got {self.keep:g}")
        if self.batch < 2:
            raise UserError(f"--prefilter: batch must be at least 2, got {self.batch}")

    @classmethod
    def parse(cls, text: str) -> "PrefilterSpec":
        """`naswot`, `synflow:keep=0.25` or `meco:keep=0.5,batch=8`."""
        proxy, _, options = text.strip().partition(":")
        fields: dict[str, float] = {}
        for option in filter(None, (o.strip() for o in options.split(","))):
            name, _, value = option.partition("=")
            if name not in ("keep", "batch"):
                raise UserError(f"--prefilter: unknown option {name!r}; write PROXY[:keep=F][,batch=N]")
            try:
                fields[name] = int(value) if name == "batch" else float(value)
            except ValueError:
                raise UserError(f"--prefilter: {name}={value!r} is not a number") from None
        return cls(proxy, **fields)


class Prefilter:
    def __init__(self, spec: PrefilterSpec, score: Callable[[dict], float], objectives: Sequence[Objective]):
        """`score` maps a proposal's config dict to its proxy value."""
        self.spec, self.score = spec, score
        costs = [o for o in objectives if METRICS[o.name].measurement == COST_MEASUREMENT]
        self.keys = [METRICS[o.name].key for o in costs]
        self.directions = ["maximize"] + [o.direction for o in costs]

    @property
    def batch(self) -> int:
        return self.spec.batch

    def split(self, proposals: Sequence[tuple[dict, dict]], needed: int) -> tuple[list[int], dict[int, str]]:
        """For (config, cost metrics) proposals: the indices to train, best first (the best ceil(keep x batch), and
        `needed` at most), and index -> why for the others."""
        scores = [self.score(config) for config, _ in proposals]
        floor = min((s for s in scores if math.isfinite(s)), default=0.0) - 1.0  # a failed score ranks last
        points = [[s if math.isfinite(s) else floor] + [costs[key] for key in self.keys]
                  for s, (_, costs) in zip(scores, proposals)]
        places = [ahead_of(point, points[:i] + points[i + 1:], self.directions) for i, point in enumerate(points)]
        order = sorted(range(len(points)), key=lambda i: (places[i], i))
        kept = order[:min(needed, math.ceil(self.spec.keep * len(points)))]
        return kept, {i: (f"prefiltered by {self.spec.proxy} (keep={self.spec.keep:g}): {self.spec.proxy} "
                          f"{scores[i]:.4g}, {places[i]} of {len(points)} proposals ranked ahead")
                      for i in order[len(kept):]}
