"""Runs a suite over a model and images: clean accuracy, one accuracy per part, and the robustness score.

The score (the search's `robustness` objective) is the unweighted mean accuracy over the suite's parts, in 0..1;
for an empty suite (`none`) it is the clean accuracy. Every part gets its own generator, seeded from `seed` and the
part's name, so a part's numbers do not depend on which other parts run alongside it.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from vitnas.nas.files import json_safe
from vitnas.nas.inference import as_input, correct_predictions, eval_mode

from .patch import patch_side
from .perturbations import build_perturbation
from .suite import Part, Suite


@dataclass
class RobustnessResult:
    """Accuracies in 0..1. `relative[name]` is components[name] / clean (NaN when clean accuracy is 0).

    `details[name]` holds extra figures for a part: for a patch, `fooling_rate` (share of the clean-correct images
    that the patch makes wrong) and `patch_side` in pixels. `seconds[name]` is the wall time the part took.
    """

    suite: str
    n_images: int
    clean: float
    score: float
    components: dict[str, float] = field(default_factory=dict)
    relative: dict[str, float] = field(default_factory=dict)
    details: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (NaN becomes None)."""
        return json_safe(asdict(self))


def part_generator(part: Part, seed: int, device: torch.device) -> torch.Generator:
    """A generator on `device` seeded by the run's seed and the part's name only."""
    part_seed = (seed * 1_000_003 + zlib.crc32(part.name.encode())) % 2**63
    return torch.Generator(device=device).manual_seed(part_seed)


def _subset(x: torch.Tensor, y: torch.Tensor, max_images: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of `max_images` images (all of them when None or more than there are)."""
    if max_images is None or max_images >= len(x):
        return x, y
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_images]
    return x[order], y[order]


def evaluate_robustness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    suite: Suite,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    batch_size: int = 256,
    max_images: int | None = None,
) -> RobustnessResult:
    """Measure `model` (float [0,1] images in, logits out; moved to `device`) on images `x` (uint8 or float [0,1],
    (N, C, H, W)) with int64 labels `y`, under every part of `suite`. The model is in eval mode during the run and
    gets its own train/eval flags back afterwards."""
    if len(x) == 0:
        raise ValueError("evaluate_robustness needs at least one image")
    device = torch.device(device)
    x, y = _subset(x, y, max_images, seed)
    model.to(device)
    components, details, seconds = {}, {}, {}
    with eval_mode(model):
        started = time.perf_counter()
        clean_correct = correct_predictions(model, x, y, None, batch_size=batch_size, device=device)
        seconds["clean"] = time.perf_counter() - started
        # A patch is fitted on the first batch of the evaluated images (white-box, like PGD).
        fit_images, fit_labels = as_input(x[:batch_size], device), y[:batch_size].to(device)
        for part in suite.parts:
            started = time.perf_counter()
            generator = part_generator(part, seed, device)
            perturb = build_perturbation(part, suite, model, fit_images, fit_labels, generator)
            correct = correct_predictions(model, x, y, perturb, batch_size=batch_size, device=device)
            components[part.name] = correct.float().mean().item()
            if part.kind == "patch":
                fooled = ~correct[clean_correct]
                details[part.name] = {
                    "fooling_rate": fooled.float().mean().item() if len(fooled) else float("nan"),
                    "patch_side": float(patch_side(x.shape[2], x.shape[3], part.level)),
                }
            seconds[part.name] = time.perf_counter() - started
    clean = clean_correct.float().mean().item()
    relative = {name: accuracy / clean if clean > 0 else float("nan") for name, accuracy in components.items()}
    score = sum(components.values()) / len(components) if components else clean
    return RobustnessResult(
        suite=suite.spec, n_images=len(x), clean=clean, score=score,
        components=components, relative=relative, details=details, seconds=seconds,
    )
