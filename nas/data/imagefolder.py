"""ImageFolder trees, as a folder or inside a .zip: `train/<class>/*` and `test/<class>/*` (or `val/`).

Mixed images are made uniform so they stack into one array:
- channels: if every image is grayscale the data set has 1 channel; otherwise all are RGB (grayscale repeated,
  alpha dropped, palettes expanded);
- size: the side S is the most common shorter side; any image that is not S x S has its shorter side resized to S
  (bilinear) and is center-cropped to S x S;
- depth: 16-bit grey images (Pillow modes I;16 and I, e.g. 16-bit PNGs) are scaled to 8 bits (value / 257).
Decoding runs in a process pool (one worker per available core) once there are enough images to pay for it.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from vitnas.nas.data.dataset import Splits
from vitnas.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
_GRAY_MODES = {"1", "L", "LA", "F"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}  # how Pillow opens 16-bit grey PNG, TIFF, PGM
_SIXTEEN_BIT_MAX = 65535
_MIN_IMAGES_FOR_POOL = 4000


class _Files:
    """Read access to the files of a folder or a zip archive by relative posix name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.archive = zipfile.ZipFile(path) if path.suffix.lower() == ".zip" else None

    def names(self) -> list[str]:
        if self.archive is not None:
            return [info.filename for info in self.archive.infolist() if not info.is_dir()]
        return [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]

    def read(self, name: str) -> bytes:
        """The file's bytes; a UserError naming it if it cannot be read (for a zip entry also: encrypted, stored
        with a compression method Python lacks, or failing its CRC)."""
        try:
            if self.archive is not None:
                return self.archive.read(name)
            return (self.path / name).read_bytes()
        except (OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error) as err:
            raise UserError(f"{self.describe(name)}: cannot read ({err}): replace or remove the file") from None

    def describe(self, name: str) -> str:
        return f"{self.path}:{name}" if self.archive is not None else str(self.path / name)


def is_image_folder(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".zip"
    if not path.is_dir():
        return False
    subfolders = [p for p in path.iterdir() if p.is_dir()]
    return (path / "train").is_dir() or (len(subfolders) == 1 and (subfolders[0] / "train").is_dir())


def _split_root(names: list[str]) -> str | None:
    """The prefix ("" or "wrapper/") under which `train/` lives: at the top, or inside one wrapping folder."""
    paths = [name.split("/") for name in names]
    tops = {parts[0] for parts in paths if len(parts) > 1}
    if "train" in tops:
        return ""
    if len(tops) == 1 and any(len(parts) > 2 and parts[1] == "train" for parts in paths):
        return f"{tops.pop()}/"
    return None


def _labelled_files(names: list[str], root: str, split: str) -> dict[str, list[str]]:
    """class name -> sorted image file names under `root + split/<class>/`, skipping hidden and non-image files."""
    by_class: dict[str, list[str]] = {}
    prefix = f"{root}{split}/"
    for name in names:
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix):].split("/")
        if len(parts) < 2 or any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        if os.path.splitext(parts[-1])[1].lower() in IMAGE_SUFFIXES:
            by_class.setdefault(parts[0], []).append(name)
    return {label: sorted(files) for label, files in sorted(by_class.items())}


def decode_image(data: bytes, where: str) -> np.ndarray:
    """(H, W) uint8 for a grayscale image, (H, W, 3) for anything else; a UserError naming `where` if undecodable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode in _SIXTEEN_BIT_MODES:  # convert("L") would clip every value above 255
                return _to_eight_bits(np.asarray(image), where)
            return np.asarray(image.convert("L" if image.mode in _GRAY_MODES else "RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{where}: cannot decode image ({err}): replace or remove the file") from None


def _to_eight_bits(pixels: np.ndarray, where: str) -> np.ndarray:
    """16-bit grey levels to the nearest 8-bit level (65535 / 257 = 255)."""
    if pixels.size and (pixels.min() < 0 or pixels.max() > _SIXTEEN_BIT_MAX):
        raise UserError(f"{where}: grey values outside 0..{_SIXTEEN_BIT_MAX}: save the image with 8 or 16 bits "
                        "per pixel")
    return np.round(pixels / 257).astype(np.uint8)


_worker_files: _Files | None = None


def _open_in_worker(path: Path) -> None:
    global _worker_files  # each worker opens the archive once, not once per chunk
    _worker_files = _Files(path)


def _decode_in_worker(names: list[str]) -> list[np.ndarray]:
    return [decode_image(_worker_files.read(n), _worker_files.describe(n)) for n in names]


def _decode_all(files: _Files, names: list[str]) -> list[np.ndarray]:
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # fork only: the workers use PIL and numpy, never torch, so forking after torch was imported is safe.
    if workers < 2 or len(names) < _MIN_IMAGES_FOR_POOL or "fork" not in multiprocessing.get_all_start_methods():
        return [decode_image(files.read(n), files.describe(n)) for n in names]
    chunk = max(256, len(names) // (workers * 8))
    chunks = [names[i:i + chunk] for i in range(0, len(names), chunk)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_open_in_worker, initargs=(files.path,)) as pool:
        return [image for decoded in pool.map(_decode_in_worker, chunks) for image in decoded]


def _uniform(images: list[np.ndarray]) -> np.ndarray:
    """Stack images as uint8 (N, C, S, S) following the module's channel and size rules."""
    channels = 1 if all(image.ndim == 2 for image in images) else 3
    side = Counter(min(image.shape[:2]) for image in images).most_common(1)[0][0]
    out = np.empty((len(images), side, side, channels), dtype=np.uint8)
    for i, image in enumerate(images):
        if image.shape[:2] != (side, side):
            image = _resize_center_crop(image, side)
        out[i] = image[..., None] if image.ndim == 2 else image  # (S, S, 1) broadcasts to 3 channels
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _resize_center_crop(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / min(height, width)
    new_w, new_h = max(side, round(width * scale)), max(side, round(height * scale))
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - side) // 2, (new_h - side) // 2
    return np.asarray(resized.crop((left, top, left + side, top + side)))


def read_image_folder(path: Path) -> Splits:
    try:
        files = _Files(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{path}: not a readable zip archive ({err})") from None
    names = files.names()
    root = _split_root(names)
    if root is None:
        raise UserError(f"{path}: no train/ folder found: an ImageFolder needs train/<class>/ and "
                        "test/<class>/ (or val/)")
    train = _labelled_files(names, root, "train")
    test_split = "test" if any(n.startswith(f"{root}test/") for n in names) else "val"
    test = _labelled_files(names, root, test_split)
    if not train:
        raise UserError(f"{files.describe(root + 'train/')}: no images in class folders "
                        "(expected train/<class>/<image>)")
    if not test:
        raise UserError(f"{files.describe(root)}: no test/<class>/ or val/<class>/ images found")
    classes = list(train)
    for label in test:
        if label not in train:
            raise UserError(f"{files.describe(f'{root}{test_split}/{label}/')}: class folder not in train/ "
                            f"(train classes: {', '.join(classes)})")
    ordered = [(name, classes.index(label))
               for split in (train, test) for label, group in split.items() for name in group]
    images = _uniform(_decode_all(files, [name for name, _ in ordered]))
    labels = np.array([label for _, label in ordered], dtype=np.int64)
    n_train = sum(len(group) for group in train.values())
    return Splits(images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], classes, flip_invariant=True)
