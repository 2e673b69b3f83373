"""Small layers every block uses: norms, activations, layer scale, drop path.

Tensors are channels-last everywhere: (N, H, W, C) grids, or (N, L, C) sequences when a CLS token rides along.
So every norm here normalises over the last dim (or, for GroupNorm(1), over everything but the batch).
"""
import torch
from torch import nn

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


def make_act(kind: str) -> nn.Module:
    return ACTIVATIONS[kind]()


class ChannelBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last (channel) dim of a channels-last tensor: flattening to (N*positions, C) is a view."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class GroupNorm1(nn.GroupNorm):
    """GroupNorm with one group ("modified LayerNorm", PoolFormer): statistics over all positions and channels of a
    sample, affine per channel. Moving channels to dim 1 gives a channels_last NCHW view, which torch's fused
    group_norm kernels take without a copy."""

    def __init__(self, dim: int, eps: float):
        super().__init__(1, dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(-1, 1)).movedim(1, -1)


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps)
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=eps)
    if kind == "batchnorm":
        return ChannelBatchNorm(dim, eps=eps)
    if kind == "groupnorm":
        return GroupNorm1(dim, eps)
    return nn.Identity()


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (CaiT), started small so deep models train."""

    def __init__(self, dim: int, init: float):
        super().__init__()
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
    positions once transposed, MLP-Mixer's token MLP."""

    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = make_act(act)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
