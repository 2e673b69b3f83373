"""Universal adversarial patch (in the spirit of Brown et al. 2017, as used by Gu et al. ECCV 2022).

One square patch for all images, pasted at a random location per image (drawn from the generator, fresh for every
batch, so the patch must fool wherever it lands). It is fitted by signed gradient ascent on the cross-entropy
loss over a batch of the evaluated images: a white-box attack, like PGD.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def patch_side(height: int, width: int, area_fraction: float) -> int:
    """Side of a square patch covering about `area_fraction` of the image (at least one pixel, at most the image)."""
    return max(1, min(height, width, round(math.sqrt(area_fraction * height * width))))


def apply_patch(x: torch.Tensor, patch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Paste `patch` (C, s, s) into every image of `x` (N, C, H, W) at a random location; differentiable in patch."""
    n, _, height, width = x.shape
    side = patch.shape[-1]
    top = torch.randint(0, height - side + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(0, width - side + 1, (n,), generator=generator, device=x.device)
    offsets = torch.arange(side, device=x.device)
    image_index = torch.arange(n, device=x.device)[:, None, None]
    rows = (top[:, None] + offsets)[:, :, None]
    cols = (left[:, None] + offsets)[:, None, :]
    # index_put (out of place) on channels-last views keeps autograd flowing into the patch values.
    pasted = x.permute(0, 2, 3, 1).index_put((image_index, rows, cols), patch.permute(1, 2, 0).expand(n, -1, -1, -1))
    return pasted.permute(0, 3, 1, 2)


def fit_patch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    side: int,
    *,
    steps: int,
    step_size: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Optimise a (C, side, side) patch in [0,1] to maximise the loss of `model` on `x` at random locations."""
    patch = torch.rand((x.shape[1], side, side), generator=generator, device=x.device)
    with torch.enable_grad():
        for _ in range(steps):
            patch.requires_grad_(True)
            loss = F.cross_entropy(model(apply_patch(x, patch, generator)), y)
            (gradient,) = torch.autograd.grad(loss, patch)
            patch = (patch.detach() + step_size * gradient.sign()).clamp(0.0, 1.0)
    return patch.detach()
