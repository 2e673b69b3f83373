"""Shown while runs go on: the live views of `search` and `ablate` end on a line of their own."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `vitnas ablate list` imports this module and need not load rich's live display
    from rich.live import Live


@contextmanager
def showing(live: Live) -> Iterator[None]:
    """`with live:` whose last frame ends its line. Off a terminal (a log file, a pipe) rich leaves the cursor after
    the table's bottom border, and the next line (`error: ...`, `stopped after ...`) would be glued to it."""
    try:
        with live:
            yield
    finally:
        if not live.console.is_terminal:
            live.console.line()
