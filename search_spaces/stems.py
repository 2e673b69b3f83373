"""Stems: pixels (N, C, H, W) -> channels-last tokens (N, H/p, W/p, width), plus CLS token and position embedding."""
import torch
from torch import nn

from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.layers import make_act, make_norm


def _conv_stem(in_chans: int, width: int, patch: int) -> nn.Sequential:
    """Xiao et al. 2021: log2(p) 3x3 stride-2 convs (BN, ReLU), channels doubling up to `width`, then a 1x1 conv."""
    n = patch.bit_length() - 1
    layers, c_in = [], in_chans
    for i in range(1, n + 1):
        c_out = max(1, width >> (n - i))
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    layers.append(nn.Conv2d(c_in, width, 1))
    return nn.Sequential(*layers)


def _make_proj(cfg: ArchConfig) -> nn.Module:
    width, p, kind = cfg.stages[0].width, cfg.stem.patch_size, cfg.stem.kind
    if kind == "patch":
        return nn.Conv2d(cfg.in_chans, width, p, stride=p)
    if kind == "overlap":  # 7x7 stride 4 padding 2 for p = 4; the grid is exactly H / p
        return nn.Conv2d(cfg.in_chans, width, 2 * p - 1, stride=p, padding=p // 2)
    return _conv_stem(cfg.in_chans, width, p)


class Stem(nn.Module):
    def __init__(self, cfg: ArchConfig):
        super().__init__()
        width, grid = cfg.stages[0].width, cfg.stem_grid
        self.proj = _make_proj(cfg)
        self.post = (nn.Sequential(make_act(cfg.act), make_norm(cfg.norm, width, cfg.norm_eps))
                     if cfg.stem.act_norm else nn.Identity())
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width)) if cfg.head == "cls" else None
        pos_shape = (1, grid * grid + 1, width) if cfg.head == "cls" else (1, grid, grid, width)
        self.pos_embed = nn.Parameter(torch.zeros(pos_shape)) if cfg.pos_embed else None
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
