"""The builder: ArchConfig -> nn.Module with `stem`, `stages` and `head` (the parts cost reports go by)."""
import torch
from torch import nn

from vitnas.search_spaces.blocks import Stage
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.layers import make_norm
from vitnas.search_spaces.stems import Stem


class Head(nn.Module):
    """Final norm, then global average pooling over positions or the CLS token, then a linear classifier."""

    def __init__(self, cfg: ArchConfig):
        super().__init__()
        width = cfg.stages[-1].width
        self.use_cls = cfg.head == "cls"
        self.norm = make_norm(cfg.norm, width, cfg.norm_eps) if cfg.final_norm else nn.Identity()
        self.fc = nn.Linear(width, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        pooled = x[:, 0] if self.use_cls else x.flatten(1, -2).mean(dim=1)
        return self.fc(pooled)


class MetaFormer(nn.Module):
    """Float images (N, in_chans, H, W), already normalised -> logits (N, num_classes)."""

    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.config = cfg
        total = sum(s.depth for s in cfg.stages)
        # stochastic depth grows linearly with block index, as in DeiT/PoolFormer
        rates = [cfg.drop_path * i / max(total - 1, 1) for i in range(total)]
        self.stem = Stem(cfg)
        stages, start = [], 0
        for i, grid in enumerate(cfg.stage_grids()):
            depth = cfg.stages[i].depth
            stages.append(Stage(cfg, i, grid, rates[start:start + depth]))
            start += depth
        self.stages = nn.ModuleList(stages)
        self.head = Head(cfg)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal linear weights, zero biases: the ViT/PoolFormer recipe that trains from scratch."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_model(cfg: ArchConfig) -> MetaFormer:
    return MetaFormer(cfg)
