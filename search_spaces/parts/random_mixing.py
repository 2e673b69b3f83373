"""The random-mixing mixer (RandFormer, Yu et al. 2022 "MetaFormer Baselines for Vision")."""
from __future__ import annotations

import torch
from torch import nn

from vitnas.search_spaces.registry import MIXERS, MixerKind


class RandomMixing(nn.Module):
    """Mixes tokens with a frozen random matrix (rows of uniform draws, softmax-normalised, so every output token is
    a convex combination of all tokens): a lower bound for what any learned token mixing adds. The matrix is a
    buffer, kept in the state dict and never trained."""

    def __init__(self, num_tokens: int):
        super().__init__()
        self.num_tokens = num_tokens
        self.register_buffer("matrix", torch.softmax(torch.rand(num_tokens, num_tokens), dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return (self.matrix @ x.reshape(shape[0], -1, shape[-1])).view(shape)


MIXERS.register("random", MixerKind(settings={}, build=lambda settings, width, grid, act_layer: RandomMixing(grid * grid)))
