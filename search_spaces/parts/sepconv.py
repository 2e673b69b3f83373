"""The separable-conv mixer (ConvFormer, Yu et al. 2022 "MetaFormer Baselines for Vision")."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from vitnas.search_spaces.checks import check_float, check_odd, fail
from vitnas.search_spaces.registry import MIXERS, ChoiceDim, MixerKind


class SepConv(nn.Module):
    """MobileNetV2's inverted separable conv as a token mixer: pointwise expansion to `expansion` x dim, the model's
    activation, a depthwise kernel_size x kernel_size conv ('same' padding), pointwise projection back; no biases,
    as in ConvFormer. Pointwise convs are linear layers on channels-last tokens."""

    def __init__(self, dim: int, expansion: float, kernel_size: int, act_layer: type[nn.Module]):
        super().__init__()
        self.dim = dim
        self.expansion = expansion
        self.kernel_size = kernel_size
        self.act_layer = act_layer
        hidden = int(expansion * dim)
        self.pwconv1 = nn.Linear(dim, hidden, bias=False)
        self.act = act_layer()
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden, bias=False)
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.pwconv1(x))
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.pwconv2(x)


def _validate(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    check_odd(f"{where}.kernel_size", settings["kernel_size"], 1, 31)
    expansion = settings["expansion"]
    check_float(f"{where}.expansion", expansion, 0.0, 16.0, open_low=True)
    if int(expansion * width) < 1:
        raise fail(f"{where}.expansion", expansion, f"expansion x width ({width}) must be at least 1")


MIXERS.register("sepconv", MixerKind(
    settings={"kernel_size": 7, "expansion": 2.0}, validate=_validate,
    build=lambda settings, width, grid, act_layer: SepConv(width, settings["expansion"], settings["kernel_size"],
                                                           act_layer),
    dimensions=(ChoiceDim("sepconv_kernel", 7, number=int, odd=True, setting="kernel_size"),
                ChoiceDim("sepconv_expansion", 2.0, setting="expansion",
                          fits=lambda expansion, width, grid: int(expansion * width) >= 1))))
