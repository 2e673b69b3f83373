"""The one MetaFormer block (mixer and norm plugged in), the downsampling conv, and a stage of blocks."""
from __future__ import annotations

import torch
from torch import nn

from vitnas.search_spaces.layers import DropPath, LayerScale, Mlp


class MetaFormerBlock(nn.Module):
    """token mixer + channel mixer; `mixer` is a built module, `norm_layer` and `act_layer` are classes.

    post_norm False (PoolFormer, ViT/DeiT, MLP-Mixer): x + drop(ls(mixer(norm1(x)))), then x + drop(ls(mlp(norm2(x)))).
    post_norm True (ConvMixer): x + drop(norm1(act(mixer(x)))), then norm2(act(pointwise(x))), the pointwise part
    without residual; mlp_ratio and layer_scale are unused.
    """

    def __init__(self, dim: int, mixer: nn.Module, norm_layer: type[nn.Module], norm_eps: float,
                 act_layer: type[nn.Module], mlp_ratio: float, layer_scale: float | None, drop_path: float,
                 post_norm: bool):
        super().__init__()
        self.dim = dim
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.act_layer = act_layer
        self.mlp_ratio = mlp_ratio
        self.layer_scale = layer_scale
        self.drop_path = drop_path
        self.post_norm = post_norm
        # registration order is the order of the weight init (model.MetaFormer) and of the state dict: keep it
        self.mixer = mixer
        self.norm1 = norm_layer(dim, eps=norm_eps)
        self.norm2 = norm_layer(dim, eps=norm_eps)
        if post_norm:
            self.act = act_layer()
            self.channel = nn.Linear(dim, dim)
        else:
            self.channel = Mlp(dim, int(mlp_ratio * dim), act_layer)
        use_scale = layer_scale is not None and not post_norm
        self.ls1 = LayerScale(dim, layer_scale) if use_scale else nn.Identity()
        self.ls2 = LayerScale(dim, layer_scale) if use_scale else nn.Identity()
        self.drop = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_norm:
            x = x + self.drop(self.norm1(self.act(self.mixer(x))))
            return self.norm2(self.act(self.channel(x)))
        x = x + self.drop(self.ls1(self.mixer(self.norm1(x))))
        return x + self.drop(self.ls2(self.channel(self.norm2(x))))


class Downsample(nn.Module):
    """PoolFormer's stage transition: 3x3 conv, stride 2, padding 1 (grid g -> ceil(g / 2), config.stage_grids),
    new width."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.conv = nn.Conv2d(dim_in, dim_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Stage(nn.Module):
    """Downsampling (None in the first stage), then blocks at one resolution."""

    def __init__(self, downsample: nn.Module | None, blocks: nn.Sequential):
        super().__init__()
        self.downsample = downsample
        self.blocks = blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)
