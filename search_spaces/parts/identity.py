"""The identity mixer: no token mixing at all (the MetaFormer paper's lower bound)."""
from torch import nn

from vitnas.search_spaces.registry import MIXERS, MixerKind

MIXERS.register("identity", MixerKind(settings={}, build=lambda settings, width, grid, act_layer: nn.Identity()))
