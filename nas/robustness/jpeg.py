"""JPEG compression in torch on batches, pixel for pixel as Pillow's default encoder and decoder (libjpeg) do it.

Baseline JPEG (ITU T.81 Annex K tables, IJG quality scaling). RGB goes to YCbCr with chroma subsampled 4:2:0,
Pillow's default: the encoder averages each 2x2 block of Cb and Cr, the decoder interpolates them back with libjpeg's
"fancy" triangle filter. Grey images are one luma plane. The lossless entropy coding stage is left out, since it
does not change pixels.

Every step uses libjpeg's integer arithmetic (fixed-point colour conversion, the "islow" LL&M DCT and inverse DCT
with 13-bit constants, rounding biases), because JPEG is unusually sensitive to it: a coefficient that lies within
a rounding error of half a quantisation step goes one way or the other, and moves a whole 8x8 block by a visible
pattern. Images that were JPEG-coded before on the same grid (such as the JPEG copy of CIFAR-10) have many exactly
half-way coefficients at a quality whose steps are twice the old ones. Integer tensors are used throughout,
without integer matrix products, which CUDA lacks.
"""

from __future__ import annotations

import torch

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

# Colour conversion in 16-bit fixed point (JFIF coefficients times 2^16, rounded), as libjpeg's tables hold them.
_COLOUR_BITS = 16
_RGB_TO_YCBCR = [[19595, 38470, 7471], [-11059, -21709, 32768], [32768, -27439, -5329]]
_CR_TO_R, _CB_TO_G, _CR_TO_G, _CB_TO_B = 91881, -22554, -46802, 116130

# The DCT's constants in 13-bit fixed point: round(c * 2^13) for the LL&M factorisation's sqrt(2)-scaled cosine
# sums; the first pass keeps PASS1_BITS extra bits of precision for the second.
_CONST_BITS, _PASS1_BITS = 13, 2
_F0_298, _F0_390, _F0_541, _F0_765, _F0_899, _F1_175 = 2446, 3196, 4433, 6270, 7373, 9633
_F1_501, _F1_847, _F1_961, _F2_053, _F2_562, _F3_072 = 12299, 15137, 16069, 16819, 20995, 25172


def quantisation_tables(quality: int, channels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(channels, 8, 8) integer quantisation steps for an IJG quality in 1..100: luma for Y (or grey), chroma for
    Cb and Cr; steps stay within 1..255, as baseline JPEG requires."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, not {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    base = torch.tensor([_LUMA_TABLE] + [_CHROMA_TABLE] * (channels - 1), dtype=torch.int32, device=device)
    return torch.div(base * scale + 50, 100, rounding_mode="floor").clamp(1, 255)


def _descale(value: torch.Tensor, bits: int) -> torch.Tensor:
    """Divide by 2^bits, rounding halves up (libjpeg's DESCALE)."""
    return (value + (1 << (bits - 1))) >> bits


def _even_rotation(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The LL&M rotation shared by the even parts of the DCT and its inverse (outputs scaled by 2^13)."""
    common = (a + b) * _F0_541
    return common + a * _F0_765, common - b * _F1_847


def _odd_rotation(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The LL&M odd part shared by the DCT and its inverse (outputs scaled by 2^13)."""
    shared = (a + b + c + d) * _F1_175
    ad, bc = (a + d) * -_F0_899, (b + c) * -_F2_562
    ac, bd = (a + c) * -_F1_961 + shared, (b + d) * -_F0_390 + shared
    return a * _F0_298 + ad + ac, b * _F2_053 + bc + bd, c * _F3_072 + bc + ac, d * _F1_501 + ad + bd


def _forward_dct_1d(v: torch.Tensor, second_pass: bool) -> torch.Tensor:
    """One pass of the 8-point forward DCT along the last axis; after both passes coefficients are 8x too large."""
    d = v.unbind(-1)
    even = [d[0] + d[7], d[1] + d[6], d[2] + d[5], d[3] + d[4]]
    odd = [d[3] - d[4], d[2] - d[5], d[1] - d[6], d[0] - d[7]]
    sum_03, diff_03 = even[0] + even[3], even[0] - even[3]
    sum_12, diff_12 = even[1] + even[2], even[1] - even[2]
    if second_pass:
        out_0, out_4 = _descale(sum_03 + sum_12, _PASS1_BITS), _descale(sum_03 - sum_12, _PASS1_BITS)
    else:
        out_0, out_4 = (sum_03 + sum_12) << _PASS1_BITS, (sum_03 - sum_12) << _PASS1_BITS
    shift = _CONST_BITS + _PASS1_BITS if second_pass else _CONST_BITS - _PASS1_BITS
    out_2, out_6 = (_descale(part, shift) for part in _even_rotation(diff_03, diff_12))
    out_7, out_5, out_3, out_1 = (_descale(part, shift) for part in _odd_rotation(*odd))
    return torch.stack([out_0, out_1, out_2, out_3, out_4, out_5, out_6, out_7], dim=-1)


def _inverse_dct_1d(v: torch.Tensor, second_pass: bool) -> torch.Tensor:
    """One pass of the 8-point inverse DCT along the last axis; the second pass returns centred 8-bit samples."""
    c = v.unbind(-1)
    even_3, even_2 = _even_rotation(c[2], c[6])
    even_0, even_1 = (c[0] + c[4]) << _CONST_BITS, (c[0] - c[4]) << _CONST_BITS
    odd_7, odd_5, odd_3, odd_1 = _odd_rotation(c[7], c[5], c[3], c[1])
    pairs = [(even_0 + even_3, odd_1), (even_1 + even_2, odd_3), (even_1 - even_2, odd_5), (even_0 - even_3, odd_7)]
    shift = _CONST_BITS + _PASS1_BITS + 3 if second_pass else _CONST_BITS - _PASS1_BITS
    outs = [_descale(e + o, shift) for e, o in pairs] + [_descale(e - o, shift) for e, o in reversed(pairs)]
    return torch.stack(outs, dim=-1)


def _edge_padded(planes: torch.Tensor, row_multiple: int, column_multiple: int) -> torch.Tensor:
    """Pad height and width up to multiples by repeating the edge, as encoders fill partial blocks (by indexing,
    which works for integer tensors on every device)."""
    height, width = planes.shape[2:]
    rows = torch.arange(height + -height % row_multiple, device=planes.device).clamp(max=height - 1)
    columns = torch.arange(width + -width % column_multiple, device=planes.device).clamp(max=width - 1)
    return planes[:, :, rows][:, :, :, columns]


def _code_planes(planes: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Encode and decode (N, C, H, W) 8-bit integer planes with (C, 8, 8) quantisation steps."""
    n, c, height, width = planes.shape
    padded = _edge_padded(planes, BLOCK, BLOCK) - 128
    hb, wb = padded.shape[2] // BLOCK, padded.shape[3] // BLOCK
    blocks = padded.reshape(n, c, hb, BLOCK, wb, BLOCK).transpose(3, 4)  # (..., row, column) per block
    coefficients = _forward_dct_1d(_forward_dct_1d(blocks, False).transpose(-1, -2), True).transpose(-1, -2)
    divisors = (8 * steps).reshape(1, c, 1, 1, BLOCK, BLOCK)
    # Round to the nearest multiple, halves away from zero, as libjpeg's quantiser does.
    levels = torch.sign(coefficients) * torch.div(coefficients.abs() + divisors // 2, divisors, rounding_mode="floor")
    dequantised = levels * steps.reshape(1, c, 1, 1, BLOCK, BLOCK)
    # The inverse DCT runs down the columns first, then along the rows.
    samples = _inverse_dct_1d(_inverse_dct_1d(dequantised.transpose(-1, -2), False).transpose(-1, -2), True)
    samples = (samples + 128).clamp(0, 255)
    return samples.transpose(3, 4).reshape(n, c, hb * BLOCK, wb * BLOCK)[:, :, :height, :width]


def _downsample_chroma(planes: torch.Tensor) -> torch.Tensor:
    """Average 2x2 blocks of 8-bit planes, rounding halves up and down in turn along a row (libjpeg's alternating
    bias of 1 and 2 quarters). Before that, libjpeg repeats the last column up to whole 16-pixel units but the
    last row only up to an even count; the rows that complete the last block repeat the last averaged row."""
    padded = _edge_padded(planes, 2, 2 * BLOCK)
    sums = padded[:, :, 0::2, 0::2] + padded[:, :, 0::2, 1::2] + padded[:, :, 1::2, 0::2] + padded[:, :, 1::2, 1::2]
    bias = 1 + torch.arange(sums.shape[3], dtype=sums.dtype, device=planes.device) % 2
    return (sums + bias) >> 2


def _neighbours(planes: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's previous and next neighbour along `dim`, repeating the edge."""
    size = planes.shape[dim]
    index = torch.arange(size, device=planes.device)
    return planes.index_select(dim, (index - 1).clamp(min=0)), planes.index_select(dim, (index + 1).clamp(max=size - 1))


def _interleave(first: torch.Tensor, second: torch.Tensor, dim: int) -> torch.Tensor:
    """Alternate slices of two equal tensors along `dim`: first[0], second[0], first[1], ..."""
    stacked = torch.stack([first, second], dim=dim + 1)
    return stacked.flatten(dim, dim + 1)


def _upsample_chroma(planes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """libjpeg's "fancy" 2x upsampling of the decoded (N, C, ceil(H/2), ceil(W/2)) planes: every output sample
    weighs its nearest input 3/4 and the next nearest 1/4 along each axis (a bilinear filter with repeated
    edges), in integers with a rounding bias of 8/16 for even and 7/16 for odd columns."""
    above, below = _neighbours(planes, 2)
    column_sums = _interleave(3 * planes + above, 3 * planes + below, dim=2)
    left, right = _neighbours(column_sums, 3)
    upsampled = _interleave((3 * column_sums + left + 8) >> 4, (3 * column_sums + right + 7) >> 4, dim=3)
    return upsampled[:, :, :height, :width]


def _mix(matrix: list[list[int]], planes: torch.Tensor, offsets: list[int]) -> torch.Tensor:
    """Fixed-point colour matrix on (N, 3, H, W) integers, with per-output offsets, shifted back to 8 bits."""
    outputs = [
        sum(weight * planes[:, j] for j, weight in enumerate(row)) + offset for row, offset in zip(matrix, offsets)
    ]
    return torch.stack(outputs, dim=1) >> _COLOUR_BITS


def _ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """libjpeg's decoder conversion: the chroma terms of R and B are rounded before they are added to Y."""
    half = 1 << (_COLOUR_BITS - 1)
    y, cb, cr = ycbcr[:, 0], ycbcr[:, 1] - 128, ycbcr[:, 2] - 128
    red = y + ((_CR_TO_R * cr + half) >> _COLOUR_BITS)
    green = y + ((_CB_TO_G * cb + _CR_TO_G * cr + half) >> _COLOUR_BITS)
    blue = y + ((_CB_TO_B * cb + half) >> _COLOUR_BITS)
    return torch.stack([red, green, blue], dim=1).clamp(0, 255)


def jpeg_compress(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip a float batch (N, C, H, W) in [0,1] through JPEG at `quality`; C is 1 (grey) or 3 (RGB).
    The input is rounded to 8-bit levels first, as an encoder receives it; the output lies on 8-bit levels."""
    c, height, width = x.shape[1:]
    if c not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, not {c}")
    steps = quantisation_tables(quality, c, x.device)
    # libjpeg sized its fixed-point arithmetic for 32-bit integers; int32 halves the memory traffic of int64.
    levels = torch.round(x * 255).to(torch.int32)
    if c == 1:
        return _code_planes(levels, steps).to(x.dtype) / 255
    half = 1 << (_COLOUR_BITS - 1)
    # Y rounds halves up; Cb and Cr round them down (libjpeg keeps their maximum at 255), around an offset of 128.
    ycbcr = _mix(_RGB_TO_YCBCR, levels, [half, (128 << _COLOUR_BITS) + half - 1, (128 << _COLOUR_BITS) + half - 1])
    luma = _code_planes(ycbcr[:, :1], steps[:1])
    chroma = _code_planes(_downsample_chroma(ycbcr[:, 1:]), steps[1:])
    chroma = _upsample_chroma(chroma[:, :, : (height + 1) // 2, : (width + 1) // 2], height, width)
    return _ycbcr_to_rgb(torch.cat([luma, chroma], dim=1)).to(x.dtype) / 255
