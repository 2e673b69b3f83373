"""Fourier sensitivity heat map (Yin et al. 2019): error rate under each single Fourier basis perturbation.

For every distinct frequency (u, v) of the rfft2 half-plane, each image gets x + r * eps * U(u,v) in every channel, where
U(u,v) is the real image of that one Fourier bin scaled to unit L2 norm and r = +-1 is drawn per image and channel.
The rest of the plane follows by symmetry (U(-u,-v) = U(u,v)). Cost: about H * W / 2 * n_images forward passes,
batched: 32x32 with the default 32 images is 16,448 images, about 16 clean passes over 1,000 images.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from vitnas.nas.inference import as_input, eval_mode, predict


def fourier_basis(height: int, width: int, bins: torch.Tensor) -> torch.Tensor:
    """(len(bins), height, width) unit-L2 real images, one per rfft2 bin (row-major index into H x (W//2+1))."""
    half_width = width // 2 + 1
    spectra = torch.zeros((len(bins), height * half_width), dtype=torch.complex64, device=bins.device)
    spectra[torch.arange(len(bins), device=bins.device), bins] = 1
    basis = torch.fft.irfft2(spectra.reshape(-1, height, half_width), s=(height, width))
    return basis / basis.flatten(1).norm(dim=1)[:, None, None]


def _distinct_bins(height: int, width: int) -> np.ndarray:
    """(H, W//2+1) mask of the rfft2 bins with distinct basis images: in the columns that are their own conjugate
    (zero frequency and, for even W, Nyquist) rows u and -u give the same image, so only u <= H/2 is kept."""
    rows = np.arange(height)[:, None]
    cols = np.arange(width // 2 + 1)[None, :]
    self_conjugate_column = (cols == 0) | ((width % 2 == 0) & (cols == width // 2))
    return ~self_conjugate_column | (rows <= height // 2)


def fourier_heatmap(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float | None = None,
    n_images: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    batch_size: int = 256,
) -> np.ndarray:
    """(H, W) error rates in [0,1], fft-shifted: the centre [H//2, W//2] is the zero frequency, rows are the
    vertical frequency and columns the horizontal one. `eps` is each channel's perturbation L2 norm; None means
    4 * sqrt(H*W) / 32 (Yin et al.'s norm 4 on 32x32, an RMS of 0.125 per pixel at any size). Images are a seeded
    random subset of `n_images` of `x` (uint8 or float [0,1]); the model is moved to `device` and kept in eval mode.
    """
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n_images]
    images = as_input(x[order], device)
    labels = y[order].to(device)
    n, channels, height, width = images.shape
    eps = 4.0 * math.sqrt(height * width) / 32 if eps is None else eps
    model.to(device)
    measured = _distinct_bins(height, width)
    bins = torch.from_numpy(np.flatnonzero(measured)).to(device)
    errors = torch.empty(len(bins))
    frequencies_per_batch = max(1, batch_size // n)
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(bins), frequencies_per_batch):
            chunk = fourier_basis(height, width, bins[start : start + frequencies_per_batch]) * eps
            k = len(chunk)
            signs = torch.randint(0, 2, (k, n, channels, 1, 1), generator=generator, device=device) * 2 - 1
            perturbed = (images[None] + signs * chunk[:, None, None]).clamp(0.0, 1.0)
            wrong = predict(model, perturbed.reshape(k * n, channels, height, width)) != labels.repeat(k)
            errors[start : start + k] = wrong.reshape(k, n).float().mean(dim=1).cpu()
    half = np.full(measured.shape, np.nan)
    half[measured] = errors.numpy()
    # Every other frequency (u, v) is the conjugate (-u, -v) of a measured one and has the same basis image.
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    is_measured = np.zeros((height, width), dtype=bool)
    is_measured[:, : measured.shape[1]] = measured
    full = half[np.where(is_measured, rows, -rows % height), np.where(is_measured, cols, -cols % width)]
    return np.fft.fftshift(full)


def save_heatmap_png(heatmap: np.ndarray, path: str | Path, *, title: str = "Fourier sensitivity") -> Path:
    """Write the heat map as a PNG with frequency axes (cycles/pixel) and an error-rate colour bar."""
    height, width = heatmap.shape
    fy = np.fft.fftshift(np.fft.fftfreq(height))
    fx = np.fft.fftshift(np.fft.fftfreq(width))
    dy, dx = 1 / height, 1 / width
    figure = Figure(figsize=(4.8, 4.0))  # no pyplot: no global backend state, safe in threads and headless
    axes = figure.add_subplot()
    shown = axes.imshow(
        heatmap, cmap="viridis", vmin=0.0, vmax=1.0, origin="lower",
        extent=(fx[0] - dx / 2, fx[-1] + dx / 2, fy[0] - dy / 2, fy[-1] + dy / 2),
    )
    axes.set_xlabel("horizontal frequency (cycles/pixel)")
    axes.set_ylabel("vertical frequency (cycles/pixel)")
    axes.set_title(title)
    figure.colorbar(shown, ax=axes, label="error rate")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100, bbox_inches="tight")  # the format named: `foo` stays `foo`, not foo.png
    return path
