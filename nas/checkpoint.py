"""A trained model on disk: its architecture config, weights (loaded with weights_only=True) and metrics.

Folder layout: `config.yaml` (the ArchConfig), `model.pt` (state_dict of Normalize + model), `metrics.json`
(every measured metric plus the data set and seed it was trained with). Files are written atomically.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vitnas.nas.data import Dataset
from vitnas.nas.files import write_atomic, write_text_atomic
from vitnas.nas.trial import build_trial_model
from vitnas.search_spaces.config import ArchConfig
from vitnas.errors import UserError


@dataclass
class Checkpoint:
    arch: ArchConfig
    model: nn.Module
    info: dict  # metrics.json: dataset, seed, metrics


def save_checkpoint(directory: Path, arch: ArchConfig, model: nn.Module, info: dict) -> None:
    write_text_atomic(directory / "config.yaml", arch.to_yaml())
    write_atomic(directory / "model.pt", lambda out: torch.save(model.state_dict(), out))
    write_text_atomic(directory / "metrics.json", json.dumps(info, indent=2, default=float))


def _require(directory: Path, name: str) -> Path:
    if not (directory / name).is_file():
        raise UserError(f"{directory / name} is missing: give a folder written by `vitnas train --out DIR`")
    return directory / name


def read_info(directory: Path) -> dict:
    """metrics.json of a checkpoint: the data set and seed it was trained with, and its metrics."""
    try:
        info = json.loads(_require(directory, "metrics.json").read_text())
        return {"dataset": str(info["dataset"]), "seed": int(info["seed"]), **info}
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{directory / 'metrics.json'} is corrupt ({err}); retrain the model") from None


def load_checkpoint(directory: Path, data: Dataset) -> Checkpoint:
    """Rebuild the model for `data` (its normalisation buffers are overwritten by the saved ones)."""
    info = read_info(directory)
    arch = ArchConfig.from_yaml(_require(directory, "config.yaml"))
    try:
        state = torch.load(_require(directory, "model.pt"), map_location="cpu", weights_only=True)
    except (ValueError, RuntimeError, EOFError, OSError) as err:
        raise UserError(f"{directory}: checkpoint is corrupt ({str(err).splitlines()[0][:120]}); retrain it") from None
    model = build_trial_model(arch, data)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        raise UserError(f"{directory / 'model.pt'} does not match {directory / 'config.yaml'} "
                        f"({str(err).splitlines()[0][:120]}): keep the two files together") from None
    return Checkpoint(arch, model, info)
