"""Common corruptions in the style of CIFAR-10-C (Hendrycks & Dietterich 2019), in torch on float batches in [0,1].

`corrupt(x, name, severity, generator)` applies one corruption at severity 1..5 (0 = identity). The parameter per
severity, from CIFAR-10-C's 32x32 settings unless noted:

| name          | parameter                                   | severities 1..5                 |
|---------------|---------------------------------------------|---------------------------------|
| gaussian_blur | kernel sigma, pixels                        | 0.4, 0.6, 0.7, 0.8, 1.0         |
| contrast      | factor towards the image mean               | 0.75, 0.5, 0.4, 0.3, 0.15       |
| brightness    | added to HSV value                          | 0.05, 0.1, 0.15, 0.2, 0.3       |
| shot_noise    | photons per unit intensity                  | 500, 250, 100, 75, 50           |
| impulse_noise | salt-and-pepper fraction                    | 0.01, 0.02, 0.03, 0.05, 0.07    |
| pixelate      | downscale factor                            | 0.95, 0.9, 0.85, 0.75, 0.65     |
| jpeg          | IJG quality                                 | 80, 65, 58, 50, 40              |
| fog           | fog strength (low-frequency grey field)     | 0.2, 0.5, 0.75, 1.0, 1.5        |

Fog differs from CIFAR-10-C's plasma fractal: its field is low-pass Gaussian noise (radius <= 0.25 Nyquist) scaled
to [0,1] per image; the fractal's roughness parameter is not modelled. Blur truncates the kernel at 3 sigma and
reflects at the borders (scikit-image, used by CIFAR-10-C, truncates at 4 sigma and repeats the edge): a negligible
difference at these sigmas.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .frequency import band_limited_noise
from .jpeg import jpeg_compress
from .noise import impulse_noise, shot_noise

SEVERITY_PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg": (80, 65, 58, 50, 40),
    "fog": (0.2, 0.5, 0.75, 1.0, 1.5),
}
CORRUPTIONS = tuple(SEVERITY_PARAMETERS)
FOG_CUTOFF = 0.25


def _blur_matrix(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """(size, size) matrix applying a 1-D Gaussian of radius ceil(3 sigma) with reflected borders along one axis."""
    radius = min(math.ceil(3 * sigma), size - 1)  # reflection must stay inside the image
    offsets = torch.arange(-radius, radius + 1, device=device)
    weights = torch.exp(-(offsets.float() ** 2) / (2 * sigma**2))
    weights = weights / weights.sum()
    sources = torch.arange(size, device=device)[:, None] + offsets[None, :]
    sources = sources.abs()
    sources = torch.where(sources > size - 1, 2 * (size - 1) - sources, sources)
    matrix = torch.zeros((size, size), device=device)
    return matrix.scatter_add_(1, sources, weights.expand(size, -1).contiguous())


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders, done as two small matrix products (faster than depthwise
    convolution on CPU)."""
    if sigma == 0:
        return x
    height, width = x.shape[2:]
    return _blur_matrix(height, sigma, x.device) @ x @ _blur_matrix(width, sigma, x.device).T


def contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Pull every pixel towards its channel's spatial mean by `factor` (1 = unchanged), as CIFAR-10-C does."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return ((x - mean) * factor + mean).clamp(0.0, 1.0)


def brightness(x: torch.Tensor, shift: float) -> torch.Tensor:
    """Add `shift` to the HSV value (max over channels), keeping hue and saturation; black becomes grey `shift`."""
    value = x.max(dim=1, keepdim=True).values
    brighter = (value + shift).clamp(0.0, 1.0)
    scale = brighter / value.clamp(min=1e-12)
    return torch.where(value > 0, x * scale, brighter.expand_as(x)).clamp(0.0, 1.0)


def pixelate(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Box-downscale to `factor` of the side, then upscale with nearest neighbours (blocky)."""
    height, width = x.shape[2:]
    small = (max(1, int(height * factor)), max(1, int(width * factor)))
    if small == (height, width):
        return x
    return F.interpolate(F.adaptive_avg_pool2d(x, small), size=(height, width), mode="nearest")


def fog(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Blend a smooth grey field into the image, then rescale so the brightest pixel keeps its level."""
    if strength == 0:
        return x
    n, _, height, width = x.shape
    field = band_limited_noise((n, 1, height, width), "low", 1.0, cutoff=FOG_CUTOFF, generator=generator, device=x.device)
    low = field.amin(dim=(2, 3), keepdim=True)
    high = field.amax(dim=(2, 3), keepdim=True)
    field = (field - low) / (high - low).clamp(min=1e-12)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x + strength * field) * peak / (peak + strength)).clamp(0.0, 1.0)


def corrupt(x: torch.Tensor, name: str, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Apply corruption `name` at `severity` (1..5; 0 returns x unchanged)."""
    if name not in SEVERITY_PARAMETERS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if severity == 0:
        return x
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be in 0..5, not {severity}")
    parameter = SEVERITY_PARAMETERS[name][severity - 1]
    if name == "gaussian_blur":
        return gaussian_blur(x, parameter)
    if name == "contrast":
        return contrast(x, parameter)
    if name == "brightness":
        return brightness(x, parameter)
    if name == "shot_noise":
        return shot_noise(x, parameter, generator)
    if name == "impulse_noise":
        return impulse_noise(x, parameter, generator)
    if name == "pixelate":
        return pixelate(x, parameter)
    if name == "jpeg":
        return jpeg_compress(x, int(parameter))
    return fog(x, parameter, generator)
