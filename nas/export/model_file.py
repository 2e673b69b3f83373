"""model.py of an export: pure PyTorch, the library's own building blocks lifted by source, and `build_model()`.

Layout: a docstring made of fixed text and numbers only; the imports; CONFIG (the vitnas config), SOURCE and METRICS
(where the model came from, what it measured) and MEAN/STD, all literals written by pprint (repr), so a string a
user chose (a config or study name, a path) can only ever be a string literal; the lifted classes, used ones only;
and `build_model()`, the nested constructor call read back from the built model.
"""
from __future__ import annotations

import pprint
import textwrap
from dataclasses import dataclass

from torch import nn

from vitnas.nas.export.construct import WIDTH, constructor_call
from vitnas.nas.export.lift import lift, module_head
from vitnas.nas.files import json_safe

TORCH_ONLY = frozenset({"torch", "math"})
MODEL_NAMES = ("CONFIG", "SOURCE", "METRICS", "MEAN", "STD", "build_model")
# The measured metrics the docstring quotes, when the source has them (all of them are in METRICS and metrics.json).
QUOTED_METRICS = ("val_accuracy", "test_accuracy", "robustness", "latency_ms", "peak_memory_mb", "train_seconds",
                  "epochs")
_HOW = {
    "trial": "trial {trial} of a vitnas search{choice}",
    "checkpoint": "a model trained by `vitnas train`",
    "config": "an architecture config file, untrained",
    "preset": "a published architecture shipped with vitnas (a preset), untrained",
}


@dataclass(frozen=True)
class ModelFacts:
    """What model.py states besides code: plain data only (it is written as literals)."""

    config: dict  # ArchConfig.to_dict()
    source: dict  # "kind" (a key of _HOW), then names, paths and numbers that say where the model came from
    metrics: dict  # measured metrics, {} when untrained
    params: int
    macs: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def render_model_file(model: nn.Sequential, facts: ModelFacts) -> str:
    """The text of model.py for a trial's model (nn.Sequential(Normalize, MetaFormer))."""
    normalize, network = model
    call = constructor_call(network, indent=8)
    lifted = lift([type(normalize), *call.classes], TORCH_ONLY, reserved=MODEL_NAMES)
    return "\n".join([
        module_head(_docstring(facts), [*lifted.imports, "from torch import nn"]),
        "",
        "# The architecture as vitnas describes it (config.yaml beside this file); build_model() spells it out.",
        f"CONFIG = {_literal(facts.config)}",
        "# Where this model came from and what it measured, as vitnas recorded them.",
        f"SOURCE = {_literal(facts.source)}",
        f"METRICS = {_literal(_scalars(facts.metrics))}",
        "# The training data's per-channel mean and standard deviation (images in [0, 1]): the model normalises with",
        "# them, as every vitnas trial does.",
        f"MEAN = {tuple(float(m) for m in facts.mean)!r}",
        f"STD = {tuple(float(s) for s in facts.std)!r}",
        "",
        "",
        "\n\n\n".join(lifted.definitions),
        "",
        "",
        f"def build_model(mean: tuple[float, ...] = MEAN, std: tuple[float, ...] = STD) -> nn.Sequential:",
        '    """The model: float images (N, C, H, W) in [0, 1] -> logits, normalised with `mean` and `std` first."""',
        "    return nn.Sequential(",
        f"        {type(normalize).__qualname__}(mean, std),",
        f"        {call.source},",
        "    )",
        "",
    ])


def _docstring(facts: ModelFacts) -> str:
    """Fixed phrases and numbers only: nothing a user named goes into it (names live in SOURCE, through repr)."""
    source = facts.source
    trial = source.get("trial")
    choice = {"knee": ", the knee of its Pareto front", "number": ""}.get(source.get("chosen"), "")
    how = _HOW[source["kind"]].format(trial=int(trial) if isinstance(trial, int) else "?", choice=choice)
    lines = [
        "A MetaFormer exported by `vitnas export`: pure PyTorch, `build_model()` returns it.",
        "",
        "It takes float images in [0, 1] (N, C, H, W) and normalises them itself, exactly as the vitnas trial's model;",
        "weights.pt beside this file (when there is one) loads into it with strict=True.",
        "",
        f"Source: {how} (SOURCE below names it).",
        f"Parameters: {facts.params:,}; MACs per image: {facts.macs:,} ({_si(facts.macs)}).",
    ]
    metrics = _scalars(facts.metrics)
    quoted = [f"{name} {metrics[name]:.4g}" for name in QUOTED_METRICS
              if isinstance(metrics.get(name), (int, float)) and not isinstance(metrics.get(name), bool)]
    if quoted:
        lines += textwrap.wrap("Measured: " + ", ".join(quoted) + " (all of them: METRICS below).", WIDTH)
    return "\n".join(lines) + "\n"


def _si(count: int) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= factor:
            return f"{count / factor:.3g}{suffix}"
    return str(count)


def _scalars(metrics: dict) -> dict:
    """The top-level numbers and strings of a metrics dict (nested details stay in metrics.json)."""
    return {str(k): v for k, v in metrics.items() if v is None or isinstance(v, (bool, int, float, str))}


def _literal(value) -> str:
    """A Python literal of plain data (through json_safe: non-finite floats become None, so it always evaluates)."""
    return pprint.pformat(json_safe(value), width=WIDTH, sort_dicts=False)
