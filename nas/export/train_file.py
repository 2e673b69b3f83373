"""train.py of an export: `python train.py --data PATH` trains model.py's model with the recipe of its vitnas run.

Every function in it is lifted from the library's source (nas/export/standalone.py and the recipe functions it
calls), so its recipe is vitnas's by construction. The only generated code is TrainSettings, made from the fields of
vitnas's own TrainSettings that the lifted code reads, with the values of the run as literals (repr).
"""
from __future__ import annotations

import dataclasses
import re
import sys

from vitnas.nas.export import standalone
from vitnas.nas.export.lift import lift, module_head
from vitnas.nas.trainer import TrainSettings

# train.py may need the standard library, PIL and torch: what the recipe's code imports, whatever it grows into
TRAIN_PACKAGES = frozenset(sys.stdlib_module_names) | {"torch", "PIL"}
TRAIN_NAMES = ("TrainSettings", "CONFIG", "build_model", "dataclass")


def resolved_recipe(settings: TrainSettings, image_size: int) -> TrainSettings:
    """The settings with the trainer's data-dependent defaults filled in for an ImageFolder of `image_size` images
    (nas.trainer._train: padding image_size // 8; flip if the data set is mirror-invariant, which vitnas's
    ImageFolder reader declares)."""
    padding = image_size // 8 if settings.crop_padding is None else settings.crop_padding
    return dataclasses.replace(settings, crop_padding=padding, flip=True if settings.flip is None else settings.flip)


def render_train_file(settings: TrainSettings) -> str:
    """The text of train.py for resolved `settings` (see resolved_recipe)."""
    lifted = lift([standalone.main], TRAIN_PACKAGES, reserved=TRAIN_NAMES)
    return "\n".join([
        module_head(_DOCSTRING, [*lifted.imports, "from dataclasses import dataclass"]),
        "",
        "from model import CONFIG, build_model  # model.py beside this file",
        "",
        "",
        _settings_class(settings, "\n".join(lifted.definitions)),
        "",
        "",
        "\n\n\n".join(lifted.definitions),
        "",
        "",
        'if __name__ == "__main__":',
        "    main(build_model, CONFIG, TrainSettings())",
        "",
    ])


_DOCSTRING = """Train the exported model from scratch with the recipe of the vitnas run it came from.

    python train.py --data PATH [--epochs N] [--device auto|cpu|cuda] [--seed S] [--save trained.pt]

PATH is an ImageFolder: train/<class>/<image> and test/<class>/<image> (or val/). A tenth of each training class is
held out for validation, whose accuracy is printed after every epoch; the test accuracy is printed at the end. Needs
only torch and PIL. The code below is vitnas's own, lifted from its source: AdamW with decay on weight matrices only,
linear warm-up then cosine decay of the learning rate, label smoothing, gradient clipping, random crop (zero padding)
and horizontal flip, the run's seed; the values of the run are in TrainSettings.
"""


def _settings_class(settings: TrainSettings, code: str) -> str:
    read = set(re.findall(r"\bsettings\.(\w+)", code))
    fields = [f for f in dataclasses.fields(TrainSettings) if f.name in read]
    lines = [f"    {f.name}: {f.type if isinstance(f.type, str) else f.type.__name__} = {getattr(settings, f.name)!r}"
             for f in fields]
    return "\n".join([
        "@dataclass(frozen=True)",
        "class TrainSettings:",
        '    """The recipe of the run: the fields of vitnas\'s TrainSettings (nas/trainer.py) that this file reads, with',
        '    the values the run used."""',
        "",
        *lines,
    ])
