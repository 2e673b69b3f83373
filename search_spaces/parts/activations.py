"""Activations: a registered activation is a class called as `cls()`."""
from torch import nn

from vitnas.search_spaces.registry import ACTS

ACTS.register("gelu", nn.GELU)
ACTS.register("relu", nn.ReLU)
ACTS.register("silu", nn.SiLU)
