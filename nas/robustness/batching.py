"""The one batched evaluation loop every robustness part goes through, and the model/input plumbing around it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

# A perturbation maps a float batch in [0,1] (on the model's device) and its labels to a perturbed batch.
Perturbation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def as_float_images(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images become floats in [0,1]; float images are taken to be in [0,1] already."""
    x = x.to(device)
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    return x.float()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode and restore each one's own flag afterwards (not just the root's)."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Predicted class per image."""
    return model(images).argmax(dim=1)


def correct_predictions(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    perturb: Perturbation | None,
    *,
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """Per-image correctness (bool, on CPU) of `model` on `perturb(x)`; `perturb=None` means clean images.

    Perturbations run without autograd; attacks switch it back on inside themselves for the input gradient only.
    """
    correct = []
    for start in range(0, len(x), batch_size):
        images = as_float_images(x[start : start + batch_size], device)
        labels = y[start : start + batch_size].to(device)
        if perturb is not None:
            with torch.no_grad():
                images = perturb(images, labels).clamp(0.0, 1.0)
        correct.append((predict(model, images) == labels).cpu())
    return torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool)
