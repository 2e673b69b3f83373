"""The nested constructor call that rebuilds a built model: `constructor_call(module)` -> Python source.

Read back from the instance, not from a config: a liftable class (defined in vitnas) keeps every constructor argument
as an attribute of the same name, and the torch.nn built-ins listed in BUILTINS keep theirs under their documented
names (a `bias` flag is stored as the bias tensor or None). Values are written with repr(), so a string that came
from a user can only ever become a string literal. Anything else is a ConstructError (a bug in the library code).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch
from torch import nn

from vitnas.nas.export.lift import LIBRARY

BUILTINS = (nn.Sequential, nn.ModuleList, nn.Identity, nn.Linear, nn.Conv1d, nn.Conv2d, nn.LayerNorm, nn.RMSNorm,
            nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.GELU, nn.ReLU, nn.SiLU, nn.Tanh, nn.Dropout,
            nn.AvgPool2d, nn.MaxPool2d, nn.Flatten)
_SIZE_ARGUMENTS = ("kernel_size", "stride", "padding", "dilation")  # an int means the same size in every dimension
_NOT_ARCHITECTURE = ("device", "dtype")  # where a built-in puts its tensors, not what it computes
WIDTH = 116


class ConstructError(Exception):
    """A module whose constructor call cannot be read back from its attributes (an internal error)."""


@dataclass(frozen=True)
class _Call:
    function: str
    args: tuple  # rendered values: str, _Call or _Sequence
    kwargs: tuple  # (name, value) pairs


@dataclass(frozen=True)
class _Sequence:
    items: tuple
    opening: str  # "[" for a list, "(" for a tuple
    closing: str


@dataclass(frozen=True)
class Construction:
    source: str  # one expression that builds the module with the same architecture (weights aside)
    classes: tuple[type, ...]  # the vitnas classes it names, each before the classes that contain it


def constructor_call(module: nn.Module, indent: int = 0) -> Construction:
    classes: dict[type, None] = {}
    node = _call(module, classes)
    return Construction(_layout(node, indent), tuple(classes))


def _is_liftable(cls: type) -> bool:
    return cls.__module__.startswith(LIBRARY)


def _call(module: nn.Module, classes: dict[type, None]) -> _Call:
    cls = type(module)
    if cls is nn.Sequential:
        return _Call("nn.Sequential", tuple(_call(child, classes) for child in module), ())
    if cls is nn.ModuleList:
        return _Call("nn.ModuleList", (_Sequence(tuple(_call(child, classes) for child in module), "[", "]"),), ())
    if not _is_liftable(cls) and cls not in BUILTINS:
        raise ConstructError(f"{cls.__module__}.{cls.__qualname__} is neither a vitnas class nor a torch.nn built-in "
                             "the exporter knows; add it to nas/export/construct.py BUILTINS if its constructor "
                             "arguments are stored under their own names")
    read = _builtin_arguments if _init_from_torch(cls) else _liftable_arguments
    args, kwargs = read(module, classes)
    return _Call(_class_name(cls, classes), args, kwargs)


def _class_name(cls: type, classes: dict[type, None]) -> str:
    if _is_liftable(cls):
        classes.setdefault(cls)  # after the classes its arguments named: children first
        return cls.__qualname__
    if getattr(nn, cls.__name__, None) is cls:
        return f"nn.{cls.__name__}"
    raise ConstructError(f"{cls.__module__}.{cls.__qualname__} is neither a vitnas class nor in torch.nn")


def _init_from_torch(cls: type) -> bool:
    """A built-in, or a vitnas subclass keeping the built-in's constructor (ChannelBatchNorm(nn.BatchNorm1d))."""
    owner = next(klass for klass in cls.__mro__ if "__init__" in vars(klass))
    return owner.__module__.startswith("torch.nn")


def _liftable_arguments(module: nn.Module, classes: dict[type, None]) -> tuple[tuple, tuple]:
    """Every constructor argument, read from the attribute of the same name, by keyword unless it is *args."""
    cls = type(module)
    args, kwargs = [], []
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            raise ConstructError(f"{cls.__qualname__}.__init__ takes **{parameter.name}: liftable classes name "
                                 "every argument")
        if not hasattr(module, parameter.name):
            raise ConstructError(f"{cls.__qualname__} does not keep its constructor argument {parameter.name!r} as "
                                 f"an attribute of that name, so it is not liftable")
        value = getattr(module, parameter.name)
        if parameter.kind is parameter.VAR_POSITIONAL:
            args.extend(_value(item, cls, parameter.name, classes) for item in value)
        elif not _is_default(parameter, value):
            kwargs.append((parameter.name, _value(value, cls, parameter.name, classes)))
    return tuple(args), tuple(kwargs)


def _builtin_arguments(module: nn.Module, classes: dict[type, None]) -> tuple[tuple, tuple]:
    """Required arguments by position, others by keyword and only when not the default (as people write them)."""
    cls = type(module)
    args, kwargs = [], []
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or parameter.name in _NOT_ARCHITECTURE:
            continue
        value = getattr(module, parameter.name)
        if parameter.name == "bias" and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None
        if isinstance(value, tuple) and value and all(v == value[0] for v in value) and (
                len(value) == 1 or parameter.name in _SIZE_ARGUMENTS):
            value = value[0]
        if parameter.default is parameter.empty:
            args.append(_value(value, cls, parameter.name, classes))
        elif not _is_default(parameter, value):
            kwargs.append((parameter.name, _value(value, cls, parameter.name, classes)))
    return tuple(args), tuple(kwargs)


def _is_default(parameter: inspect.Parameter, value) -> bool:
    default = parameter.default
    plain = (bool, int, float, str, type(None))
    return default is not parameter.empty and isinstance(value, plain) and type(value) is type(default) and (
        value == default)


def _value(value, cls: type, name: str, classes: dict[type, None]):
    if isinstance(value, nn.Module):
        return _call(value, classes)
    if inspect.isclass(value) and issubclass(value, nn.Module):  # a layer type (norm_layer=nn.LayerNorm)
        return _class_name(value, classes)
    if isinstance(value, (list, tuple)):
        items = tuple(_value(item, cls, name, classes) for item in value)
        return _Sequence(items, "[", "]") if isinstance(value, list) else _Sequence(items, "(", ")")
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise ConstructError(f"{cls.__qualname__}.{name} is a {type(value).__name__}; a liftable class stores its "
                         "constructor arguments as they were given (plain values, modules or module classes)")


def _flat(node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, _Sequence):
        one = "," if node.opening == "(" and len(node.items) == 1 else ""
        return node.opening + ", ".join(_flat(item) for item in node.items) + one + node.closing
    parts = [_flat(a) for a in node.args] + [f"{k}={_flat(v)}" for k, v in node.kwargs]
    return f"{node.function}({', '.join(parts)})"


def _layout(node, indent: int, prefix: int = 0) -> str:
    """One line when it fits in WIDTH columns (after `prefix` characters already on the line), else one argument
    per line, indented by four more spaces."""
    flat = _flat(node)
    if isinstance(node, str) or indent + prefix + len(flat) <= WIDTH:
        return flat
    if isinstance(node, _Call) and not node.kwargs and len(node.args) == 1 and isinstance(node.args[0], _Sequence):
        # nn.ModuleList([ ... ]): the list's items one level in, not two
        node = _Sequence(node.args[0].items, f"{node.function}({node.args[0].opening}", f"{node.args[0].closing})")
    if isinstance(node, _Sequence):
        items = [_layout(item, indent + 4) for item in node.items]
        opening, closing = node.opening, node.closing
    else:
        items = [_layout(a, indent + 4) for a in node.args]
        items += [f"{k}={_layout(v, indent + 4, len(k) + 1)}" for k, v in node.kwargs]
        opening, closing = f"{node.function}(", ")"
    inner = " " * (indent + 4)
    return opening + "\n" + "".join(f"{inner}{item},\n" for item in items) + " " * indent + closing
