"""Folders of MNIST-style idx files (MNIST, Fashion-MNIST, KMNIST): train-images-idx3-ubyte[.gz] and friends."""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from vitnas.nas.data.dataset import Splits, check_size
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
    """The array in an idx file, plain or gzipped: its header's size is checked before the data is read, and the data
    is read only up to that size, so a small .gz that expands to gigabytes is refused without expanding it."""
    try:
        with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] != _UBYTE or magic[3] != dims:
                raise UserError(f"{path}: wrong idx magic {magic.hex()} "
                                f"(expected 000008{dims:02x}: unsigned bytes, {dims} dims)")
            sizes = handle.read(4 * dims)
            if len(sizes) < 4 * dims:
                raise UserError(f"{path}: truncated idx header")
            shape = struct.unpack(f">{dims}I", sizes)
            count = math.prod(shape)
            check_size(count, str(path))
            data = handle.read(count)
            if len(data) < count:
                raise UserError(f"{path}: truncated: {len(data)} data bytes for shape {shape}")
            if handle.read(1):
                raise UserError(f"{path}: more data than its header declares (shape {shape})")
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


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
    n_classes = int(max(arrays[1].max(initial=0), arrays[3].max(initial=0))) + 1
    return Splits(*arrays, classes=[str(i) for i in range(n_classes)])
