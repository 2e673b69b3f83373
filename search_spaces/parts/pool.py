"""The pooling mixer (PoolFormer): average pooling minus the input."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitnas.search_spaces.checks import validate_kernel_size
from vitnas.search_spaces.registry import MIXERS, ChoiceDim, MixerKind


class Pooling(nn.Module):
    """PoolFormer's mixer: average pool (stride 1, padding not counted) minus the input, since the block's
    residual adds the input back. The grid is viewed as NCHW in channels_last memory (a permute, no copy), the
    fast path for pooling."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = x.permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(grid, self.kernel_size, 1, self.kernel_size // 2, count_include_pad=False)
        return (pooled - grid).permute(0, 2, 3, 1)


MIXERS.register("pool", MixerKind(
    settings={"kernel_size": 3}, validate=validate_kernel_size,
    build=lambda settings, width, grid, act_layer: Pooling(settings["kernel_size"]),
    dimensions=(ChoiceDim("pool_size", 3, number=int, odd=True, setting="kernel_size"),)))
