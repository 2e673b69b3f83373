"""The blocks (MetaFormer, ConvNeXt; a mixer and a norm plugged in), the downsampling layers between stages, and a
stage of blocks."""
from __future__ import annotations

import torch
from torch import nn

from vitnas.search_spaces.layers import DropPath, LayerScale, Mlp


class MetaFormerBlock(nn.Module):
    """token mixer + channel mixer; `mixer` is a built module, `norm_layer` and `act_layer` are classes.

    post_norm False (PoolFormer, ViT/DeiT, MLP-Mixer): x + drop(ls(mixer(norm1(x)))), then x + drop(ls(mlp(norm2(x)))).
    post_norm True (ConvMixer): x + drop(norm1(act(mixer(x)))), then norm2(act(pointwise(x))), the pointwise part
    without residual; mlp_ratio and layer_scale are unused.
    `res_scale` (MetaFormer baselines, pre-norm only) scales each residual per channel by a learned vector started
    at that value: rs1(x) + ..., rs2(x) + ...; `mlp_bias` False drops the channel MLP's biases; `mlp_layer` is the
    channel MLP's class (layers.Mlp, or layers.DwConvMlp: PVT v2).
    """

    def __init__(self, dim: int, mixer: nn.Module, norm_layer: type[nn.Module], norm_eps: float,
                 act_layer: type[nn.Module], mlp_ratio: float, layer_scale: float | None, drop_path: float,
                 post_norm: bool, res_scale: float | None = None, mlp_bias: bool = True,
                 mlp_layer: type[nn.Module] = Mlp):
        super().__init__()
        self.dim = dim
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.act_layer = act_layer
        self.mlp_ratio = mlp_ratio
        self.layer_scale = layer_scale
        self.drop_path = drop_path
        self.post_norm = post_norm
        self.res_scale = res_scale
        self.mlp_bias = mlp_bias
        self.mlp_layer = mlp_layer
        # registration order is the order of the weight init (model.MetaFormer) and of the state dict: keep it
        self.mixer = mixer
        self.norm1 = norm_layer(dim, eps=norm_eps)
        self.norm2 = norm_layer(dim, eps=norm_eps)
        if post_norm:
            self.act = act_layer()
            self.channel = nn.Linear(dim, dim)
        else:
            self.channel = mlp_layer(dim, int(mlp_ratio * dim), act_layer, mlp_bias)
        use_scale = layer_scale is not None and not post_norm
        self.ls1 = LayerScale(dim, layer_scale) if use_scale else nn.Identity()
        self.ls2 = LayerScale(dim, layer_scale) if use_scale else nn.Identity()
        self.drop = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        use_res = res_scale is not None and not post_norm
        self.rs1 = LayerScale(dim, res_scale) if use_res else nn.Identity()
        self.rs2 = LayerScale(dim, res_scale) if use_res else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_norm:
            x = x + self.drop(self.norm1(self.act(self.mixer(x))))
            return self.norm2(self.act(self.channel(x)))
        x = self.rs1(x) + self.drop(self.ls1(self.mixer(self.norm1(x))))
        return self.rs2(x) + self.drop(self.ls2(self.channel(self.norm2(x))))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block (Liu et al., CVPR 2022): one residual around mixer, norm, channel MLP and layer scale,
    x + drop(ls(mlp(norm(mixer(x))))); with the conv mixer at kernel 7 it is ConvNeXt's depthwise 7x7 block.
    `mlp_layer` as in MetaFormerBlock."""

    def __init__(self, dim: int, mixer: nn.Module, norm_layer: type[nn.Module], norm_eps: float,
                 act_layer: type[nn.Module], mlp_ratio: float, layer_scale: float | None, drop_path: float,
                 mlp_bias: bool, mlp_layer: type[nn.Module] = Mlp):
        super().__init__()
        self.dim = dim
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.act_layer = act_layer
        self.mlp_ratio = mlp_ratio
        self.layer_scale = layer_scale
        self.drop_path = drop_path
        self.mlp_bias = mlp_bias
        self.mlp_layer = mlp_layer
        self.mixer = mixer
        self.norm = norm_layer(dim, eps=norm_eps)
        self.channel = mlp_layer(dim, int(mlp_ratio * dim), act_layer, mlp_bias)
        self.ls = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()
        self.drop = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.ls(self.channel(self.norm(self.mixer(x)))))


class Downsample(nn.Module):
    """A stage transition by a stride-2 conv to the new width, with an optional norm of its input, or of its output
    when `norm_after`.

    kernel 3, padding 1: PoolFormer (no norm), the MetaFormer baselines (norm first) and PVT v2 (norm after); grid
    g -> ceil(g / 2), config.stage_grids. kernel 2, no padding: ConvNeXt (norm first); grid g -> g / 2 for the even
    grids it is given.
    """

    def __init__(self, dim_in: int, dim_out: int, kernel_size: int = 3, norm_layer: type[nn.Module] | None = None,
                 norm_eps: float = 1e-5, norm_after: bool = False):
        super().__init__()
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.kernel_size = kernel_size
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.norm_after = norm_after
        norm_dim = dim_out if norm_after else dim_in
        self.norm = norm_layer(norm_dim, eps=norm_eps) if norm_layer is not None else nn.Identity()
        self.conv = nn.Conv2d(dim_in, dim_out, kernel_size, stride=2, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_after:
            return self.norm(self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        return self.conv(self.norm(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PatchMerging(nn.Module):
    """Swin's stage transition: each 2x2 block of neighbours concatenated into one token of 4 x dim_in channels,
    normalised, then a linear map (no bias) to dim_out; grid g -> g / 2 for the even grids it is given. The
    concatenation order is Swin's: (top-left, bottom-left, top-right, bottom-right)."""

    def __init__(self, dim_in: int, dim_out: int, norm_layer: type[nn.Module], norm_eps: float):
        super().__init__()
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.norm = norm_layer(4 * dim_in, eps=norm_eps)
        self.reduction = nn.Linear(4 * dim_in, dim_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, height, width, dim = x.shape
        # (n, rows, dy, cols, dx, dim) -> (n, rows, cols, dx, dy, dim): dy varies fastest within each dx
        x = x.reshape(n, height // 2, 2, width // 2, 2, dim).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class Stage(nn.Module):
    """Downsampling (None in the first stage), an optional position embedding, then blocks at one resolution, then
    with `norm_layer` a norm of their `dim` channels (PVT v2 ends each stage with one)."""

    def __init__(self, downsample: nn.Module | None, blocks: nn.Sequential, pos_embed: nn.Module | None = None,
                 norm_layer: type[nn.Module] | None = None, dim: int | None = None, norm_eps: float = 1e-5):
        super().__init__()
        self.downsample = downsample
        self.blocks = blocks
        self.pos_embed = pos_embed
        self.norm_layer = norm_layer
        self.dim = dim
        self.norm_eps = norm_eps
        self.norm = norm_layer(dim, eps=norm_eps) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        if self.pos_embed is not None:
            x = self.pos_embed(x)
        x = self.blocks(x)
        return self.norm(x) if self.norm is not None else x
