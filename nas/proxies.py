"""Zero-cost proxies: scores of an untrained model that are meant to rank architectures by their trained accuracy.

- NASWOT (Mellor et al. 2021): each image of a batch gets a binary code, which side of zero every unit's input to
  an activation function falls on; K[i, j] counts the units on which images i and j agree, and the score is
  log |det K|. Networks whose untrained activations tell the images apart score high.
- synflow (Tanaka et al. 2020, as a NAS proxy by Abdelfattah et al. 2021): with every parameter replaced by its
  absolute value, every activation function by the identity, and an all-ones input, in float64, R = sum of the
  outputs; the score is the log of sum |theta * dR/dtheta| over all parameters. It needs no data and measures how
  much signal flows end to end. Tanaka's R = 1' prod|W| 1 is the linearised network's; a ReLU is the identity on
  its all-positive inputs, but the space's squared ReLU squares the signal twice a block, which overflows float64
  within four blocks (every such model scored -inf before the activations were linearised).
- MeCo (Jiang et al. 2023): for one image, the Pearson correlation matrix between the channels of each conv or
  linear layer's output (across its spatial positions or tokens); the score is the sum over layers of each matrix's
  smallest eigenvalue. As in the paper's faster variant, a layer wider than MECO_CHANNELS is scored on that many of
  its channels, chosen by the seed.

All three run on a freshly initialised model in eval mode (no dropout, batch norm at its initial statistics), so a
score depends on the architecture, the seed and the data batch only. A log of zero or of a singular matrix is -inf,
which a trial's metrics store as null.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from vitnas.nas.data import Dataset
from vitnas.nas.inference import as_input, eval_mode
from vitnas.nas.trial import normalized_model
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.registry import ACTS

PROXIES = ("naswot", "synflow", "meco")
PROXY_BATCH = 32  # NASWOT's batch (the paper used 128 on CIFAR; 32 keeps small models well under a second)
MECO_CHANNELS = 128


def _hooked(model: nn.Module, types: tuple[type, ...], hook: Callable) -> list:
    return [module.register_forward_hook(hook) for module in model.modules() if isinstance(module, types)]


@torch.no_grad()
def naswot(model: nn.Module, images: torch.Tensor) -> float:
    """log |det K| of the activation-pattern kernel over `images` (a float [0, 1] batch on the model's device)."""
    kernel = torch.zeros(len(images), len(images), dtype=torch.float64, device=images.device)

    def add_codes(module, inputs, output):
        codes = (inputs[0] > 0).flatten(1).to(torch.float64)
        nonlocal kernel
        kernel += codes @ codes.T + (1 - codes) @ (1 - codes).T

    handles = _hooked(model, tuple(cls for _, cls in ACTS.items()), add_codes)
    try:
        with eval_mode(model):
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return torch.linalg.slogdet(kernel).logabsdet.item()


def synflow(model: nn.Module, images: torch.Tensor) -> float:
    """log of the synaptic flow of the linearised model (absolute-valued weights, identity activations) on an all-ones
    image (float64)."""
    flow_model = copy.deepcopy(model).double()
    activations = tuple(cls for _, cls in ACTS.items())
    for module in list(flow_model.modules()):
        for child_name, child in module.named_children():
            if isinstance(child, activations):
                setattr(module, child_name, nn.Identity())
    with torch.no_grad():
        for parameter in flow_model.parameters():
            parameter.abs_()
    with eval_mode(flow_model):
        flow_model(torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)).sum().backward()
    # |theta * dR/dtheta| per parameter: norm layers centre activations, so single terms can be negative
    total = sum((p * p.grad).abs().sum().item() for p in flow_model.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else -math.inf


@torch.no_grad()
def meco(model: nn.Module, images: torch.Tensor, seed: int = 0) -> float:
    """Sum over conv and linear layers of the smallest eigenvalue of their channel correlation on the first image."""
    generator = torch.Generator().manual_seed(seed)
    smallest: list[float] = []

    def add_layer(module, inputs, output):
        first = output[0]
        # conv outputs are (C, H, W); linear outputs are (..., C), channels last
        channels = first.flatten(1) if isinstance(module, nn.Conv2d) else first.reshape(-1, first.shape[-1]).T
        if min(channels.shape) < 2:  # one position (a pooled head) or one channel: no correlation to measure
            return
        if len(channels) > MECO_CHANNELS:
            channels = channels[torch.randperm(len(channels), generator=generator)[:MECO_CHANNELS].to(first.device)]
        correlation = torch.nan_to_num(torch.corrcoef(channels.double()), nan=0.0, posinf=0.0, neginf=0.0)
        smallest.append(torch.linalg.eigvalsh(correlation)[0].item())

    handles = _hooked(model, (nn.Conv2d, nn.Linear), add_layer)
    try:
        with eval_mode(model):
            model(images[:1])
    finally:
        for handle in handles:
            handle.remove()
    return float(sum(smallest))


def proxy_batch(data: Dataset, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """PROXY_BATCH training images chosen by `seed`, as floats in [0, 1] on `device`."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data.y_train), generator=generator)[:PROXY_BATCH]
    return as_input(data.x_train[index], torch.device(device))


def proxy_scores(arch: ArchConfig, data: Dataset, *, seed: int, device: torch.device | str = "cpu",
                 names: tuple[str, ...] = PROXIES) -> dict[str, float]:
    """The named proxies of `arch` initialised with `seed` (a trial's initial weights for that seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = normalized_model(arch, data.mean, data.std).to(device)
    images = proxy_batch(data, seed, device)
    scorers = {"naswot": lambda: naswot(model, images), "synflow": lambda: synflow(model, images),
               "meco": lambda: meco(model, images, seed)}
    return {name: scorers[name]() for name in names}
