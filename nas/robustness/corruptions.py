"""Common corruptions of CIFAR-10-C (Hendrycks & Dietterich 2019), in torch on float batches in [0,1].

`corrupt(x, name, severity, generator)` applies one corruption at severity 1..5 (0 = identity), with CIFAR-10-C's
32x32 parameters:

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

How each follows the CIFAR-10-C generator (tests/test_corruptions_reference.py checks the deterministic ones
against Pillow and scipy on real CIFAR-10 images; all agree to well under half a grey level):
- gaussian_blur: scikit-image's Gaussian (scipy.ndimage): radius int(4 sigma + 0.5), edge pixel repeated at borders.
- contrast, brightness: the same formulas (brightness keeps HSV hue and saturation by scaling RGB).
- pixelate: Pillow BOX resize down to int(32 * factor) and back up, on 8-bit levels (see `pixelate`): identical.
- jpeg: Pillow's JPEG at that quality with its default 4:2:0 chroma subsampling (see jpeg.py): identical.
- shot_noise, impulse_noise: the same random models (Poisson photon counts; salt and pepper per value).
- fog: CIFAR-10-C adds a diamond-square plasma fractal whose roughness also varies with severity (decay 3 to
  1.75); here the field is Gaussian noise low-passed to 0.25 Nyquist and scaled to [0,1] per image, so its texture
  is the same at every severity. The blend is CIFAR-10-C's: x + strength * field, rescaled so that the image's
  brightest value keeps its level, then clipped.

CIFAR-10-C stores results as uint8 by truncation (np.uint8), which darkens the float-valued corruptions (blur,
contrast, brightness, noise, fog) by half a level on average; these functions return the untruncated values.
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
    """(size, size) matrix applying a 1-D Gaussian along one axis, as scipy.ndimage.gaussian_filter does for
    scikit-image (CIFAR-10-C): radius int(4 sigma + 0.5), borders extended by repeating the edge pixel."""
    radius = int(4 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, device=device)
    weights = torch.exp(-(offsets.double() ** 2) / (2 * sigma**2))
    weights = (weights / weights.sum()).float()
    # Clamping the source index repeats the edge pixel however far the kernel reaches past the border.
    sources = (torch.arange(size, device=device)[:, None] + offsets[None, :]).clamp(0, size - 1)
    matrix = torch.zeros((size, size), device=device)
    return matrix.scatter_add_(1, sources, weights.expand(size, -1).contiguous())


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with edge-repeating borders, done as two small matrix products (faster than
    depthwise convolution on CPU)."""
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


def _box_resize_matrix(source: int, target: int, device: torch.device) -> torch.Tensor:
    """(target, source) matrix resizing one axis as Pillow's BOX filter does: each output pixel averages the input
    pixels whose centres fall in its footprint (a half-open interval one output pixel wide, measured in input
    pixels, and never narrower than one input pixel). Downscaling by a non-whole ratio thus averages one or two
    whole pixels, not fractions of them; upscaling picks one pixel by its centre, i.e. 'nearest-exact'."""
    scale = source / target
    footprint = max(scale, 1.0)
    # float64 reproduces Pillow's double arithmetic, so pixels on a footprint's edge fall on the same side.
    centres = (torch.arange(target, dtype=torch.float64, device=device) + 0.5) * scale
    offsets = (torch.arange(source, dtype=torch.float64, device=device) + 0.5)[None, :] - centres[:, None]
    inside = (offsets > -footprint / 2) & (offsets <= footprint / 2)
    weights = inside.double()
    return (weights / weights.sum(dim=1, keepdim=True)).float()


def pixelate(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale each side to int(side * factor) and back up, both with Pillow's BOX filter, as CIFAR-10-C does.

    Works on 8-bit levels as Pillow does: the input is rounded to whole levels, and each pass (columns, then rows)
    rounds its result to whole levels, halves up; whole levels keep the halves exact in float32."""
    height, width = x.shape[2:]
    small_height, small_width = max(1, int(height * factor)), max(1, int(width * factor))
    if (small_height, small_width) == (height, width):
        return x
    down_rows = _box_resize_matrix(height, small_height, x.device)
    down_columns = _box_resize_matrix(width, small_width, x.device)
    narrow = torch.floor(torch.round(x * 255) @ down_columns.T + 0.5)
    small = torch.floor(down_rows @ narrow + 0.5)
    up_rows = _box_resize_matrix(small_height, height, x.device)
    up_columns = _box_resize_matrix(small_width, width, x.device)
    return up_rows @ small @ up_columns.T / 255


def fog(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Blend a smooth grey field (low-passed Gaussian noise scaled to [0,1] per image, not CIFAR-10-C's plasma
    fractal) into the image, then rescale so the brightest value keeps its level, as CIFAR-10-C does."""
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
