"""Fourier-space helpers: radial frequency of each rfft2 bin and noise band-limited to a low or high band.

Frequencies are measured as a fraction of Nyquist along each axis, so radius 1 is the Nyquist frequency of an axis
and the corners of the spectrum reach sqrt(2). The DC bin is excluded from both bands: band-limited noise is zero-mean
and never a plain brightness shift.
"""

from __future__ import annotations

from typing import Literal

import torch

Band = Literal["low", "high"]


def radial_frequency(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(height, width//2+1) radius of each rfft2 bin, as a fraction of Nyquist (0.5 cycles/pixel)."""
    fy = torch.fft.fftfreq(height, device=device) / 0.5
    fx = torch.fft.rfftfreq(width, device=device) / 0.5
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def band_mask(height: int, width: int, band: Band, cutoff: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """rfft2-shaped bool mask: low = 0 < radius <= cutoff, high = radius > cutoff."""
    radius = radial_frequency(height, width, device)
    if band == "low":
        mask = (radius > 0) & (radius <= cutoff)
    elif band == "high":
        mask = radius > cutoff
    else:
        raise ValueError(f"band must be 'low' or 'high', not {band!r}")
    if not mask.any():
        raise ValueError(f"the {band} band with cutoff {cutoff} holds no frequency of a {height}x{width} image")
    return mask


def band_limited_noise(
    shape: tuple[int, int, int, int],
    band: Band,
    std: float,
    *,
    cutoff: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Gaussian noise (N, C, H, W) keeping only one frequency band, rescaled so every image has exactly `std` RMS.

    Rescaling per image gives both bands the same energy (L2 norm std * sqrt(C*H*W)), so low- and high-frequency
    results can be compared fairly.
    """
    n, c, h, w = shape
    white = torch.randn(shape, generator=generator, device=device)
    spectrum = torch.fft.rfft2(white) * band_mask(h, w, band, cutoff, device)
    noise = torch.fft.irfft2(spectrum, s=(h, w))
    rms = torch.linalg.vector_norm(noise, dim=(1, 2, 3), keepdim=True) / (c * h * w) ** 0.5
    return noise * (std / rms)
