"""The in-memory data set (uint8 NCHW tensors), the seeded stratified validation hold-out, and `Normalize`."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn

from vitnas.errors import UserError


@dataclass(frozen=True, eq=False)
class Splits:
    """What a format reader returns: train and test images as uint8 NCHW numpy arrays, int64 labels, class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    # Whether a horizontal mirror keeps an image's class (photos yes; digits and characters no): the trainer's
    # default for flip augmentation.
    flip_invariant: bool = False

    def __post_init__(self) -> None:
        for x, y, split in ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test")):
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[2] != x.shape[3]:
                raise ValueError(f"{split} images must be uint8 (N, C, S, S), got {x.dtype} {x.shape}")
            if y.dtype != np.int64 or y.shape != (len(x),):
                raise ValueError(f"{split} labels must be int64 of length {len(x)}, got {y.dtype} {y.shape}")
            if len(y) and (y.min() < 0 or y.max() >= len(self.classes)):
                raise UserError(f"{split} labels must lie in 0..{len(self.classes) - 1}, found {y.min()}..{y.max()}")
        if len(self.x_train) == 0:
            raise UserError("the data set has no training images")
        if len(self.x_test) == 0:
            raise UserError("the data set has no test images: the test split is what a trained model is measured on")
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise UserError(f"test images are {self.x_test.shape[1:]} but training images are {self.x_train.shape[1:]}")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/val/test splits on the CPU: images uint8 (N, C, S, S), labels int64. `mean`/`std` are in [0, 1] units."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    flip_invariant: bool = False

    @property
    def in_chans(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @cached_property
    def _moments(self) -> tuple[list[float], list[float]]:
        return channel_moments(self.x_train)

    @property
    def mean(self) -> list[float]:
        return self._moments[0]

    @property
    def std(self) -> list[float]:
        return self._moments[1]


def channel_moments(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images (N, C, H, W), in [0, 1] units. Torch only: an
    exported train.py (nas/export) lifts this function to normalise exactly as a trial does."""
    # From each channel's 256-bin histogram: exact, and far cheaper than a float copy of the training set.
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for channel in range(x.shape[1]):
        counts = torch.bincount(x[:, channel].flatten(), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = (counts * values).sum() / total
        means.append(mean.item())
        stds.append(((counts * values.square()).sum() / total - mean.square()).clamp_min(1e-12).sqrt().item())
    return means, stds


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out): round(fraction * n_c) of each class c, chosen by a generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out.append(members[: int(round(fraction * len(members)))])
    held = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held, assume_unique=True)
    return kept, held


def smallest_class_for_validation(fraction: float) -> int:
    """The fewest training images a class needs for `stratified_holdout` to hold one of them out."""
    size = max(1, math.floor(0.5 / fraction))
    while round(fraction * size) < 1:  # at most a step or two past the estimate
        size += 1
    return size


def to_dataset(name: str, splits: Splits, val_fraction: float, seed: int) -> Dataset:
    kept, held = stratified_holdout(splits.y_train, val_fraction, seed)
    if len(kept) == 0:
        raise UserError(f"val_fraction {val_fraction} leaves no training images: use a smaller fraction")
    if val_fraction > 0 and len(held) == 0:
        # Without validation images every epoch would report accuracy 0 and a search could rank nothing.
        largest = int(np.bincount(splits.y_train).max())
        raise UserError(f"the validation split is empty: holding out {val_fraction:g} of each class needs at least "
                        f"{smallest_class_for_validation(val_fraction)} training images in a class, and the largest "
                        f"has {largest}: add training images")
    as_tensor = torch.from_numpy
    return Dataset(
        name=name,
        x_train=as_tensor(np.ascontiguousarray(splits.x_train[kept])),
        y_train=as_tensor(splits.y_train[kept]),
        x_val=as_tensor(np.ascontiguousarray(splits.x_train[held])),
        y_val=as_tensor(splits.y_train[held]),
        x_test=as_tensor(np.ascontiguousarray(splits.x_test)),
        y_test=as_tensor(np.ascontiguousarray(splits.y_test)),
        classes=list(splits.classes),
        flip_invariant=splits.flip_invariant,
    )


class Normalize(nn.Module):
    """Maps images in [0, 1] to (x - mean) / std per channel; the statistics are buffers, so checkpoints keep them."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or min(std) <= 0:
            raise ValueError(f"mean {mean} and std {std} must have one entry per channel and std > 0")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def memory_limit() -> int:
    """The most bytes one array of a data set may declare: a quarter of this machine's memory, since loading holds
    a data set in a few copies at once (the reader's arrays, the splits, the tensors). 16 GiB where the memory
    size is unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return 16 << 30


def check_size(nbytes: int, what: str) -> None:
    """Refuse, before anything is allocated, an array of `nbytes` declared by `what` (a file, a member, a spec)."""
    limit = memory_limit()
    if nbytes > limit:
        raise UserError(f"{what} declares {nbytes / 2**30:.1f} GiB of data, over the {limit / 2**30:.1f} GiB limit "
                        "(a quarter of this machine's memory): use a smaller data set or a machine with more memory")
