"""The top model and the builder: the one place that turns an ArchConfig into constructor calls.

Every nn.Module class in search_spaces is "liftable" (export copies class sources into a standalone model.py):
1. its constructor takes plain values (int, float, bool, str, None, tuples of those), module classes (torch's such
   as nn.GELU, or liftable ones such as GroupNorm1) and built modules (liftable ones; nn.Sequential / nn.ModuleList
   of them; nn.Identity), never configs;
2. it stores every constructor argument as an attribute of the same name (a module argument is the submodule of
   that name), so the call is read back from a built model: for each parameter of inspect.signature(type(m)), take
   getattr(m, name), rebuilding module values the same way (tests/test_blocks.py does exactly this);
3. its methods name only torch, nn, F, math and other liftable classes as globals: no registry, no config.
Only `build_model` and the registered parts' build functions read configs.
"""
from __future__ import annotations

import torch
from torch import nn

from vitnas.search_spaces.blocks import Downsample, MetaFormerBlock, Stage
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.registry import ACTS, MIXERS, NORMS
from vitnas.search_spaces.stems import Stem


class Head(nn.Module):
    """Final norm, then global average pooling over positions or the CLS token, then a linear classifier."""

    def __init__(self, width: int, num_classes: int, final_norm: bool, norm_layer: type[nn.Module], norm_eps: float,
                 use_cls: bool):
        super().__init__()
        self.width = width
        self.num_classes = num_classes
        self.final_norm = final_norm
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.use_cls = use_cls
        self.norm = norm_layer(width, eps=norm_eps) if final_norm else nn.Identity()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        pooled = x[:, 0] if self.use_cls else x.flatten(1, -2).mean(dim=1)
        return self.fc(pooled)


class MetaFormer(nn.Module):
    """Float images (N, in_chans, H, W), already normalised -> logits (N, num_classes)."""

    def __init__(self, stem: nn.Module, stages: nn.ModuleList, head: nn.Module):
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = head
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """Truncated-normal linear weights, zero biases: the ViT/PoolFormer recipe that trains from scratch."""
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


def build_model(cfg: ArchConfig) -> MetaFormer:
    """The model of a config, with `model.config` set to it (tools read it; export ignores it). The build order is
    the order random init draws in, so a seed gives the same weights as ever."""
    norm_layer, act_layer = NORMS[cfg.norm], ACTS[cfg.act]
    stem = Stem(cfg.stem.kind, cfg.in_chans, cfg.stages[0].width, cfg.stem.patch_size, cfg.image_size,
                cfg.stem.act_norm, act_layer, norm_layer, cfg.norm_eps, cfg.head == "cls", cfg.pos_embed)
    total = sum(s.depth for s in cfg.stages)
    # stochastic depth grows linearly with block index, as in DeiT/PoolFormer
    rates = iter([cfg.drop_path * i / max(total - 1, 1) for i in range(total)])
    stages = []
    for i, (stage, grid) in enumerate(zip(cfg.stages, cfg.stage_grids())):
        downsample = Downsample(cfg.stages[i - 1].width, stage.width) if i > 0 else None
        kind, settings = MIXERS[stage.mixer.kind], dict(stage.mixer.settings)
        blocks = nn.Sequential(*(
            MetaFormerBlock(stage.width, kind.build(settings, stage.width, grid, act_layer), norm_layer, cfg.norm_eps,
                            act_layer, cfg.mlp_ratio, cfg.layer_scale, next(rates), cfg.block == "convmixer")
            for _ in range(stage.depth)))
        stages.append(Stage(downsample, blocks))
    head = Head(cfg.stages[-1].width, cfg.num_classes, cfg.final_norm, norm_layer, cfg.norm_eps, cfg.head == "cls")
    model = MetaFormer(stem, nn.ModuleList(stages), head)
    model.config = cfg
    return model
