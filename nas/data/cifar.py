"""CIFAR-10/100 python batch folders, read through an unpickler that admits only what the format needs (numpy array
reconstruction of numeric arrays; dicts, lists, strings, bytes and ints come from the pickle's own opcodes), and the
download of the official archives into the cache."""
from __future__ import annotations

import hashlib
import io
import pickle
import pickletools
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from vitnas.nas.data.dataset import Splits, check_size
from vitnas.errors import UserError

try:  # numpy >= 2 moved the modules; pickles name either path
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

_MEMO_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


class _NdarrayName:
    """Stands for numpy.ndarray in a pickle: numpy names the class as an argument of _reconstruct, and handing out
    the class itself would let a pickle call it with any shape."""


def _empty_array(subtype: object, shape: object, code: object) -> np.ndarray:
    """numpy's _reconstruct as numpy's own pickles use it: an empty array that the pickle then fills from its bytes
    (numpy checks that they match the declared shape)."""
    if subtype is not _NdarrayName or shape != (0,):
        raise pickle.UnpicklingError(f"refusing an array reconstruction with shape {shape!r}")
    return _multiarray._reconstruct(np.ndarray, (0,), code)


def _numeric_dtype(spec: object, align: bool = False, copy: bool = False) -> np.dtype:
    """numpy.dtype for booleans and numbers only: flexible (void, string) or object types are not CIFAR data."""
    name = spec.decode("ascii", "replace") if isinstance(spec, bytes) else spec  # Python 2 pickles give bytes
    if not isinstance(name, str) or np.dtype(name).kind not in "biuf":
        raise pickle.UnpicklingError(f"refusing data type {spec!r}")
    return np.dtype(name, align, copy)


def _latin1_bytes(text: object, encoding: object) -> bytes:
    """_codecs.encode as protocol-2 pickles spell a bytes object (text, 'latin1'), and nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing to encode with {encoding!r}")
    return text.encode("latin1")


_GLOBALS = {
    **{(module, "_reconstruct"): _empty_array for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _multiarray.scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    # Protocol 5 pickles rebuild arrays as views of their in-band buffer.
    **{(module, "_frombuffer"): _numeric._frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NdarrayName,
    ("numpy", "dtype"): _numeric_dtype,
    ("_codecs", "encode"): _latin1_bytes,
}

# (archive URL, md5 published on the CIFAR page, folder inside the archive)
DOWNLOADS = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                "cifar-10-batches-py"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                 "cifar-100-python"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves only the names in _GLOBALS: a pickle naming anything else (any builtin included) is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _GLOBALS:
            return _GLOBALS[module, name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _check_opcodes(data: bytes) -> None:
    """Walk the pickle's opcodes without running them. Every length it claims must be present in the data
    (pickletools raises otherwise) and every memo index must be one the pickle can have made: the unpickler
    allocates what a length or an index claims before reading, so a few bytes could otherwise ask for terabytes."""
    for position, (opcode, argument, _) in enumerate(pickletools.genops(data)):
        if opcode.name in _MEMO_OPCODES and int(argument) > position:
            raise pickle.UnpicklingError(f"memo index {argument} at opcode {position}")


def load_pickle(path: Path) -> dict:
    """A CIFAR batch as a dict with str keys; a UserError naming the file if it is missing, unreadable, truncated
    or unsafe."""
    try:
        check_size(path.stat().st_size, str(path))
        data = path.read_bytes()
        _check_opcodes(data)
        # encoding="bytes": the official batches were written by Python 2.
        content = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except FileNotFoundError:
        raise UserError(f"{path}: missing CIFAR batch file") from None
    except OSError as err:  # a folder where the file should be, no permission, ...
        raise UserError(f"{path}: cannot read CIFAR batch file ({err.strerror or err})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError) as err:
        raise UserError(f"{path}: not a valid CIFAR batch ({err})") from None
    if not isinstance(content, dict):
        raise UserError(f"{path}: not a valid CIFAR batch (expected a dict, found {type(content).__name__})")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}


def _batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = load_pickle(path)
    if "data" not in batch or label_key not in batch:
        raise UserError(f"{path}: not a valid CIFAR batch (needs 'data' and '{label_key}')")
    data, labels = np.asarray(batch["data"]), np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{path}: CIFAR 'data' must be uint8 (N, 3072), found {data.dtype} {data.shape}")
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise UserError(f"{path}: '{label_key}' must be integers, one per image, found {labels.dtype} {labels.shape}")
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _class_names(meta: dict, key: str, path: Path) -> list[str]:
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        found = "nothing" if names is None else type(names).__name__
        raise UserError(f"{path}: '{key}' must be a list of class names, found {found}")
    return [name.decode("utf-8", "replace") if isinstance(name, bytes) else name for name in names]


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
    classes = _class_names(load_pickle(folder / meta_file), names_key, folder / meta_file)
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
