"""How vitnas writes files: atomically (decode cache, checkpoints, study files), metrics as strict JSON, outputs
checked for writability before the work that fills them, and names made safe to become folders."""
import json
import math
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from vitnas.errors import UserError

# A name that becomes one folder (a study, a run): no separators, no `..`, nothing a shell or a URL would rewrite
PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over `path`: readers, and a kill -9 in the
    middle, see the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = _create_beside(path)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new temporary file next to `path`, opened for writing. Not mkstemp: its files are 0600 whatever the umask,
    and checkpoints and studies are meant to be shared; mode 0666 lets the kernel apply the user's umask."""
    while True:
        temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:  # another writer drew the same 48 random bits: draw again
            continue


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


def check_plain_name(name: str, option: str) -> str:
    """`name` when it can be one folder of its own; else a one-line UserError (`q?x`, `a%20b`, `../x` are refused)."""
    if not PLAIN_NAME.fullmatch(name):
        raise UserError(f"{option}: got {name[:120]!r}; use a plain folder name: letters, digits, '.', '_' and '-', "
                        "not starting with '.', at most 100 characters")
    return name


def folder_name(text: str) -> str:
    """`text` (a config's name, which anyone may write) made a plain folder name: other characters become '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip(".")[:60] or "unnamed"


def check_writable(path: Path, option: str, *, folder: bool = False) -> None:
    """A one-line UserError now, before training or measuring, when `path` cannot be written: a file where a folder
    is wanted or the reverse, a read-only or missing place (/proc, a path through a file), a name too long. The
    probe creates what it needs and removes it again; an existing file is opened for appending, so it is not
    changed."""
    target = path if folder else path.parent
    made: list[Path] = []
    try:
        if path.exists() and path.is_dir() != folder:
            wanted, found = ("folder", "file") if folder else ("file", "folder")
            raise UserError(f"{option} {str(path)!r}: is a {found}; give a {wanted} path")
        made = [p for p in (target, *target.parents) if not p.exists()]  # deepest first, the order to remove them
        target.mkdir(parents=True, exist_ok=True)
        if folder:
            tempfile.TemporaryFile(dir=target).close()
        elif path.exists():
            open(path, "ab").close()
        else:
            open(path, "xb").close()
            path.unlink()
    except OSError as err:
        raise UserError(f"{option} {str(path)[:200]!r}: cannot write there ({err.strerror or err}); choose a "
                        "writable path") from None
    finally:
        for created in made:
            try:
                created.rmdir()
            except OSError:
                pass
