"""How vitnas writes files: atomically (decode cache, checkpoints, study files), and metrics as strict JSON."""
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over `path`: readers, and a kill -9 in the
    middle, see the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda out: out.write(text.encode()))


def json_safe(value):
    """A copy that strict JSON accepts: NaN and +-inf become None, numpy and torch scalars Python numbers, arrays and
    tensors lists, tuples lists, keys strings. Measurements return such values (a NaN relative accuracy, a numpy
    float), and a plain json.dumps would write `NaN`, which other JSON readers reject."""
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors; found by shape so neither is imported
        value = value.tolist()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value, *, indent: int | None = None) -> str:
    """`value` as strict JSON text (through json_safe); what every metrics file and --json output is written with."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)
