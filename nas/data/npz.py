"""`.npz` archives with x_train, y_train, x_test, y_test (and optionally `classes`), read without pickle.

Image layout: (N, H, W) is grayscale; a 4-D array is NCHW when axis 1 has 1, 3 or 4 entries and axes 2, 3 are equal
(square images), otherwise NHWC when the last axis has 1, 3 or 4 entries; a 4th channel is dropped as alpha.
uint8 is taken as is, floats in [0, 1] are scaled to 0..255.
"""
from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from vitnas.nas.data.dataset import Splits, check_size
from vitnas.errors import UserError

_KEYS = ("x_train", "y_train", "x_test", "y_test")
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        channels_first = x.shape[1] in (1, 3, 4) and x.shape[2] == x.shape[3]
        if not channels_first and x.shape[3] in (1, 3, 4):
            x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3, 4):
        raise UserError(f"{where}: images must be (N, H, W), NHWC or NCHW with 1 or 3 channels, found shape {x.shape}")
    x = x[:, :3]
    if x.shape[2] != x.shape[3]:
        raise UserError(f"{where}: images are {x.shape[2]}x{x.shape[3]}, only square images are supported")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    in_range = not x.size or (0 <= x.min() and x.max() <= (1.0 if np.issubdtype(x.dtype, np.floating) else 255))
    if np.issubdtype(x.dtype, np.floating) and in_range:
        return np.ascontiguousarray(np.round(x * 255.0).astype(np.uint8))
    if np.issubdtype(x.dtype, np.integer) and in_range:
        return np.ascontiguousarray(x.astype(np.uint8))
    raise UserError(f"{where}: pixels must be uint8 0..255 or floats in [0, 1], found {x.dtype}")


def _check_declared_sizes(archive: zipfile.ZipFile, keys: list[str], path: Path) -> None:
    """Read each member's .npy header (not its data): a declared size over the memory limit, or larger than the
    member holds, is refused before numpy allocates it."""
    for key in keys:
        info = archive.getinfo(f"{key}.npy")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in _HEADER_READERS:
                raise UserError(f"{path}:{key}: .npy format version {version} is not supported: save with numpy.savez")
            shape, _, dtype = _HEADER_READERS[version](member)
            data_start = member.tell()
        nbytes = math.prod(shape) * dtype.itemsize
        check_size(nbytes, f"{path}:{key}")
        if info.file_size - data_start < nbytes:
            raise UserError(f"{path}:{key}: truncated: the header declares {nbytes} bytes of data, the member holds "
                            f"{info.file_size - data_start}")


def _class_names(names: np.ndarray | None, labels: list[np.ndarray], n_train: int, path: Path) -> list[str]:
    """The `classes` array as names, or "0".."C-1" for labels 0..C-1 when absent (C at most the training images)."""
    top = int(max(y.max(initial=0) for y in labels))
    if names is None:
        if top >= n_train:  # a label is an index into the classes, and every class needs training images
            raise UserError(f"{path}:y_train: labels must be class indices 0..{n_train - 1} (one class per "
                            f"training image at most), found {top}; or store the names in a `classes` array")
        return [str(i) for i in range(top + 1)]
    if names.ndim != 1 or len(names) <= top:
        raise UserError(f"{path}:classes: needs one name per class, a 1-D array of at least {top + 1}, "
                        f"found shape {names.shape}")
    return [str(name) for name in names]


def read_npz(path: Path) -> Splits:
    try:
        with zipfile.ZipFile(path) as archive:
            present = {name.removesuffix(".npy") for name in archive.namelist()}
            missing = [key for key in _KEYS if key not in present]
            if missing:
                raise UserError(f"{path}: missing array(s) {', '.join(missing)} "
                                "(needs x_train, y_train, x_test, y_test)")
            keys = [*_KEYS, *(["classes"] if "classes" in present else [])]
            _check_declared_sizes(archive, keys, path)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in keys}
    # Zip entries can also be encrypted (RuntimeError) or use a compression method Python lacks (NotImplementedError).
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error) as err:
        raise UserError(f"{path}: cannot read npz ({err})") from None
    splits = []
    for split in ("train", "test"):
        x = _images(arrays[f"x_{split}"], f"{path}:x_{split}")
        y = arrays[f"y_{split}"].reshape(-1)
        if not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
            raise UserError(f"{path}:y_{split}: needs {len(x)} integer labels, "
                            f"found {y.dtype} {arrays[f'y_{split}'].shape}")
        splits += [x, y.astype(np.int64)]
    classes = _class_names(arrays.get("classes"), [splits[1], splits[3]], len(splits[0]), path)
    return Splits(*splits, classes=classes)
