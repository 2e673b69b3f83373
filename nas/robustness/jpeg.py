"""JPEG compression in torch on batches: YCbCr (for RGB), 8x8 block DCT, quantisation, and back.

Follows baseline JPEG (ITU T.81 Annex K tables, IJG quality scaling) without chroma subsampling (4:4:4) and without
the lossless entropy coding stage, which does not change pixels. Decoded pixels are rounded to 8-bit levels as a
real decoder's output would be.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BLOCK = 8

_LUMA_TABLE = [
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
]
_CHROMA_TABLE = [
    [17, 18, 24, 47, 99, 99, 99, 99],
    [18, 21, 26, 66, 99, 99, 99, 99],
    [24, 26, 56, 99, 99, 99, 99, 99],
    [47, 66, 99, 99, 99, 99, 99, 99],
] + [[99] * 8 for _ in range(4)]

# JFIF RGB -> YCbCr (offset 128 on the chroma channels is added separately).
_RGB_TO_YCBCR = [
    [0.299, 0.587, 0.114],
    [-0.168736, -0.331264, 0.5],
    [0.5, -0.418688, -0.081312],
]


def quantisation_tables(quality: int, channels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(channels, 8, 8) quantisation steps for an IJG quality in 1..100: luma for Y (or grey), chroma for Cb and Cr."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, not {quality}")
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    base = torch.tensor([_LUMA_TABLE] + [_CHROMA_TABLE] * (channels - 1), dtype=torch.float32, device=device)
    return torch.floor((base * scale + 50) / 100).clamp(min=1)


def dct_matrix(device: torch.device | str = "cpu") -> torch.Tensor:
    """Orthonormal 8-point DCT-II matrix D: coefficients of a block B are D @ B @ D.T."""
    k = torch.arange(BLOCK, dtype=torch.float32, device=device)[:, None]
    n = torch.arange(BLOCK, dtype=torch.float32, device=device)[None, :]
    matrix = torch.cos(math.pi * (2 * n + 1) * k / (2 * BLOCK)) * math.sqrt(2 / BLOCK)
    matrix[0] /= math.sqrt(2)
    return matrix


def _mix_channels(matrix: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Apply a (C, C) colour matrix to every pixel: one batched matmul (a 1x1 convolution is slower on CPU)."""
    return (matrix @ images.flatten(2)).view_as(images)


def jpeg_compress(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip a float batch (N, C, H, W) in [0,1] through JPEG at `quality`; C is 1 (grey) or 3 (RGB)."""
    n, c, h, w = x.shape
    if c not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, not {c}")
    pixels = x * 255.0
    to_ycbcr = torch.tensor(_RGB_TO_YCBCR, device=x.device)
    if c == 3:
        pixels = _mix_channels(to_ycbcr, pixels)  # chroma stays centred on 0, like Y - 128 below
        pixels[:, 0] -= 128.0
    else:
        pixels = pixels - 128.0
    # Pad to whole blocks by repeating the edge, as encoders do, and crop after decoding.
    pad_h, pad_w = -h % BLOCK, -w % BLOCK
    pixels = F.pad(pixels, (0, pad_w, 0, pad_h), mode="replicate")
    hb, wb = pixels.shape[2] // BLOCK, pixels.shape[3] // BLOCK
    blocks = pixels.reshape(n, c, hb, BLOCK, wb, BLOCK).transpose(3, 4).reshape(n, c, hb, wb, BLOCK * BLOCK)
    # The 2-D DCT of every flattened block, D @ B @ D.T, is one GEMM with kron(D, D): faster than many 8x8 products.
    dct = dct_matrix(x.device)
    dct_2d = torch.kron(dct, dct)
    steps = quantisation_tables(quality, c, x.device).reshape(1, c, 1, 1, BLOCK * BLOCK)
    coefficients = torch.round(blocks @ dct_2d.T / steps) * steps
    blocks = (coefficients @ dct_2d).reshape(n, c, hb, wb, BLOCK, BLOCK)
    pixels = blocks.transpose(3, 4).reshape(n, c, hb * BLOCK, wb * BLOCK)[:, :, :h, :w]
    if c == 3:
        pixels[:, 0] += 128.0
        pixels = _mix_channels(torch.linalg.inv(to_ycbcr), pixels)
    else:
        pixels = pixels + 128.0
    return torch.round(pixels).clamp(0.0, 255.0) / 255.0
