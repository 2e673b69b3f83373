"""The one way a model is evaluated on images: trainer validation, test accuracy and every robustness pass.

They all go through `correct_predictions`, so they share the uint8 -> float [0, 1] conversion, the memory format,
the autocast context and eval mode; validation accuracy and the robustness suite's clean accuracy are therefore the
same number.

Precision: `auto` is bf16 autocast on a GPU and on a CPU with native bf16 arithmetic (AVX-512 BF16 or AMX), where it
is 1.3-1.9x faster for these models, and float32 on other CPUs, where bf16 is emulated and slower. Weights, the
optimiser and the loss stay float32 either way. A trial sets its precision once (`use_precision`) and every
evaluation inside it, the robustness suite's included, follows.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
from torch import nn

from vitnas.errors import UserError

# A perturbation maps a float batch in [0,1] (on the model's device) and its labels to a perturbed batch.
Perturbation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

PRECISIONS = ("auto", "bf16", "fp32")
_BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}
_precision: ContextVar[str] = ContextVar("vitnas_precision", default="auto")


def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise UserError(f"--precision: unknown precision {name!r}; choose from {', '.join(PRECISIONS)}")
    return name


def cpuinfo_has_bf16(cpuinfo: str) -> bool:
    """Does a /proc/cpuinfo text list a native bf16 instruction set on its flags lines?"""
    return any(_BF16_CPU_FLAGS & set(line.split(":", 1)[-1].split())
               for line in cpuinfo.splitlines() if line.startswith("flags"))


@functools.cache
def native_bf16_cpu() -> bool:
    """Does this CPU do bf16 arithmetic natively? torch's own probe where it has one, else /proc/cpuinfo."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(probes):
        return any(probe() for probe in probes)
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and cpuinfo_has_bf16(cpuinfo.read_text())


def resolve_precision(name: str, device: torch.device) -> str:
    """`auto` -> bf16 on a GPU or a CPU with native bf16, fp32 elsewhere; bf16 and fp32 stay as they are."""
    if check_precision(name) != "auto":
        return name
    return "bf16" if device.type == "cuda" or native_bf16_cpu() else "fp32"


@contextmanager
def use_precision(name: str) -> Iterator[None]:
    """Every autocast() inside this block (training and every evaluation) uses this precision."""
    token = _precision.set(check_precision(name))
    try:
        yield
    finally:
        _precision.reset(token)


def autocast(device: torch.device, precision: str | None = None):
    """bf16 autocast or plain float32 on `device`, as `precision` (default: the enclosing use_precision) resolves."""
    bf16 = resolve_precision(precision or _precision.get(), device) == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


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
