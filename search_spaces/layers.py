"""Small layers every block uses: layer scale, drop path, the channel MLP. (Norms and activations: parts/.)

Tensors are channels-last everywhere: (N, H, W, C) grids, or (N, L, C) sequences when a CLS token rides along.
"""
from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (CaiT), started small so deep models train."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.dim = dim
        self.init = init
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    """Stochastic depth: in training, drop a residual branch for a random subset of samples and rescale the rest."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class Mlp(nn.Module):
    """Linear, activation, linear on the last dim: a block's channel MLP (a 1x1 conv in channels-last), and across
    positions once transposed, MLP-Mixer's token MLP. The MetaFormer baselines drop the biases."""

    def __init__(self, dim: int, hidden: int, act_layer: type[nn.Module], bias: bool = True):
        super().__init__()
        self.dim = dim
        self.hidden = hidden
        self.act_layer = act_layer
        self.bias = bias
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DwConvMlp(Mlp):
    """PVT v2's channel MLP (Wang et al. 2022): Mlp with a depthwise 3x3 conv ('same' padding) on the hidden channels
    between fc1 and the activation, so each token also sees its 8 neighbours; PVT v2 drops position embeddings for
    it. It takes (N, H, W, C) grids only: the conv needs the 2-D layout."""

    def __init__(self, dim: int, hidden: int, act_layer: type[nn.Module], bias: bool = True):
        super().__init__(dim, hidden, act_layer, bias)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NCHW views of channels-last data: the permutes move no memory
        hidden = self.dwconv(self.fc1(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.fc2(self.act(hidden))


class PositionEmbedding(nn.Module):
    """A learned embedding added to every position of a grid x grid token grid: the stage-3 position embedding of
    PoolFormer's hybrid [pool, pool, attention, attention] model (Yu et al. 2022, Table 6)."""

    def __init__(self, grid: int, dim: int):
        super().__init__()
        self.grid = grid
        self.dim = dim
        self.weight = nn.Parameter(torch.zeros(1, grid, grid, dim))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight
