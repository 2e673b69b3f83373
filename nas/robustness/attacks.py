"""White-box L-infinity attacks (FGSM, PGD) on float batches in [0,1]; epsilons here are in [0,1] pixel units.

Gradients are taken with respect to the input only (torch.autograd.grad), so the model's parameter .grad fields
are never touched. The model is expected to be in eval mode already.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed cross-entropy loss with respect to the images."""
    with torch.enable_grad():
        images = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(images), y, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One signed-gradient step of size eps (Goodfellow et al. 2015)."""
    if eps == 0:
        return x
    return (x + eps * input_gradient(model, x, y).sign()).clamp(0.0, 1.0)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int,
    step_size: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Projected gradient ascent from a uniform random start inside the eps-ball (Madry et al. 2018)."""
    if eps == 0:
        return x
    start = (torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1) * eps
    adversarial = (x + start).clamp(0.0, 1.0)
    for _ in range(steps):
        stepped = adversarial + step_size * input_gradient(model, adversarial, y).sign()
        adversarial = torch.minimum(torch.maximum(stepped, x - eps), x + eps).clamp(0.0, 1.0)
    return adversarial
