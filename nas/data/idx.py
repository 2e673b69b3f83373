"""Folders of MNIST-style idx files (MNIST, Fashion-MNIST, KMNIST): train-images-idx3-ubyte[.gz] and friends."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from vitnas.nas.data.dataset import Splits
from vitnas.errors import UserError

_UBYTE = 0x08


def _find(folder: Path, prefix: str, kind: str, dims: int) -> Path:
    """The file for e.g. ("train", "images", 3): the -/. separated name, plain or gzipped."""
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            candidate = folder / f"{prefix}-{kind}{sep}idx{dims}-ubyte{suffix}"
            if candidate.is_file():
                return candidate
    raise UserError(f"{folder / f'{prefix}-{kind}-idx{dims}-ubyte'}[.gz]: missing idx file")


def is_idx_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("train-images[-.]idx3-ubyte*"))


def read_idx_file(path: Path, dims: int) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _UBYTE or raw[3] != dims:
        raise UserError(f"{path}: wrong idx magic {raw[:4].hex()} "
                        f"(expected 000008{dims:02x}: unsigned bytes, {dims} dims)")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise UserError(f"{path}: truncated idx header")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    if len(raw) - header != int(np.prod(shape)):
        raise UserError(f"{path}: truncated or oversized: {len(raw) - header} data bytes for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_folder(folder: Path) -> Splits:
    arrays = []
    for prefix in ("train", "t10k"):
        images_file, labels_file = _find(folder, prefix, "images", 3), _find(folder, prefix, "labels", 1)
        images, labels = read_idx_file(images_file, 3), read_idx_file(labels_file, 1).astype(np.int64)
        if len(images) != len(labels):
            raise UserError(f"{labels_file}: {len(labels)} labels for {len(images)} images in {images_file.name}")
        if images.shape[1] != images.shape[2]:
            raise UserError(f"{images_file}: images are {images.shape[1]}x{images.shape[2]}, "
                            "only square images are supported")
        arrays += [images[:, None].copy(), labels]
    n_classes = int(max(arrays[1].max(), arrays[3].max(initial=0))) + 1
    return Splits(*arrays, classes=[str(i) for i in range(n_classes)])
