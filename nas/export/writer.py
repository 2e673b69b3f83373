"""The export folder: model.py, weights.pt, train.py, config.yaml, metrics.json, README.md and, asked for, model.onnx.

Everything is generated and checked before the folder is touched (model.py against the vitnas model, ONNX against
PyTorch), then each file is written atomically. A non-empty folder is refused unless `force`, which replaces only the
files an export writes; a folder or file the source was read from is never written into.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from vitnas.errors import UserError
from vitnas.nas.cost import count_cost
from vitnas.nas.export.check import exported_twin
from vitnas.nas.export.model_file import ModelFacts, render_model_file
from vitnas.nas.export.onnx_file import require_onnx, write_onnx
from vitnas.nas.export.source import Exportable
from vitnas.nas.export.train_file import render_train_file, resolved_recipe
from vitnas.nas.files import json_text, write_atomic, write_text_atomic
from vitnas.nas.trainer import TrainSettings

EXPORT_FILES = ("model.py", "weights.pt", "train.py", "config.yaml", "metrics.json", "README.md", "model.onnx")


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    sizes: dict[str, int]  # file name -> bytes, in EXPORT_FILES order
    max_difference: float  # largest |logit| difference, exported vs vitnas model, same weights, random images
    onnx_difference: float | None  # the same for ONNX Runtime vs PyTorch; None without --onnx


def export(item: Exportable, out: Path, *, default_epochs: int, onnx: bool = False,
           force: bool = False) -> ExportResult:
    """Write the export of `item` to `out`; `default_epochs` is train.py's budget when the source's is unknown."""
    if onnx:
        require_onnx()
    _check_out(out, force, item.read_from)
    arch = item.arch
    input_shape = (arch.in_chans, arch.image_size, arch.image_size)
    cost = count_cost(arch)
    normalize = item.model[0]
    facts = ModelFacts(arch.to_dict(), item.source, item.metrics, cost.params, cost.macs,
                       tuple(normalize.mean.flatten().tolist()), tuple(normalize.std.flatten().tolist()))
    model_text = render_model_file(item.model, facts)
    twin, difference = exported_twin(model_text, item.model, input_shape)
    settings = TrainSettings(epochs=item.epochs or default_epochs, seed=item.seed)
    texts = {
        "model.py": model_text,
        "train.py": render_train_file(resolved_recipe(settings, arch.image_size)),
        "config.yaml": arch.to_yaml(),
    }
    with tempfile.TemporaryDirectory() as scratch:
        onnx_difference = write_onnx(twin, input_shape, Path(scratch) / "model.onnx") if onnx else None
        checks = {"max_abs_logit_difference": difference, "onnx_max_abs_logit_difference": onnx_difference}
        texts["metrics.json"] = json_text({"source": item.source, "seed": item.seed, "params": cost.params,
                                           "macs": cost.macs, "metrics": item.metrics, "export_check": checks},
                                          indent=2)
        texts["README.md"] = _readme(item, cost.params, cost.macs, difference, onnx_difference)
        if force:
            for name in EXPORT_FILES:
                (out / name).unlink(missing_ok=True)  # no stale weights or ONNX from an earlier export
        for name, text in texts.items():
            write_text_atomic(out / name, text)
        if item.trained:
            state = {key: value.detach().clone() for key, value in item.model.state_dict().items()}
            write_atomic(out / "weights.pt", lambda handle: torch.save(state, handle))
        if onnx:
            shutil.move(Path(scratch) / "model.onnx", out / "model.onnx")
    sizes = {name: (out / name).stat().st_size for name in EXPORT_FILES if (out / name).is_file()}
    return ExportResult(out, sizes, difference, onnx_difference)


def _check_out(out: Path, force: bool, read_from: tuple[Path, ...]) -> None:
    target = out.resolve()
    for path in read_from:
        protected = path.resolve()
        if target == protected or (protected.is_file() and protected.parent == target and protected.name in
                                   EXPORT_FILES):
            raise UserError(f"--out {out} would write into the source ({path}): choose a new folder")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: choose a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"--out {out} is not empty: choose a new folder, or pass --force to replace its export files")


def _readme(item: Exportable, params: int, macs: int, difference: float, onnx_difference: float | None) -> str:
    found = _how_found(item.source)
    weights = ("weights.pt holds its trained weights (a state dict that loads into build_model() with strict=True)."
               if item.trained else "There is no weights.pt: the source was never trained; train.py trains it.")
    measured = ", ".join(f"{k} {v:.4g}" for k, v in item.metrics.items()
                         if k in ("val_accuracy", "test_accuracy", "robustness", "latency_ms")
                         and isinstance(v, (int, float)) and not isinstance(v, bool))
    lines = [
        f"# {item.arch.name}, exported by vitnas",
        "",
        f"How it was found: {found} {weights}",
        f"Parameters {params:,}; MACs per image {macs:,}" + (f"; measured: {measured}." if measured else "."),
        "",
        "Files: `model.py` (pure PyTorch, `build_model()`), `train.py` (the run's training recipe), `config.yaml` "
        "(`vitnas train config.yaml` reproduces it with vitnas), `metrics.json` (what the source measured)"
        + (", `model.onnx` (dynamic batch size)" if onnx_difference is not None else "") + ".",
        "",
        "```python",
        "import torch",
        "from model import build_model",
        "",
        "model = build_model().eval()",
    ]
    if item.trained:
        lines.append('model.load_state_dict(torch.load("weights.pt", weights_only=True))')
    lines += [
        f"logits = model(torch.rand(1, {item.arch.in_chans}, {item.arch.image_size}, {item.arch.image_size}))"
        "  # images in [0, 1]",
        "```",
        "",
        "Train it from scratch on an ImageFolder (train/<class>/*, test/<class>/*) with the same recipe:",
        "`python train.py --data PATH [--epochs N] [--device cpu|cuda] [--save trained.pt]`.",
        "",
        "Checked at export on random images, with the same weights: the largest difference between the logits of "
        f"the exported model and the vitnas model was {difference:.2g}"
        + (f", between ONNX Runtime's and PyTorch's {onnx_difference:.2g}." if onnx_difference is not None else "."),
        "",
    ]
    return "\n".join(lines)


def _how_found(source: dict) -> str:
    kind = source["kind"]
    if kind == "trial":
        chosen = "the knee of its Pareto front" if source["chosen"] == "knee" else "chosen by number"
        return (f"Trial {source['trial']} of the vitnas search `{source['study']}` ({source['folder']}), {chosen}, "
                f"trained on `{source['dataset']}`.")
    if kind == "checkpoint":
        return f"The model `vitnas train` saved in {source['folder']}, trained on `{source['dataset']}`."
    what = f"The architecture in {source['file']}" if kind == "config" else (
        f"The published architecture `{source['preset']}` (a vitnas preset)")
    shaped = f", shaped for `{source['dataset']}`" if "dataset" in source else ""
    return f"{what}{shaped}, untrained."
