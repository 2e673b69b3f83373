"""The one way a model is evaluated on images: trainer validation, test accuracy and every robustness pass.

They all go through `correct_predictions`, so they share the uint8 -> float [0, 1] conversion, the memory format,
the autocast context and eval mode; on a GPU (bf16 autocast) validation accuracy and the robustness suite's clean
accuracy are therefore the same number, as they are on the CPU.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

# A perturbation maps a float batch in [0,1] (on the model's device) and its labels to a perturbed batch.
Perturbation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def autocast(device: torch.device):
    """bf16 autocast on a GPU (the trainer's precision), full float32 on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def memory_format(device: torch.device) -> torch.memory_format:
    # channels-last feeds the GPU's tensor-core convolutions; plain NCHW is what the CPU kernels are fastest on.
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def as_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Images on `device` as floats in [0, 1] in the memory format its kernels prefer: uint8 images are divided by
    255, float images are taken to be in [0, 1] already."""
    x = x.to(device, non_blocking=True)
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    return x.contiguous(memory_format=memory_format(device))


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
    """Predicted class per image of a float [0, 1] batch already on the model's device."""
    with autocast(images.device):
        return model(images.contiguous(memory_format=memory_format(images.device))).argmax(dim=1)


def correct_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, perturb: Perturbation | None = None, *,
                        batch_size: int = 256, device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-image correctness (bool, on the CPU) of `model` on `perturb(x)`; `perturb=None` means clean images.

    `x` is uint8 or float [0, 1] (N, C, H, W) on any device; the model must already be on `device` and in the mode
    wanted (see eval_mode). Perturbations run without autograd; attacks switch it back on for the input gradient.
    """
    device = torch.device(device)
    correct = []
    for start in range(0, len(x), batch_size):
        images = as_input(x[start:start + batch_size], device)
        labels = y[start:start + batch_size].to(device)
        if perturb is not None:
            with torch.no_grad():
                images = perturb(images, labels).clamp(0.0, 1.0)
        correct.append((predict(model, images) == labels).cpu())
    return torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool)


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256,
                      device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy (0..1) of `model` (already on `device`) on images `x`, in eval mode; 0.0 for an empty set."""
    if len(y) == 0:
        return 0.0
    with eval_mode(model):
        return correct_predictions(model, x, y, batch_size=batch_size, device=device).float().mean().item()
