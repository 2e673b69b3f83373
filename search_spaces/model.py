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

from vitnas.search_spaces.blocks import ConvNeXtBlock, Downsample, MetaFormerBlock, PatchMerging, Stage
from vitnas.search_spaces.config import ArchConfig, StageConfig
from vitnas.search_spaces.layers import DwConvMlp, Mlp, PositionEmbedding
from vitnas.search_spaces.parts.activations import SquaredReLU
from vitnas.search_spaces.registry import ACTS, MIXERS, NORMS
from vitnas.search_spaces.stems import Stem


class MlpClassifier(nn.Module):
    """The MetaFormer baselines' MLP head: linear to `hidden`, activation, norm, linear to the classes."""

    def __init__(self, dim: int, hidden: int, num_classes: int, act_layer: type[nn.Module],
                 norm_layer: type[nn.Module], norm_eps: float):
        super().__init__()
        self.dim = dim
        self.hidden = hidden
        self.num_classes = num_classes
        self.act_layer = act_layer
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act_layer()
        self.norm = norm_layer(hidden, eps=norm_eps)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(x))))


class Head(nn.Module):
    """Final norm, then global average pooling over positions or the CLS token, then a linear classifier; with
    `pool_first`, pooling before the norm (ConvNeXt, MetaFormer baselines), and with `mlp_hidden` the MetaFormer
    baselines' MLP classifier (squared ReLU, the same norm class) instead of the linear one."""

    def __init__(self, width: int, num_classes: int, final_norm: bool, norm_layer: type[nn.Module], norm_eps: float,
                 use_cls: bool, pool_first: bool = False, mlp_hidden: int | None = None):
        super().__init__()
        self.width = width
        self.num_classes = num_classes
        self.final_norm = final_norm
        self.norm_layer = norm_layer
        self.norm_eps = norm_eps
        self.use_cls = use_cls
        self.pool_first = pool_first
        self.mlp_hidden = mlp_hidden
        self.norm = norm_layer(width, eps=norm_eps) if final_norm else nn.Identity()
        if mlp_hidden is None:
            self.fc = nn.Linear(width, num_classes)
        else:
            self.fc = MlpClassifier(width, mlp_hidden, num_classes, SquaredReLU, norm_layer, norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_first:
            return self.fc(self.norm(x.flatten(1, -2).mean(dim=1)))
        x = self.norm(x)
        return self.fc(x[:, 0] if self.use_cls else x.flatten(1, -2).mean(dim=1))


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
    act_layer = ACTS[cfg.act]
    stem = Stem(cfg.stem.kind, cfg.in_chans, cfg.stages[0].width, cfg.stem.patch_size, cfg.image_size,
                cfg.stem.act_norm, act_layer, NORMS[cfg.downsample_norm or cfg.norm], _downsample_eps(cfg),
                cfg.head == "cls", cfg.pos_embed, cfg.stem.norm, cfg.stem.centered)
    total = sum(s.depth for s in cfg.stages)
    # stochastic depth grows linearly with block index, as in DeiT/PoolFormer
    rates = iter([cfg.drop_path * i / max(total - 1, 1) for i in range(total)])
    stages = []
    for i, (stage, grid) in enumerate(zip(cfg.stages, cfg.stage_grids())):
        downsample = _downsample(cfg, cfg.stages[i - 1].width, stage.width) if i > 0 else None
        pos_embed = PositionEmbedding(grid, stage.width) if stage.pos_embed else None
        blocks = nn.Sequential(*(_block(cfg, stage, grid, index, next(rates)) for index in range(stage.depth)))
        # a stage without its norm keeps Stage's defaults, so exported model files name no norm arguments for it
        norm = (NORMS[cfg.norm], stage.width, cfg.norm_eps) if cfg.stage_norm else ()
        stages.append(Stage(downsample, blocks, pos_embed, *norm))
    model = MetaFormer(stem, nn.ModuleList(stages), _head(cfg))
    model.config = cfg
    return model


def _downsample_eps(cfg: ArchConfig) -> float:
    """The eps of the stem's and the downsamplings' norm."""
    return cfg.norm_eps if cfg.downsample_norm_eps is None else cfg.downsample_norm_eps


def _downsample(cfg: ArchConfig, dim_in: int, dim_out: int) -> nn.Module:
    norm_layer, eps = NORMS[cfg.downsample_norm or cfg.norm], _downsample_eps(cfg)
    if cfg.downsample == "patch_merging":
        return PatchMerging(dim_in, dim_out, norm_layer, eps)
    if cfg.downsample == "conv":
        return Downsample(dim_in, dim_out)
    return Downsample(dim_in, dim_out, 2 if cfg.downsample == "norm_patch" else 3, norm_layer, eps,
                      cfg.downsample == "conv_norm")


def _block(cfg: ArchConfig, stage: StageConfig, grid: int, index: int, drop_path: float) -> nn.Module:
    """Block `index` of a stage; its mixer is built first (the init order of every model before ConvNeXt blocks)."""
    norm_layer, act_layer = NORMS[cfg.norm], ACTS[cfg.act]
    mlp_ratio = cfg.mlp_ratio if stage.mlp_ratio is None else stage.mlp_ratio
    mlp_layer = DwConvMlp if cfg.mlp == "dwconv" else Mlp
    kind = MIXERS[stage.mixer.kind]
    mixer = kind.build(dict(stage.mixer.settings), stage.width, grid, act_layer,
                       **({"index": index} if kind.takes_index else {}))
    if cfg.block == "convnext":
        return ConvNeXtBlock(stage.width, mixer, norm_layer, cfg.norm_eps, act_layer, mlp_ratio, cfg.layer_scale,
                             drop_path, cfg.mlp_bias, mlp_layer)
    return MetaFormerBlock(stage.width, mixer, norm_layer, cfg.norm_eps, act_layer, mlp_ratio, cfg.layer_scale,
                           drop_path, cfg.block == "convmixer", stage.res_scale, cfg.mlp_bias, mlp_layer)


def _head(cfg: ArchConfig) -> nn.Module:
    width = cfg.stages[-1].width
    hidden = int(cfg.head_mlp_ratio * width) if cfg.head_mlp_ratio is not None else None
    return Head(width, cfg.num_classes, cfg.final_norm, NORMS[cfg.head_norm or cfg.norm], cfg.norm_eps,
                cfg.head == "cls", cfg.head == "pooled", hidden)
