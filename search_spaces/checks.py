"""One-line validation helpers shared by the config and the parts' declarations.

Each raises `UserError` with `FIELD: got VALUE; ALLOWED`, so every message names the field, the value and the fix.
"""
from __future__ import annotations

import math
import reprlib
from typing import Any, Mapping

from vitnas.errors import UserError

# A value in a message is an excerpt: a file may hold a megabyte string or a thousand stages, and the line stays one
_EXCERPT = reprlib.Repr()
_EXCERPT.maxstring = _EXCERPT.maxother = 60
_EXCERPT.maxlist = _EXCERPT.maxtuple = _EXCERPT.maxdict = _EXCERPT.maxset = 6
_EXCERPT.maxlevel = 3
MAX_EXCERPT = 120


def excerpt(value: Any) -> str:
    """repr(value), cut to at most MAX_EXCERPT characters (inner strings and lists cut first)."""
    text = _EXCERPT.repr(value)
    return text if len(text) <= MAX_EXCERPT else text[:MAX_EXCERPT - 3] + "..."


def fail(field_name: str, value: Any, allowed: str) -> UserError:
    return UserError(f"{field_name}: got {excerpt(value)}; {allowed}")


def check_choice(field_name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise fail(field_name, value, f"allowed: {', '.join(map(str, choices))}")


def check_bool(field_name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise fail(field_name, value, "allowed: true or false")


def check_int(field_name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise fail(field_name, value, f"allowed: {bound}")


def check_odd(field_name: str, value: Any, low: int, high: int) -> None:
    """An odd integer in [low, high]: a kernel that keeps the grid with 'same' padding k // 2."""
    check_int(field_name, value, low, high)
    if value % 2 == 0:
        raise fail(field_name, value, "allowed: an odd size (1, 3, 5, 7, 9, ...)")


def check_float(field_name: str, value: Any, low: float, high: float | None = None, *, open_low=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        lower = f"> {low}" if open_low else f">= {low}"
        raise fail(field_name, value, f"allowed: a number {lower}" + (f" and <= {high}" if high is not None else ""))


def check_mapping(where: str, data: Any) -> None:
    if not isinstance(data, dict):
        raise fail(where or "config", data, "expected a mapping of keys to values")


def check_keys(where: str, data: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    check_mapping(where, data)
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in allowed:  # a key is anyone's text (a newline, a megabyte): an identifier is shown as it is
            shown = key if isinstance(key, str) and key.isidentifier() and len(key) <= 40 else excerpt(key)
            raise fail(f"{prefix}{shown}", data[key], f"unknown key; allowed keys: {', '.join(allowed)}")
    for key in required:
        if key not in data:
            raise UserError(f"{prefix}{key}: missing; it is required")



def validate_kernel_size(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    """The rule of a mixer whose one setting is a 'same'-padded `kernel_size` (pool, conv)."""
    check_odd(f"{where}.kernel_size", settings["kernel_size"], 1, 31)
