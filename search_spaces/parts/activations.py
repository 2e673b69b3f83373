"""Activations: a registered activation is a class called as `cls()`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitnas.search_spaces.registry import ACTS


class SquaredReLU(nn.Module):
    """relu(x)^2 (So et al. 2021, Primer); the MetaFormer baselines' MLP head uses it."""

    def __init__(self):  # no arguments: a constructor of its own, so export reads none
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


class StarReLU(nn.Module):
    """s * relu(x)^2 + b with one learned scale s (from 1) and one learned bias b (from 0) per instance: squared ReLU
    with its output distribution re-centred and re-scaled (Yu et al. 2022, "MetaFormer Baselines for Vision")."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.relu(x).square() + self.bias


ACTS.register("gelu", nn.GELU)
ACTS.register("relu", nn.ReLU)
ACTS.register("silu", nn.SiLU)
ACTS.register("starrelu", StarReLU)
ACTS.register("squared_relu", SquaredReLU)
