"""Override paths: how a study's arm changes its base, e.g. `stages[*].mixer: identity` or `stem.kind: conv`.

A path is dot-separated keys into a config's plain-data form (`ArchConfig.to_dict()`); a key may select list items
with `[i]` (negative counts from the end), `[a:b]` (a Python slice, either end optional) or `[*]` (every item), so
one line can change every stage at once. The last key may be new (the config's own validation then judges it); any
other key must exist. Paths are parsed when a study is read, so a typo fails before anything trains.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from vitnas.errors import UserError

_SEGMENT = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<select>[^\]]*)\])?$")
_SLICE = re.compile(r"^(?P<start>-?\d+)?:(?P<stop>-?\d+)?$")


@dataclass(frozen=True)
class Segment:
    key: str
    select: str | None = None  # None: the value itself; "*", "3", "-1", "2:", ":2", "1:3": list items

    def indices(self, length: int, where: str) -> list[int]:
        if self.select == "*":
            chosen = list(range(length))
        elif (match := _SLICE.match(self.select)) is not None:
            start, stop = (int(v) if v is not None else None for v in (match["start"], match["stop"]))
            chosen = list(range(length))[start:stop]
        else:
            index = int(self.select)
            if not -length <= index < length:
                raise UserError(f"{where}: index {index} is outside the {length} items of {self.key}")
            chosen = [index % length]
        if not chosen:
            raise UserError(f"{where}: [{self.select}] selects none of the {length} items of {self.key}")
        return chosen


@dataclass(frozen=True)
class OverridePath:
    text: str
    segments: tuple[Segment, ...]

    @property
    def root(self) -> str:
        return self.segments[0].key


def parse_path(text: Any, where: str) -> OverridePath:
    """`stages[2:].mixer.kind` -> segments; `where` names the field in errors (e.g. `arms.identity`)."""
    if not isinstance(text, str) or not text:
        raise UserError(f"{where}: override path {text!r} is not a string such as 'stages[*].mixer' or 'norm'")
    segments = []
    for part in text.split("."):
        match = _SEGMENT.match(part)
        select = match["select"] if match else None
        if match is None or (select is not None and select != "*" and not _SLICE.match(select)
                             and not re.fullmatch(r"-?\d+", select)):
            raise UserError(f"{where}: override path {text!r}: cannot read {part!r}; write key, key[i], key[a:b] "
                            "or key[*], joined by dots (e.g. stages[*].mixer.kind)")
        segments.append(Segment(match["key"], select))
    return OverridePath(text, tuple(segments))


def apply_override(target: dict, path: OverridePath, value: Any, where: str) -> None:
    """Set `value` (a fresh copy at every place) at `path` inside `target`, in place."""
    _apply(target, path.segments, value, f"{where}: {path.text}")


def _apply(node: Any, segments: tuple[Segment, ...], value: Any, where: str) -> None:
    head, rest = segments[0], segments[1:]
    if not isinstance(node, dict):
        raise UserError(f"{where}: {head.key!r} is looked up in {node!r}, which has no keys")
    if head.key not in node and (rest or head.select is not None):
        raise UserError(f"{where}: no key {head.key!r} here; keys: {', '.join(node) or 'none'}")
    if head.select is None:
        if rest:
            _apply(node[head.key], rest, value, where)
        else:
            node[head.key] = copy.deepcopy(value)
        return
    items = node[head.key]
    if not isinstance(items, list):
        raise UserError(f"{where}: {head.key} is not a list, so [{head.select}] cannot select from it")
    for index in head.indices(len(items), where):
        if rest:
            _apply(items[index], rest, value, where)
        else:
            items[index] = copy.deepcopy(value)
