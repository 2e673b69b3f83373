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
    explicit attention matrix). The softmax runs on logits / (sqrt(head_dim) * temperature). The MetaFormer
    baselines (CAFormer) drop the output projection's bias."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool, temperature: float, proj_bias: bool = True):
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.qkv_bias = qkv_bias
        self.temperature = temperature
        self.proj_bias = proj_bias
        self.scale = 1.0 / (math.sqrt(dim // heads) * temperature)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        tokens = x.reshape(shape[0], -1, shape[-1])
        n, length, dim = tokens.shape
        qkv = self.qkv(tokens).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # unbind's backward is one stack; indexing would zero-fill qkv's grad per slice
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim)).view(shape)


def validate_heads(settings: Mapping[str, Any], width: int, where: str) -> None:
    """The rule of every multi-head mixer: exactly one of `heads` and `head_dim`, dividing the width."""
    heads, head_dim = settings["heads"], settings["head_dim"]
    if (heads is None) == (head_dim is None):
        raise fail(f"{where}.heads", heads, "give exactly one of heads or head_dim for an attention mixer")
    key, value = ("heads", heads) if heads is not None else ("head_dim", head_dim)
    check_int(f"{where}.{key}", value, 1)
    if width % value:
        raise fail(f"{where}.{key}", value, f"must divide the stage width {width}")
    check_bool(f"{where}.qkv_bias", settings["qkv_bias"])


def head_count(settings: Mapping[str, Any], width: int) -> int:
    return settings["heads"] if settings["heads"] is not None else width // settings["head_dim"]


def _validate(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    validate_heads(settings, width, where)
    check_float(f"{where}.temperature", settings["temperature"], 0.0, 100.0, open_low=True)
    check_bool(f"{where}.proj_bias", settings["proj_bias"])


def _build(settings: Mapping[str, Any], width: int, grid: int, act_layer: type) -> Attention:
    return Attention(width, head_count(settings, width), settings["qkv_bias"], settings["temperature"],
                     settings["proj_bias"])


# dimensions every multi-head mixer shares (a space file lists head_dim once for all of them)
HEAD_DIM = ChoiceDim("head_dim", 32, number=int, fits=lambda head_dim, width, grid: width % head_dim == 0)
QKV_BIAS = ChoiceDim("qkv_bias", True, vocabulary=(False, True))

MIXERS.register("attention", MixerKind(
    settings={"heads": None, "head_dim": None, "qkv_bias": True, "temperature": 1.0, "proj_bias": True},
    validate=_validate, build=_build,
    dimensions=(HEAD_DIM, QKV_BIAS, RangeDim("temperature", 1.0)),
    cls_token=True, pos_embed=True))
