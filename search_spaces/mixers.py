"""Token mixers: the part of a MetaFormer block that moves information between positions.

Inputs are channels-last, (N, H, W, C) or (N, L, C). Spatial mixers view the grid as an NCHW tensor in channels_last
memory format (a permute, no copy), which is the fast path for convolutions and pooling on CPU and GPU.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from vitnas.search_spaces.config import MixerConfig
from vitnas.search_spaces.layers import Mlp


def _as_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _as_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


class Attention(nn.Module):
    """Multi-head self-attention over all tokens through F.scaled_dot_product_attention (fused kernels, no
    explicit attention matrix). The softmax runs on logits / (sqrt(head_dim) * temperature)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool, temperature: float):
        super().__init__()
        self.heads = heads
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


class Pooling(nn.Module):
    """PoolFormer's mixer: average pool (stride 1, padding not counted) minus the input, since the block's
    residual adds the input back."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = _as_nchw(x)
        pooled = F.avg_pool2d(grid, self.kernel_size, 1, self.kernel_size // 2, count_include_pad=False)
        return _as_nhwc(pooled - grid)


class DepthwiseConv(nn.Module):
    """ConvMixer's spatial mixer: a depthwise conv with 'same' padding."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _as_nhwc(self.conv(_as_nchw(x)))


class TokenMLP(nn.Module):
    """MLP-Mixer's token-mixing MLP: one MLP applied across the (fixed) token positions of every channel."""

    def __init__(self, num_tokens: int, hidden: int, act: str):
        super().__init__()
        self.mlp = Mlp(num_tokens, hidden, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        per_channel = x.reshape(shape[0], -1, shape[-1]).transpose(1, 2)
        return self.mlp(per_channel).transpose(1, 2).reshape(shape)


def make_mixer(cfg: MixerConfig, dim: int, num_tokens: int, act: str) -> nn.Module:
    if cfg.kind == "attention":
        heads = cfg.heads if cfg.heads is not None else dim // cfg.head_dim
        return Attention(dim, heads, cfg.qkv_bias, cfg.temperature)
    if cfg.kind == "pool":
        return Pooling(cfg.kernel_size)
    if cfg.kind == "conv":
        return DepthwiseConv(dim, cfg.kernel_size)
    if cfg.kind == "mlp":
        return TokenMLP(num_tokens, int(cfg.token_mlp_ratio * dim), act)
    return nn.Identity()
