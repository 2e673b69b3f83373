"""Additive and sampling noise on float image batches in [0,1]; every function is seeded by a torch.Generator."""

from __future__ import annotations

import torch

from .frequency import Band, band_limited_noise


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x + N(0, sigma^2) per pixel and channel, clamped to [0,1]."""
    if sigma == 0:
        return x
    return (x + sigma * torch.randn(x.shape, generator=generator, device=x.device)).clamp(0.0, 1.0)


def frequency_noise(
    x: torch.Tensor, band: Band, std: float, cutoff: float, generator: torch.Generator
) -> torch.Tensor:
    """x + noise limited to the low or high band (see frequency.band_limited_noise), clamped to [0,1]."""
    if std == 0:
        return x
    noise = band_limited_noise(tuple(x.shape), band, std, cutoff=cutoff, generator=generator, device=x.device)
    return (x + noise).clamp(0.0, 1.0)


def shot_noise(x: torch.Tensor, photons: float, generator: torch.Generator) -> torch.Tensor:
    """Poisson photon noise as in CIFAR-10-C: Poisson(x * photons) / photons; fewer photons is noisier."""
    return (torch.poisson(x * photons, generator=generator) / photons).clamp(0.0, 1.0)


def impulse_noise(x: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Salt-and-pepper: each value independently becomes 0 or 1 (even odds) with probability `amount`."""
    if amount == 0:
        return x
    hit = torch.rand(x.shape, generator=generator, device=x.device) < amount
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)
