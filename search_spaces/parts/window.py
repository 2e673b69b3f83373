"""The window-attention mixer (Swin, Liu et al. ICCV 2021): attention within local windows, every other block's
windows shifted by half a window."""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vitnas.search_spaces.checks import check_bool, check_int, fail
from vitnas.search_spaces.parts.attention import HEAD_DIM, QKV_BIAS, head_count, validate_heads
from vitnas.search_spaces.registry import MIXERS, ChoiceDim, MixerKind


class WindowAttention(nn.Module):
    """Multi-head self-attention within each non-overlapping `window` x `window` square of a `grid` x `grid` token
    grid, plus a learned bias per head and relative offset (a table of (2 window - 1)^2 rows, Swin's relative
    position bias). `shifted` rolls the grid up-left by window // 2 first and back after, so windows straddle the
    previous block's window boundaries; tokens the roll wrapped around the grid's edge sit in one window with tokens
    they are not next to, and a mask keeps the two groups from attending to each other."""

    def __init__(self, dim: int, heads: int, window: int, shifted: bool, grid: int, qkv_bias: bool):
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.window = window
        self.shifted = shifted
        self.grid = grid
        self.qkv_bias = qkv_bias
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.relative_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_bias, std=0.02)
        # derived from the constructor's arguments, so not part of the state dict
        self.register_buffer("relative_index", self._relative_index(window), persistent=False)
        self.register_buffer("mask", self._shift_mask(window, grid) if shifted else None, persistent=False)

    @staticmethod
    def _relative_index(window: int) -> torch.Tensor:
        """(window^2, window^2): the table row of each (query, key) pair, from their offset (dy, dx) in the window."""
        row = torch.arange(window).repeat_interleave(window)
        col = torch.arange(window).repeat(window)
        dy = row[:, None] - row[None, :] + window - 1
        dx = col[:, None] - col[None, :] + window - 1
        return dy * (2 * window - 1) + dx

    @staticmethod
    def _shift_mask(window: int, grid: int) -> torch.Tensor:
        """(windows, 1, window^2, window^2): 0 between tokens of one region of the rolled grid, -inf across regions.
        Along each axis the rolled grid has three regions: positions that were already inside it, the last window
        (which the roll filled from both sides) split where the wrapped-around half begins."""
        shift = window // 2
        bands = torch.zeros(grid, dtype=torch.long)
        bands[grid - window:] = 1
        bands[grid - shift:] = 2
        regions = (bands[:, None] * 3 + bands[None, :]).view(grid // window, window, grid // window, window)
        regions = regions.transpose(1, 2).reshape(-1, window * window)
        apart = regions[:, :, None] != regions[:, None, :]
        return torch.zeros(apart.shape).masked_fill(apart, float("-inf")).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, height, width, dim = x.shape
        size, shift = self.window, self.window // 2
        if self.shifted:
            x = torch.roll(x, (-shift, -shift), dims=(1, 2))
        rows, cols = height // size, width // size
        windows = x.view(n, rows, size, cols, size, dim).transpose(2, 3).reshape(n, rows * cols, size * size, dim)
        qkv = self.qkv(windows).view(n, rows * cols, size * size, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # each (n, windows, heads, tokens, head_dim)
        bias = self.relative_bias[self.relative_index.view(-1)].view(size * size, size * size, self.heads)
        bias = bias.permute(2, 0, 1)
        if self.mask is not None:
            bias = bias + self.mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        out = self.proj(out.transpose(2, 3).reshape(n, rows * cols, size * size, dim))
        out = out.view(n, rows, cols, size, size, dim).transpose(2, 3).reshape(n, height, width, dim)
        if self.shifted:
            out = torch.roll(out, (shift, shift), dims=(1, 2))
        return out


def _validate(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    validate_heads(settings, width, where)
    window = settings["window_size"]
    check_int(f"{where}.window_size", window, 1, 64)
    if window < grid and grid % window:
        sizes = [d for d in range(1, grid + 1) if grid % d == 0]
        raise fail(f"{where}.window_size", window, f"must divide the stage's {grid}x{grid} token grid (or be at "
                   f"least {grid}: one window); allowed: {', '.join(map(str, sizes))}")
    check_bool(f"{where}.shift", settings["shift"])


def _build(settings: Mapping[str, Any], width: int, grid: int, act_layer: type, index: int) -> WindowAttention:
    # as in Swin: a window as large as the grid is the whole grid, and then there is nothing to shift
    window = min(settings["window_size"], grid)
    shifted = settings["shift"] and index % 2 == 1 and window < grid
    return WindowAttention(width, head_count(settings, width), window, shifted, grid, settings["qkv_bias"])


MIXERS.register("window", MixerKind(
    settings={"heads": None, "head_dim": None, "qkv_bias": True, "window_size": 7, "shift": True},
    validate=_validate, build=_build,
    dimensions=(HEAD_DIM, QKV_BIAS,
                ChoiceDim("window_size", 7, number=int, fits=lambda window, width, grid: grid % window == 0),
                ChoiceDim("window_shift", True, vocabulary=(False, True), setting="shift")),
    takes_index=True))
