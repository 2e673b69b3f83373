"""The built-in mixers, norms and activations: each module here registers its parts when imported.

Every module in this folder is imported (alphabetically) the first time the package is, so a new part is a new
module and nothing else here changes.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
