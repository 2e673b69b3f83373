"""Turns one suite part into the perturbation the evaluation loop applies batch by batch."""

from __future__ import annotations

import torch
from torch import nn

from vitnas.nas.inference import Perturbation

from .attacks import fgsm, pgd
from .corruptions import SEVERITY_PARAMETERS, corrupt
from .noise import frequency_noise, gaussian_noise
from .patch import apply_patch, fit_patch, patch_side
from .suite import Part, Suite


def build_perturbation(
    part: Part,
    suite: Suite,
    model: nn.Module,
    fit_images: torch.Tensor,
    fit_labels: torch.Tensor,
    generator: torch.Generator,
) -> Perturbation:
    """The perturbation for `part`; a patch part is fitted here, on `fit_images` (float, on the model's device)."""
    kind, level = part.kind, part.level
    if kind == "gaussian_noise":
        return lambda x, y: gaussian_noise(x, level, generator)
    if kind in ("low_freq_noise", "high_freq_noise"):
        band = "low" if kind == "low_freq_noise" else "high"
        return lambda x, y: frequency_noise(x, band, level, suite.frequency_cutoff, generator)
    if kind in SEVERITY_PARAMETERS:
        return lambda x, y: corrupt(x, kind, int(level), generator)
    if kind == "fgsm":
        return lambda x, y: fgsm(model, x, y, level / 255)
    if kind == "pgd":
        eps = level / 255
        step_size = suite.pgd_step_factor * eps / suite.pgd_steps
        return lambda x, y: pgd(model, x, y, eps, steps=suite.pgd_steps, step_size=step_size, generator=generator)
    if kind == "patch":
        side = patch_side(fit_images.shape[2], fit_images.shape[3], level)
        patch = fit_patch(
            model, fit_images, fit_labels, side,
            steps=suite.patch_steps, step_size=suite.patch_step_size, generator=generator,
        )
        return lambda x, y: apply_patch(x, patch, generator)
    raise ValueError(f"no perturbation for part kind {kind!r}")
