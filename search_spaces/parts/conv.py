"""The depthwise-conv mixer (ConvMixer)."""
from __future__ import annotations

import torch
from torch import nn

from vitnas.search_spaces.checks import validate_kernel_size
from vitnas.search_spaces.registry import MIXERS, ChoiceDim, MixerKind


class DepthwiseConv(nn.Module):
    """ConvMixer's spatial mixer: a depthwise conv with 'same' padding. The grid is viewed as NCHW in
    channels_last memory (a permute, no copy), the fast path for convolutions on CPU and GPU."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.dim = dim
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


MIXERS.register("conv", MixerKind(
    settings={"kernel_size": 3}, validate=validate_kernel_size,
    build=lambda settings, width, grid, act_layer: DepthwiseConv(width, settings["kernel_size"]),
    dimensions=(ChoiceDim("conv_kernel", 3, number=int, odd=True, setting="kernel_size"),)))
