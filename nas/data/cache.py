"""The decode cache: decoded splits as one .npz per source, keyed by the source's content, written atomically.

A cache file carries a digest of its arrays; a file that fails to load or to match its digest is rebuilt, so an
interrupted write, a truncated copy or a flipped bit never reaches training.
"""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vitnas.nas.data.dataset import Splits
from vitnas.nas.files import write_atomic

# Bump when a reader's output for the same source changes (e.g. a different resize rule), so old entries are ignored.
CACHE_VERSION = "1"
_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def source_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes; for a folder, of its listing (relative path, size, mtime of every file)."""
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in (*_ARRAYS, "classes"):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _read(file: Path) -> Splits:
    with np.load(file, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in (*_ARRAYS, "classes", "flip_invariant", "digest")}
    if str(arrays["digest"]) != _arrays_digest(arrays):
        raise ValueError("digest mismatch")
    return Splits(*(arrays[key] for key in _ARRAYS), classes=[str(c) for c in arrays["classes"]],
                  flip_invariant=bool(arrays["flip_invariant"]))


def _write(file: Path, splits: Splits) -> None:
    arrays = {key: getattr(splits, key) for key in _ARRAYS}
    arrays["classes"] = np.array(splits.classes, dtype=str)
    arrays["digest"] = np.array(_arrays_digest(arrays))
    arrays["flip_invariant"] = np.array(splits.flip_invariant)
    write_atomic(file, lambda out: np.savez(out, **arrays))


def cached_splits(cache_dir: Path, kind: str, source: Path, build: Callable[[], Splits]) -> Splits:
    """The splits `build()` makes from `source`, read from the cache when a valid entry for this content exists."""
    key = hashlib.sha256(f"{CACHE_VERSION}\0{kind}\0{source_fingerprint(source)}".encode()).hexdigest()[:32]
    file = cache_dir / f"{kind}-{key}.npz"
    if file.exists():
        try:
            return _read(file)
        except Exception as err:  # any unreadable entry (truncated zip, bad header, digest mismatch) is rebuilt
            warnings.warn(f"rebuilding corrupt cache file {file} ({err})", stacklevel=2)
    splits = build()
    try:
        _write(file, splits)
    except OSError as err:  # a read-only or full cache costs a re-decode next time, not the run
        warnings.warn(f"could not write cache file {file} ({err})", stacklevel=2)
    return splits
