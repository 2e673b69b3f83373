"""The attention mixer (ViT, DeiT): multi-head self-attention over all tokens."""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vitnas.search_spaces.checks import check_bool, check_float, check_int, fail
from vitnas.search_spaces.registry import MIXERS, ChoiceDim, MixerKind, RangeDim


class Attention(nn.Module):
    """Multi-head self-attention over all tokens through F.scaled_dot_product_attention (fused kernels, no
    explicit attention matrix). The softmax runs on logits / (sqrt(head_dim) * temperature)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool, temperature: float):
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.qkv_bias = qkv_bias
        self.temperature = temperature
        self.scale = 1.0 / (math.sqrt(dim // heads) * temperature)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        tokens = x.reshape(shape[0], -1, shape[-1])
        n, length, dim = tokens.shape
        qkv = self.qkv(tokens).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # unbind's backward is one stack; indexing would zero-fill qkv's grad per slice
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim)).view(shape)


def _validate(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    heads, head_dim = settings["heads"], settings["head_dim"]
    if (heads is None) == (head_dim is None):
        raise fail(f"{where}.heads", heads, "give exactly one of heads or head_dim for an attention mixer")
    key, value = ("heads", heads) if heads is not None else ("head_dim", head_dim)
    check_int(f"{where}.{key}", value, 1)
    if width % value:
        raise fail(f"{where}.{key}", value, f"must divide the stage width {width}")
    check_bool(f"{where}.qkv_bias", settings["qkv_bias"])
    check_float(f"{where}.temperature", settings["temperature"], 0.0, 100.0, open_low=True)


def _build(settings: Mapping[str, Any], width: int, grid: int, act_layer: type) -> Attention:
    heads = settings["heads"] if settings["heads"] is not None else width // settings["head_dim"]
    return Attention(width, heads, settings["qkv_bias"], settings["temperature"])


MIXERS.register("attention", MixerKind(
    settings={"heads": None, "head_dim": None, "qkv_bias": True, "temperature": 1.0},
    validate=_validate, build=_build,
    dimensions=(ChoiceDim("head_dim", 32, number=int, fits=lambda head_dim, width, grid: width % head_dim == 0),
                ChoiceDim("qkv_bias", True, vocabulary=(False, True)),
                RangeDim("temperature", 1.0)),
    cls_token=True, pos_embed=True))
