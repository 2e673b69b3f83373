"""The registries of swappable parts: token mixers, norms and activations, each declared once.

The config validates against them, the builder builds from them and the space suggests from them, so a new part is
one module in `search_spaces/parts/` (imported automatically) plus its name in the space file:

    MIXERS.register("pool", MixerKind(settings={"kernel_size": 3}, validate=..., build=...,
                                      dimensions=(ChoiceDim("pool_size", 3, number=int, odd=True,
                                                            setting="kernel_size"),)))
    NORMS.register("groupnorm", GroupNorm1)   # a class called as cls(dim, eps=eps) on channels-last tensors
    ACTS.register("gelu", nn.GELU)            # a class called as cls()

This module imports no torch: it holds declarations, not layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from vitnas.search_spaces.checks import check_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Named parts of one sort, in registration order (the order error messages list them in)."""

    def __init__(self, sort: str):
        self.sort = sort
        self._parts: dict[str, T] = {}

    def register(self, name: str, part: T) -> None:
        if name in self._parts:  # two modules claiming one name is a programming error, not a user's
            raise ValueError(f"{self.sort} {name!r} is registered already")
        self._parts[name] = part

    def unregister(self, name: str) -> None:
        del self._parts[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._parts)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(tuple(self._parts.items()))

    def require(self, field_name: str, name: Any) -> T:
        """The part a config field names, or a one-line UserError listing the registered names."""
        check_choice(field_name, name, self.names())
        return self._parts[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._parts

    def __getitem__(self, name: str) -> T:
        return self._parts[name]


@dataclass(frozen=True)
class ChoiceDim:
    """A categorical space dimension: the space file lists choices, a suggested config takes one of them.

    A mixer kind's dimension fills its `setting` (default: the dimension's name) and may drop choices that do not
    `fits(value, width, grid)` a stage; a kind is offered for a stage only when each of its dimensions keeps a choice.
    """
    name: str  # the key in the space file's `dimensions`
    default: Any  # the one choice a space file without this dimension gets (it predates the dimension)
    vocabulary: tuple = ()  # the values allowed; empty: numbers, see `number`, `odd`, `nullable`
    number: type = float  # int or float (floats are read as float, so 1 and 1.0 are one choice)
    odd: bool = False
    nullable: bool = False  # null allowed besides numbers (layer_scale: null = off)
    setting: str = ""
    fits: Callable[[Any, int, int], bool] | None = None

    @property
    def key(self) -> str:
        return self.setting or self.name

    def problem(self, value: Any) -> str | None:
        """What is allowed, when `value` is not; None when it is."""
        if self.vocabulary:
            return None if value in self.vocabulary else ", ".join(map(str, self.vocabulary))
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            return "positive numbers" + (" or null" if self.nullable else "")
        if self.number is int and not isinstance(value, int):
            return "integers"
        if self.odd and value % 2 == 0:
            return "odd sizes (3, 5, 7, ...)"
        return None

    def read(self, value: Any) -> Any:
        return float(value) if self.number is float and not self.vocabulary and value is not None else value


@dataclass(frozen=True)
class RangeDim:
    """A float space dimension: the space file gives {low, high, log}; a missing one is fixed at `default`."""
    name: str
    default: float
    setting: str = ""

    @property
    def key(self) -> str:
        return self.setting or self.name


def _no_rules(settings: Mapping[str, Any], width: int, grid: int, where: str) -> None:
    """A kind without settings has nothing to check."""


@dataclass(frozen=True)
class MixerKind:
    """One token mixer: its config keys, their rules, its builder and how a space draws its settings.

    `build(settings, width, grid, act_layer)` returns the nn.Module (channels-last in and out: (N, H, W, C), or
    (N, L, C) beside a CLS token) from plain values only (a kind that `takes_index` gets `index=`, the block's place
    in its stage, too); `validate(settings, width, grid, where)` raises a one-line
    UserError naming `where.KEY`. `settings` always holds every key of `settings` (defaults filled in).
    """
    settings: Mapping[str, Any]  # its config keys and their defaults (None: unset unless given)
    build: Callable[..., Any]
    validate: Callable[[Mapping[str, Any], int, int, str], None] = _no_rules
    dimensions: tuple[ChoiceDim | RangeDim, ...] = ()  # in the order a space draws them
    cls_token: bool = False  # a CLS token may ride along: it mixes a plain token sequence of any length
    pos_embed: bool = False  # blind to token positions, so the space offers a learned position embedding
    takes_index: bool = False  # blocks of a stage differ by their place (Swin shifts every other block's windows)


MIXERS: Registry[MixerKind] = Registry("mixer")
NORMS: Registry[type] = Registry("norm")
ACTS: Registry[type] = Registry("act")
