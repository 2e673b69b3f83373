"""What an export starts from: a study's trial, a `vitnas train` checkpoint, a config file or a preset, read into one
`Exportable` (architecture, model, weights or not, provenance, metrics). Sources are only read, never written.

Normalisation statistics: a trained source carries its own (Normalize's buffers in its weights). An untrained
architecture takes them from `--dataset` when given (its shape flows into the architecture, as in `vitnas train`),
else ImageNet's per-channel mean and std for RGB (what the presets were published with) and their channel averages
for any other channel count.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vitnas.errors import UserError
from vitnas.nas.checkpoint import load_checkpoint, load_model
from vitnas.nas.data import load_dataset
from vitnas.nas.report import report_dict
from vitnas.nas.study_reader import STUDY_FILE, read_study
from vitnas.nas.trial import normalized_model
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.presets import load_preset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Exportable:
    arch: ArchConfig
    model: nn.Sequential  # Normalize + the architecture, in eval mode, with the source's weights when it has some
    trained: bool  # False: fresh weights, which the export leaves out (code only)
    source: dict  # plain data: "kind" (trial | checkpoint | config | preset), then names, paths and numbers
    metrics: dict  # what the source measured; {} when untrained
    seed: int
    epochs: int | None  # the epochs the source trained for, when known
    read_from: tuple[Path, ...]  # the files and folders it came from, which an export must never write into


def open_source(path: Path | None, *, trial: int | None = None, knee: bool = False, preset: str | None = None,
                dataset: str | None = None) -> Exportable:
    """STUDY_DIR [--trial N | --knee] | CHECKPOINT_DIR | CONFIG.yaml | --preset NAME, as `vitnas export` takes them."""
    if (path is None) == (preset is None):
        raise UserError("give one source: a study folder, a checkpoint folder, a CONFIG.yaml or --preset NAME")
    is_study = path is not None and (path / STUDY_FILE).is_file()
    if (trial is not None or knee) and not is_study:
        raise UserError("--trial and --knee choose a trial of a study: give a study folder (with study.json)")
    if trial is not None and knee:
        raise UserError("--trial N and --knee both choose the trial: give one of them")
    if dataset is not None and (is_study or (path is not None and path.is_dir())):
        raise UserError("--dataset applies to CONFIG.yaml and --preset; a study or checkpoint exports for the data "
                        "set it was trained on")
    if preset is not None:
        return _untrained(load_preset(preset), {"kind": "preset", "preset": preset}, dataset, ())
    if is_study:
        return from_study(path, trial)
    if path.is_dir():
        return from_checkpoint(path)
    if path.is_file():
        return _untrained(ArchConfig.from_yaml(path), {"kind": "config", "file": str(path)}, dataset, (path,))
    raise UserError(f"{path} does not exist: give a study folder, a checkpoint folder or a CONFIG.yaml")


def from_study(directory: Path, number: int | None) -> Exportable:
    """A trial of a study: `number`, or the knee of its Pareto front when None."""
    summary = read_study(directory)
    chosen = "number"
    if number is None:
        number, chosen = report_dict(summary)["knee"], "knee"
        if number is None:
            raise UserError(f"study {summary.name!r} has no completed trial, so no knee to export: let the search "
                            "finish some trials, or pass --trial N")
    records = {record.number: record for record in summary.trials}
    record = records.get(number)
    if record is None:
        listed = f"trials {min(records)}..{max(records)}" if records else "no trials"
        raise UserError(f"study {summary.name!r} has no trial {number} ({listed}): pick one from `vitnas report "
                        f"{directory}`")
    if record.state != "COMPLETE":
        reason = (record.error or "").strip().splitlines()
        raise UserError(f"trial {number} of study {summary.name!r} is {record.state}"
                        f"{' (' + reason[0][:120] + ')' if reason else ''}: export a completed trial, e.g. the knee")
    folder = directory / "trials" / f"{number:04d}"
    spec = json.loads((directory / STUDY_FILE).read_text())
    source = {"kind": "trial", "study": summary.name, "folder": str(directory), "trial": number, "chosen": chosen,
              "dataset": spec.get("dataset")}
    metrics, epochs = record.metrics, _epochs(record.metrics)
    seed = record.seed if isinstance(record.seed, int) else int(spec.get("seed", 0))
    if (folder / "model.pt").is_file():
        arch, model = load_model(folder)
        return Exportable(arch, model, True, source, metrics, seed, epochs, (directory, folder))
    arch = ArchConfig.from_yaml(folder / "config.yaml") if (folder / "config.yaml").is_file() else (
        ArchConfig.from_dict(record.config))
    data = load_dataset(str(spec.get("dataset")), seed=seed)
    model = normalized_model(arch, data.mean, data.std).eval()
    return Exportable(arch, model, False, source, metrics, seed, epochs, (directory, folder))


def from_checkpoint(directory: Path) -> Exportable:
    saved = load_checkpoint(directory)
    source = {"kind": "checkpoint", "folder": str(directory), "dataset": saved.info["dataset"]}
    metrics = saved.info.get("metrics", {}) if isinstance(saved.info.get("metrics"), dict) else {}
    return Exportable(saved.arch, saved.model, True, source, metrics, saved.info["seed"], _epochs(metrics),
                      (directory,))


def default_statistics(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet's mean and std for RGB; their averages, per channel, for other channel counts."""
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return (sum(IMAGENET_MEAN) / 3,) * channels, (sum(IMAGENET_STD) / 3,) * channels


def _untrained(arch: ArchConfig, source: dict, dataset: str | None, read_from: tuple[Path, ...]) -> Exportable:
    if dataset is None:
        mean, std = default_statistics(arch.in_chans)
    else:
        data = load_dataset(dataset)
        arch = arch.with_data(image_size=data.image_size, in_chans=data.in_chans, num_classes=data.num_classes)
        mean, std = data.mean, data.std
        source = {**source, "dataset": dataset}
    return Exportable(arch, normalized_model(arch, list(mean), list(std)).eval(), False, source, {}, 0, None,
                      read_from)


def _epochs(metrics: dict) -> int | None:
    epochs = metrics.get("epochs")
    return max(1, math.ceil(epochs)) if isinstance(epochs, (int, float)) and math.isfinite(epochs) else None
