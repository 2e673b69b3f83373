"""Stems: pixels (N, C, H, W) -> channels-last tokens (N, H/p, W/p, width), plus CLS token and position embedding."""
from __future__ import annotations

import torch
from torch import nn


class ConvStem(nn.Sequential):
    """Xiao et al. 2021: log2(p) 3x3 stride-2 convs (BN, ReLU), channels doubling up to `width`, then a 1x1 conv."""

    def __init__(self, in_chans: int, width: int, patch_size: int):
        n = patch_size.bit_length() - 1
        layers, c_in = [], in_chans
        for i in range(1, n + 1):
            c_out = max(1, width >> (n - i))
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, width, 1))
        super().__init__(*layers)
        self.in_chans = in_chans
        self.width = width
        self.patch_size = patch_size


class Stem(nn.Module):
    """`kind` patch: p x p conv, stride p; overlap: (2p-1) x (2p-1) conv, stride p, padding p // 2 (7x7/4 for p = 4,
    the grid is exactly H / p; `centered`: padding p - 1, PVT v2's 7x7/4 with padding 3, each kernel centred on its
    stride point); conv: ConvStem. `act_norm` adds the activation then the norm (ConvMixer); `norm` adds the norm
    alone (Swin, ConvNeXt, the MetaFormer baselines, PVT v2)."""

    def __init__(self, kind: str, in_chans: int, width: int, patch_size: int, image_size: int, act_norm: bool,
                 act_layer: type[nn.Module], norm_layer: type[nn.Module], norm_eps: float, use_cls: bool,
                 use_pos_embed: bool, norm: bool = False, centered: bool = False):
        super().__init__()
        self.kind = kind
        self.in_chans = in_chans
        self.width = width
        self.patch_size = patch_size
        self.image_size = image_size
        self.act_norm = act_norm
        self.act_layer = act_layer
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.use_cls = use_cls
        self.use_pos_embed = use_pos_embed
        self.norm = norm
        self.centered = centered
        if kind == "patch":
            self.proj = nn.Conv2d(in_chans, width, patch_size, stride=patch_size)
        elif kind == "overlap":
            padding = patch_size - 1 if centered else patch_size // 2
            self.proj = nn.Conv2d(in_chans, width, 2 * patch_size - 1, stride=patch_size, padding=padding)
        else:
            self.proj = ConvStem(in_chans, width, patch_size)
        if act_norm:
            self.post = nn.Sequential(act_layer(), norm_layer(width, eps=norm_eps))
        else:
            self.post = norm_layer(width, eps=norm_eps) if norm else nn.Identity()
        grid = image_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width)) if use_cls else None
        pos_shape = (1, grid * grid + 1, width) if use_cls else (1, grid, grid, width)
        self.pos_embed = nn.Parameter(torch.zeros(pos_shape)) if use_pos_embed else None
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels_last input makes the conv write channels-last output, so the permute below is free
        x = self.proj(x.contiguous(memory_format=torch.channels_last)).permute(0, 2, 3, 1)
        x = self.post(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x.flatten(1, 2)], dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        return x
