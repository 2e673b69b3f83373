"""`.npz` archives with x_train, y_train, x_test, y_test (and optionally `classes`), read without pickle.

Image layout: (N, H, W) is grayscale; a 4-D array is NCHW when axis 1 has 1, 3 or 4 entries and axes 2, 3 are equal
(square images), otherwise NHWC when the last axis has 1, 3 or 4 entries; a 4th channel is dropped as alpha.
uint8 is taken as is, floats in [0, 1] are scaled to 0..255.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vitnas.nas.data.dataset import Splits
from vitnas.errors import UserError

_KEYS = ("x_train", "y_train", "x_test", "y_test")


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
    if np.issubdtype(x.dtype, np.floating) and x.size and 0.0 <= x.min() and x.max() <= 1.0:
        return np.ascontiguousarray(np.round(x * 255.0).astype(np.uint8))
    if np.issubdtype(x.dtype, np.integer) and (not x.size or (0 <= x.min() and x.max() <= 255)):
        return np.ascontiguousarray(x.astype(np.uint8))
    raise UserError(f"{where}: pixels must be uint8 0..255 or floats in [0, 1], found {x.dtype}")


def read_npz(path: Path) -> Splits:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in _KEYS if key not in archive.files]
            if missing:
                raise UserError(f"{path}: missing array(s) {', '.join(missing)} "
                                "(needs x_train, y_train, x_test, y_test)")
            arrays = {key: archive[key] for key in (*_KEYS, *(("classes",) if "classes" in archive.files else ()))}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"{path}: cannot read npz ({err})") from None
    splits = []
    for split in ("train", "test"):
        x = _images(arrays[f"x_{split}"], f"{path}:x_{split}")
        y = arrays[f"y_{split}"].reshape(-1)
        if not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
            raise UserError(f"{path}:y_{split}: needs {len(x)} integer labels, "
                            f"found {y.dtype} {arrays[f'y_{split}'].shape}")
        splits += [x, y.astype(np.int64)]
    n_classes = int(max(splits[1].max(initial=0), splits[3].max(initial=0))) + 1
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [str(i) for i in range(n_classes)]
    return Splits(*splits, classes=classes)
