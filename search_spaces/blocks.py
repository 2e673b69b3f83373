"""The one MetaFormer block (mixer and norm swappable), the downsampling conv, and a stage of blocks."""
import torch
from torch import nn

from vitnas.search_spaces.config import ArchConfig, StageConfig
from vitnas.search_spaces.layers import DropPath, LayerScale, Mlp, make_act, make_norm
from vitnas.search_spaces.mixers import make_mixer


class MetaFormerBlock(nn.Module):
    """token mixer + channel mixer, wired as the config's `block` says.

    metaformer (PoolFormer, ViT/DeiT, MLP-Mixer): x + drop(ls(mixer(norm1(x)))), then x + drop(ls(mlp(norm2(x)))).
    convmixer: x + drop(norm1(act(mixer(x)))), then norm2(act(pointwise(x))), the pointwise part without residual.
    """

    def __init__(self, cfg: ArchConfig, stage: StageConfig, num_tokens: int, drop_path: float):
        super().__init__()
        dim = stage.width
        self.post_norm = cfg.block == "convmixer"
        self.mixer = make_mixer(stage.mixer, dim, num_tokens, cfg.act)
        self.norm1 = make_norm(cfg.norm, dim, cfg.norm_eps)
        self.norm2 = make_norm(cfg.norm, dim, cfg.norm_eps)
        if self.post_norm:
            self.act = make_act(cfg.act)
            self.channel = nn.Linear(dim, dim)
        else:
            self.channel = Mlp(dim, int(cfg.mlp_ratio * dim), cfg.act)
        use_scale = cfg.layer_scale is not None and not self.post_norm
        self.ls1 = LayerScale(dim, cfg.layer_scale) if use_scale else nn.Identity()
        self.ls2 = LayerScale(dim, cfg.layer_scale) if use_scale else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_norm:
            x = x + self.drop_path(self.norm1(self.act(self.mixer(x))))
            return self.norm2(self.act(self.channel(x)))
        x = x + self.drop_path(self.ls1(self.mixer(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.channel(self.norm2(x))))


class Downsample(nn.Module):
    """PoolFormer's stage transition: 3x3 conv, stride 2, padding 1 (grid g -> ceil(g / 2)), new width."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Stage(nn.Module):
    """Optional downsampling, then `depth` blocks at one resolution."""

    def __init__(self, cfg: ArchConfig, index: int, grid: int, drop_rates: list[float]):
        super().__init__()
        stage = cfg.stages[index]
        self.downsample = Downsample(cfg.stages[index - 1].width, stage.width) if index > 0 else nn.Identity()
        num_tokens = grid * grid + (cfg.head == "cls")
        self.blocks = nn.Sequential(*(MetaFormerBlock(cfg, stage, num_tokens, rate) for rate in drop_rates))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))
