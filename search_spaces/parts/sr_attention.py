"""The spatial-reduction attention mixer (PVT v2, Wang et al. 2022): keys and values from a coarser grid."""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vitnas.search_spaces.checks import check_choice, check_int, fail
from vitnas.search_spaces.parts.attention import HEAD_DIM, QKV_BIAS, head_count, validate_heads
from vitnas.search_spaces.registry import MIXERS, ChoiceDim, MixerKind

REDUCTIONS = ("conv", "pool")


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose queries are all tokens of the grid and whose keys and values come from the grid
    reduced `ratio` times along each side: by a ratio x ratio stride-ratio conv (`conv`, PVT v2) or average
    pooling (`pool`, no weights), then a LayerNorm (eps 1e-5, as in PVT). Ratio 1 is plain attention. Cost: tokens x
    tokens / ratio^2 instead of tokens^2."""

    def __init__(self, dim: int, heads: int, ratio: int, reduction: str, qkv_bias: bool):
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.ratio = ratio
        self.reduction = reduction
        self.qkv_bias = qkv_bias
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        reduces = ratio > 1
        self.sr = nn.Conv2d(dim, dim, ratio, stride=ratio) if reduces and reduction == "conv" else nn.Identity()
        self.norm = nn.LayerNorm(dim) if reduces else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, height, width, dim = x.shape
        head_dim = dim // self.heads
        q = self.q(x).view(n, height * width, self.heads, head_dim).transpose(1, 2)
        grid = x.permute(0, 3, 1, 2)
        if self.ratio > 1:
            grid = self.sr(grid) if self.reduction == "conv" else F.avg_pool2d(grid, self.ratio)
        reduced = self.norm(grid.flatten(2).transpose(1, 2))
        k, v = self.kv(reduced).view(n, -1, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, height, width, dim))


def _validate(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    validate_heads(settings, width, where)
    ratio = settings["sr_ratio"]
    check_int(f"{where}.sr_ratio", ratio, 1)
    if ratio > grid:
        raise fail(f"{where}.sr_ratio", ratio, f"reduces the stage's {grid}x{grid} token grid below one token; "
                   f"allowed: 1 to {grid}")
    check_choice(f"{where}.reduction", settings["reduction"], REDUCTIONS)


MIXERS.register("sr_attention", MixerKind(
    settings={"heads": None, "head_dim": None, "qkv_bias": True, "sr_ratio": 1, "reduction": "conv"},
    validate=_validate,
    build=lambda settings, width, grid, act_layer: SpatialReductionAttention(
        width, head_count(settings, width), settings["sr_ratio"], settings["reduction"], settings["qkv_bias"]),
    dimensions=(HEAD_DIM, QKV_BIAS, ChoiceDim("sr_ratio", 1, number=int, fits=lambda ratio, width, grid: ratio <= grid),
                ChoiceDim("sr_reduction", "conv", vocabulary=REDUCTIONS, setting="reduction")),
    pos_embed=True))
