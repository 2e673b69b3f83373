"""Norms over the channel (last) dim of channels-last tensors: (N, H, W, C) grids or (N, L, C) sequences.

A registered norm is a class called as `cls(dim, eps=eps)`; `none` is nn.Identity, which takes and ignores both.
"""
from __future__ import annotations

import torch
from torch import nn

from vitnas.search_spaces.registry import NORMS


class ChannelBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last (channel) dim of a channels-last tensor: flattening to (N*positions, C) is a view."""

    def __init__(self, dim: int, eps: float):
        super().__init__(dim, eps=eps)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class GroupNorm1(nn.GroupNorm):
    """GroupNorm with one group ("modified LayerNorm", PoolFormer): statistics over all positions and channels of a
    sample, affine per channel. Moving channels to dim 1 gives a channels_last NCHW view, which torch's fused
    group_norm kernels take without a copy."""

    def __init__(self, dim: int, eps: float):
        super().__init__(1, dim, eps=eps)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(-1, 1)).movedim(1, -1)


class LayerNormNoBias(nn.LayerNorm):
    """LayerNorm over channels with a learned gain and no bias (MetaFormer baselines: CAFormer, ConvFormer)."""

    def __init__(self, dim: int, eps: float):
        super().__init__(dim, eps=eps, bias=False)
        self.dim = dim


class GroupNorm1NoBias(GroupNorm1):
    """GroupNorm1 with a learned gain and no bias (MetaFormer baselines: PoolFormerV2, IdentityFormer)."""

    def __init__(self, dim: int, eps: float):
        super().__init__(dim, eps)
        self.bias = None  # a registered parameter set to None: F.group_norm adds nothing, the state dict omits it


NORMS.register("layernorm", nn.LayerNorm)
NORMS.register("batchnorm", ChannelBatchNorm)
NORMS.register("groupnorm", GroupNorm1)
NORMS.register("rmsnorm", nn.RMSNorm)
NORMS.register("none", nn.Identity)
NORMS.register("layernorm_nobias", LayerNormNoBias)
NORMS.register("groupnorm_nobias", GroupNorm1NoBias)
