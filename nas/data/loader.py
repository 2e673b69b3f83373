"""`load_dataset`: turns a spec (a name or a path) into a Dataset, choosing the reader and using the decode cache."""
from __future__ import annotations

import os
from pathlib import Path

from vitnas.nas.data.cache import cached_splits
from vitnas.nas.data.cifar import DOWNLOADS, download_cifar, find_batch_folder, read_cifar
from vitnas.nas.data.dataset import Dataset, Splits, to_dataset
from vitnas.nas.data.digits import read_digits
from vitnas.nas.data.idx import is_idx_folder, read_idx_folder
from vitnas.nas.data.imagefolder import is_image_folder, read_image_folder
from vitnas.nas.data.npz import read_npz
from vitnas.nas.data.synthetic import make_synthetic, parse_synthetic_spec
from vitnas.errors import UserError

_LAYOUTS = ("an ImageFolder (train/<class>/, test/<class>/ or val/<class>/) as a folder or .zip, a CIFAR batch folder, "
            "a folder of MNIST idx files, or an .npz with x_train, y_train, x_test, y_test")


def default_cache_dir() -> Path:
    """$VITNAS_CACHE, else ~/.cache/vitnas."""
    return Path(os.environ.get("VITNAS_CACHE") or Path.home() / ".cache" / "vitnas")


def load_dataset(spec: str, *, val_fraction: float = 0.1, seed: int = 0,
                 cache_dir: str | Path | None = None) -> Dataset:
    """The data set named by `spec` (digits | cifar10 | cifar100 | synthetic[:k=v,...] | a path), with a stratified
    validation split of `val_fraction` of the training images chosen by `seed`."""
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name, splits = _read(spec, cache)
    return to_dataset(name, splits, val_fraction, seed)


def _read(spec: str, cache: Path) -> tuple[str, Splits]:
    if spec == "digits":
        return "digits", read_digits()
    if spec in DOWNLOADS:
        return spec, read_cifar(download_cifar(spec, cache))
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return spec, make_synthetic(**parse_synthetic_spec(spec))
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"unknown data set '{spec}': use digits, cifar10, cifar100, synthetic[:n=...,size=...] or an "
                        f"existing path to {_LAYOUTS}")
    if not (path.is_file() or path.is_dir()):
        raise UserError(f"{path}: not a file or folder (a device, pipe or socket): pass the path to {_LAYOUTS}")
    return path.name, _read_path(path, cache)


def _read_path(path: Path, cache: Path) -> Splits:
    if path.is_file() and path.suffix.lower() == ".npz":
        return read_npz(path)
    if is_image_folder(path):  # the only format that decodes images, so the only one worth caching
        return cached_splits(cache, "imagefolder", path, lambda: read_image_folder(path))
    if path.is_dir() and (folder := find_batch_folder(path)) is not None:
        return read_cifar(folder)
    if is_idx_folder(path):
        return read_idx_folder(path)
    raise UserError(f"{path}: unrecognised data set layout: expected {_LAYOUTS}")
