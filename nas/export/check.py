"""Checking an export against the library before anything is written: the generated model.py, run in a fresh
namespace, must build a model whose state dict loads strictly from the vitnas model's and whose outputs match.

A mismatch here is a bug in the exporter or in a block that is not really liftable, never a user's mistake, so it
raises ExportCheckError rather than UserError.
"""
from __future__ import annotations

import types

import torch
from torch import nn

TOLERANCE = 1e-5  # largest absolute difference of logits accepted between the exported and the vitnas model
CHECK_BATCH = 2


class ExportCheckError(Exception):
    """The exported code does not reproduce the vitnas model (an internal error)."""


def load_source(text: str, name: str) -> types.ModuleType:
    """Run generated source as a module of its own (nothing of vitnas is in its namespace)."""
    module = types.ModuleType(name)
    exec(compile(text, f"<exported {name}.py>", "exec"), module.__dict__)  # our own generated code, checked here
    return module


def random_images(input_shape: tuple[int, int, int], batch: int, seed: int = 0) -> torch.Tensor:
    """Float images in [0, 1] of shape (batch, *input_shape), the same for a seed."""
    return torch.rand(batch, *input_shape, generator=torch.Generator().manual_seed(seed))


def exported_twin(model_text: str, model: nn.Sequential, input_shape: tuple[int, int, int]) -> tuple[nn.Module, float]:
    """The model built by model.py with `model`'s weights, and the largest absolute difference of their logits."""
    twin = load_source(model_text, "model").build_model()
    try:
        twin.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as err:
        raise ExportCheckError(f"the exported model's state dict differs from the vitnas model's: {err}") from None
    twin.eval()
    model.eval()
    images = random_images(input_shape, CHECK_BATCH)
    with torch.no_grad():
        difference = (twin(images) - model(images)).abs().max().item()
    if not difference <= TOLERANCE:
        raise ExportCheckError(f"the exported model's logits differ from the vitnas model's by {difference:.3g} "
                               f"(tolerance {TOLERANCE})")
    return twin, difference
