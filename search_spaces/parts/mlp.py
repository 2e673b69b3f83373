"""The token-mixing MLP mixer (MLP-Mixer)."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from vitnas.search_spaces.checks import check_float, fail
from vitnas.search_spaces.layers import Mlp
from vitnas.search_spaces.registry import MIXERS, ChoiceDim, MixerKind


class TokenMLP(nn.Module):
    """MLP-Mixer's token-mixing MLP: one MLP applied across the (fixed) token positions of every channel."""

    def __init__(self, num_tokens: int, hidden: int, act_layer: type[nn.Module]):
        super().__init__()
        self.num_tokens = num_tokens
        self.hidden = hidden
        self.act_layer = act_layer
        self.mlp = Mlp(num_tokens, hidden, act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        per_channel = x.reshape(shape[0], -1, shape[-1]).transpose(1, 2)
        return self.mlp(per_channel).transpose(1, 2).reshape(shape)


def _hidden(ratio: float, width: int) -> int:
    """MLP-Mixer's token MLP hidden size is a fraction of the width (0.5 x width), not of the token count."""
    return int(ratio * width)


def _validate(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    ratio = settings["token_mlp_ratio"]
    check_float(f"{where}.token_mlp_ratio", ratio, 0.0, 16.0, open_low=True)
    if _hidden(ratio, width) < 1:
        raise fail(f"{where}.token_mlp_ratio", ratio, f"token_mlp_ratio x width ({width}) must be at least 1")


MIXERS.register("mlp", MixerKind(
    settings={"token_mlp_ratio": 0.5}, validate=_validate,
    build=lambda settings, width, grid, act_layer: TokenMLP(grid * grid, _hidden(settings["token_mlp_ratio"], width),
                                                            act_layer),
    dimensions=(ChoiceDim("token_mlp_ratio", 0.5, fits=lambda ratio, width, grid: _hidden(ratio, width) >= 1),)))
