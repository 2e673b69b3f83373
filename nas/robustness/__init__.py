"""Robustness suite: noise, band-limited noise, common corruptions, FGSM/PGD, adversarial patch, Fourier heat map.

Public API: `parse_suite(spec) -> Suite`, `evaluate_robustness(model, x, y, suite, ...) -> RobustnessResult`,
`fourier_heatmap(model, x, y, ...) -> np.ndarray`, `save_heatmap_png(heatmap, path)`. The suite grammar and the
named suites are documented in `suite.py`; corruption severities in `corruptions.py`.
"""

from .evaluate import RobustnessResult, evaluate_robustness
from .heatmap import fourier_heatmap, save_heatmap_png
from .suite import NAMED_SUITES, Part, Suite, parse_suite

__all__ = [
    "NAMED_SUITES",
    "Part",
    "RobustnessResult",
    "Suite",
    "evaluate_robustness",
    "fourier_heatmap",
    "parse_suite",
    "save_heatmap_png",
]
