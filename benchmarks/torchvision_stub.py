"""A stand-in `torchvision` for the benchmark environment only (bench-env), never for the project.

timm imports torchvision at module level (FrozenBatchNorm2d, transforms, datasets) but its model definitions do not
use it, and there is no CPU-only torchvision build to install next to the pinned CPU torch. setup_bench_env.sh copies
this file to bench-env's site-packages as torchvision/__init__.py: every `torchvision.x.y` import then resolves to an
empty module whose attributes are placeholder classes, which is all `import timm` needs to create models.
"""
import importlib.abc
import importlib.machinery
import sys
import types

__version__ = "0.0.0+stub"


class _AnyAttribute(type):
    """Class-level attributes (e.g. InterpolationMode.NEAREST) are placeholders too."""

    def __getattr__(cls, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _placeholder(attr)


class _Placeholder(metaclass=_AnyAttribute):
    """Stands for any torchvision class, function or constant timm names at import time; calling it fails loudly."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("torchvision is a stub in the benchmark environment")


def _placeholder(name: str) -> type:
    return _AnyAttribute(name, (_Placeholder,), {})


def __getattr__(attr):
    if attr.startswith("__"):
        raise AttributeError(attr)
    return _placeholder(attr)


def _stub_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so deeper imports resolve too
    module.__getattr__ = __getattr__
    return module


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _stub_module(spec.name)

    def exec_module(self, module):
        pass


sys.meta_path.append(_StubFinder())

