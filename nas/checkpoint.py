"""A trained model on disk: its architecture config, weights (loaded with weights_only=True) and metrics.

Folder layout: `config.yaml` (the ArchConfig), `model.pt` (state_dict of Normalize + model), `metrics.json`
(the data set and seed it was trained with, its metrics and per-epoch history). Files are written atomically. A
checkpoint loads without its data set: the normalisation statistics are buffers in model.pt and the input channels
come from the config, which is what lets `vitnas export` and `vitnas evaluate --dataset OTHER` use it.
"""
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vitnas.errors import UserError
from vitnas.nas.files import json_text, write_atomic, write_text_atomic
from vitnas.nas.trial import normalized_model
from vitnas.search_spaces.config import ArchConfig


@dataclass
class Checkpoint:
    arch: ArchConfig
    model: nn.Module  # Normalize + the architecture, on the CPU, in eval mode
    info: dict  # metrics.json: dataset, seed, metrics, history


def save_checkpoint(directory: Path, arch: ArchConfig, model: nn.Module, info: dict) -> None:
    write_text_atomic(directory / "config.yaml", arch.to_yaml())
    write_atomic(directory / "model.pt", lambda out: torch.save(model.state_dict(), out))
    write_text_atomic(directory / "metrics.json", json_text(info, indent=2))


def _require(directory: Path, name: str) -> Path:
    if not (directory / name).is_file():
        raise UserError(f"{directory / name} is missing: give a folder written by `vitnas train --out DIR`")
    return directory / name


def read_info(directory: Path) -> dict:
    """metrics.json of a checkpoint: the data set and seed it was trained with, and its metrics."""
    try:
        info = json.loads(_require(directory, "metrics.json").read_text())
        return {**info, "dataset": str(info["dataset"]), "seed": int(info["seed"])}
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{directory / 'metrics.json'} is corrupt ({err}); retrain the model") from None


def load_checkpoint(directory: Path) -> Checkpoint:
    """The saved model, rebuilt from config.yaml and model.pt alone (no data set is read)."""
    info = read_info(directory)
    arch, model = load_model(directory)
    return Checkpoint(arch, model, info)


def load_model(directory: Path) -> tuple[ArchConfig, nn.Module]:
    """config.yaml + model.pt of a checkpoint or of a search trial's folder (same format): the architecture and the
    trained model, Normalize + architecture, on the CPU, in eval mode."""
    arch = ArchConfig.from_yaml(_require(directory, "config.yaml"))
    try:
        state = torch.load(_require(directory, "model.pt"), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, ValueError, RuntimeError, EOFError, OSError) as err:
        # weights_only refuses pickled Python objects (they could run code): such a file is as unusable as a torn one
        raise UserError(f"{directory / 'model.pt'} is corrupt or holds more than weights "
                        f"({str(err).splitlines()[0][:120]}); retrain it") from None
    # placeholder statistics of the config's channel count: load_state_dict overwrites them with the saved ones
    model = normalized_model(arch, [0.0] * arch.in_chans, [1.0] * arch.in_chans)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        raise UserError(f"{directory / 'model.pt'} does not match {directory / 'config.yaml'} "
                        f"({_first_reason(err)}): keep the two files together") from None
    broken = [name for name, tensor in model.state_dict().items()
              if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:  # every output would be NaN: measurements of such a model mean nothing
        raise UserError(f"{directory / 'model.pt'} holds NaN or infinite weights ({len(broken)} tensors, first "
                        f"{broken[0]}): the training diverged; retrain with a lower learning rate")
    return arch, model.eval()


def _first_reason(err: Exception) -> str:
    """The first specific line of torch's message (its first line only says that loading failed)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    return lines[min(1, len(lines) - 1)][:160]
