"""CIFAR-10/100 python batch folders, read through an unpickler that only admits numpy arrays and plain builtins,
and the download of the official archives into the cache."""
from __future__ import annotations

import _codecs
import builtins
import hashlib
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from vitnas.nas.data.dataset import Splits
from vitnas.errors import UserError

try:  # numpy >= 2 moved the module; pickles name either path
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
_SAFE_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float", "bool",
                  "complex", "slice", "range"}

# (archive URL, md5 published on the CIFAR page, folder inside the archive)
DOWNLOADS = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                "cifar-10-batches-py"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                 "cifar-100-python"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves only numpy array reconstruction and plain builtin types: a pickle naming anything else is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[module, name]
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol-2 pickles spell bytes
            return _codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: Path) -> dict:
    """A CIFAR batch as a dict with str keys; a UserError naming the file if it is missing, truncated or unsafe."""
    try:
        with path.open("rb") as handle:
            # encoding="bytes": the official batches were written by Python 2.
            content = _ArrayUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise UserError(f"{path}: missing CIFAR batch file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise UserError(f"{path}: not a valid CIFAR batch ({err})") from None
    if not isinstance(content, dict):
        raise UserError(f"{path}: not a valid CIFAR batch (expected a dict, found {type(content).__name__})")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}


def _batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = load_pickle(path)
    if "data" not in batch or label_key not in batch:
        raise UserError(f"{path}: not a valid CIFAR batch (needs 'data' and '{label_key}')")
    data, labels = np.asarray(batch["data"]), np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{path}: CIFAR 'data' must be uint8 (N, 3072), found {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _layout(folder: Path) -> tuple[list[str], str, str, str, str] | None:
    """(train batch names, test batch name, meta file, label key, class-name key) for CIFAR-10 or -100, else None."""
    if (folder / "data_batch_1").exists() or (folder / "batches.meta").exists():
        return [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta", "labels", "label_names"
    if (folder / "meta").exists() and (folder / "train").is_file():
        return ["train"], "test", "meta", "fine_labels", "fine_label_names"
    return None


def find_batch_folder(path: Path) -> Path | None:
    """`path` itself or its cifar-10-batches-py / cifar-100-python subfolder, when it holds CIFAR batches."""
    for folder in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if folder.is_dir() and _layout(folder) is not None:
            return folder
    return None


def read_cifar(folder: Path) -> Splits:
    train_files, test_file, meta_file, label_key, names_key = _layout(folder)
    meta = load_pickle(folder / meta_file)
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(names_key, [])]
    if not classes:
        raise UserError(f"{folder / meta_file}: no '{names_key}' list of class names")
    train = [_batch(folder / name, label_key) for name in train_files]
    x_test, y_test = _batch(folder / test_file, label_key)
    return Splits(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test,
                  classes, flip_invariant=True)


def download_cifar(name: str, cache_dir: Path) -> Path:
    """The batch folder for `name` in the cache, downloaded (with a progress bar) and md5-checked if absent."""
    url, md5, folder_name = DOWNLOADS[name]
    folder = cache_dir / folder_name
    if find_batch_folder(folder) is not None:
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        archive = Path(scratch) / "archive.tar.gz"
        try:
            _fetch(url, archive)
        except OSError as err:
            raise UserError(f"cannot download {name} from {url} ({err}): download and unpack it elsewhere, then pass "
                            f"--dataset PATH/{folder_name}") from None
        if hashlib.md5(archive.read_bytes()).hexdigest() != md5:
            raise UserError(f"{url}: downloaded archive fails its md5 check: retry, or pass a local copy "
                            "with --dataset PATH")
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        # Unpacked in scratch, then moved in one step: a half-extracted folder never looks like a cached copy.
        shutil.rmtree(folder, ignore_errors=True)
        (Path(scratch) / folder_name).replace(folder)
    return folder


def _fetch(url: str, target: Path) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with urllib.request.urlopen(url, timeout=20) as response, target.open("wb") as out, \
            Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                     TransferSpeedColumn(), transient=True) as progress:
        size = int(response.headers.get("Content-Length") or 0) or None
        task = progress.add_task(f"downloading {url.rsplit('/', 1)[-1]}", total=size)
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)
            progress.advance(task, len(block))
