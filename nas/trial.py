"""One trial: an architecture config, a data set and a training budget in; the metrics asked for out.

The same function serves `vitnas train`, each search trial (inside a Ray worker) and ablations. A trial's model is
`Normalize(data) -> build_model(config)`, so it takes images in [0, 1], which is what the robustness suite perturbs.
Which measurements a trial takes is `TrialSettings.measurements` (declared in nas/metrics.py). A search bounds
the images a trial evaluates on (`val_images`, `test_images`: seeded stratified subsets), so that the per-epoch
validation and the final measurements cost a bounded time whatever the data set's size.
"""
import importlib
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from vitnas.errors import UserError
from vitnas.nas.data import Dataset, Normalize
from vitnas.nas.data.dataset import stratified_holdout
from vitnas.nas.files import json_safe
from vitnas.nas.inference import use_precision
from vitnas.nas.metrics import ALL, CHEAP, MEASUREMENTS
from vitnas.nas.outcome import Outcome
from vitnas.nas.trainer import TrainSettings, resolve_device, train
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.model import build_model


@dataclass(frozen=True)
class TrialSettings:
    train: TrainSettings = field(default_factory=TrainSettings)
    # names from nas.metrics.MEASUREMENTS; the cheap ones are always added. Default: everything (train, evaluate)
    measurements: frozenset[str] = ALL
    robustness: str = "default"  # a suite spec (nas.robustness.parse_suite)
    robustness_split: str = "val"  # a search ranks on validation; `vitnas train` reports on test
    robustness_images: int = 500
    latency_batch: int = 64
    val_images: int | None = None  # validate (each epoch, and at the end) on about this many images; None: all
    test_images: int | None = None  # the test pass, where it is measured, on about this many images; None: all

    def __post_init__(self) -> None:
        unknown = sorted(set(self.measurements) - ALL)
        if unknown:
            raise UserError(f"unknown measurement {unknown[0]!r}; choose from {', '.join(MEASUREMENTS)}")
        if any(n is not None and n < 1 for n in (self.val_images, self.test_images)):
            raise UserError(f"validation and test image bounds must be at least 1, got {self.val_images} and "
                            f"{self.test_images}")
        if self.robustness_split not in ("val", "test"):
            raise UserError(f"robustness split must be val or test, got {self.robustness_split!r}")
        object.__setattr__(self, "measurements", frozenset(self.measurements) | CHEAP)


@dataclass
class TrialOutcome:
    status: Outcome  # OK or DIVERGED (a trial that raises is the caller's to record)
    metrics: dict
    model: nn.Module
    history: list[dict]
    error: str | None = None


def normalized_model(arch: ArchConfig, mean: list[float], std: list[float]) -> nn.Sequential:
    """The model every trial trains and every checkpoint holds: per-channel normalisation, then the architecture."""
    return nn.Sequential(Normalize(mean, std), build_model(arch))


def check_fits(arch: ArchConfig, data: Dataset) -> None:
    if (arch.image_size, arch.in_chans, arch.num_classes) != (data.image_size, data.in_chans, data.num_classes):
        raise UserError(f"architecture {arch.name!r} is for {arch.image_size}px x {arch.in_chans} channels, "
                        f"{arch.num_classes} classes, but data set {data.name!r} has {data.image_size}px x "
                        f"{data.in_chans} channels, {data.num_classes} classes: build it with the data's shape")


def _subset(x: torch.Tensor, y: torch.Tensor, count: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """About `count` of the images, the same fraction of each class, chosen by `seed`; all of them for None."""
    if count is None or count >= len(y):
        return x, y
    _, chosen = stratified_holdout(y.numpy(), count / len(y), seed)
    index = torch.from_numpy(chosen)
    return x[index], y[index]


def bounded(data: Dataset, settings: TrialSettings) -> Dataset:
    """The data set with its validation and test splits cut to the settings' bounds (training images untouched)."""
    if settings.val_images is None and settings.test_images is None:
        return data
    x_val, y_val = _subset(data.x_val, data.y_val, settings.val_images, settings.train.seed)
    x_test, y_test = _subset(data.x_test, data.y_test, settings.test_images, settings.train.seed)
    return replace(data, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test)


def build_trial_model(arch: ArchConfig, data: Dataset) -> nn.Module:
    check_fits(arch, data)
    return normalized_model(arch, data.mean, data.std)


def _load(function: str):
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


def measure_model(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings,
                  device: str | torch.device, *, trained: bool = True, taken: dict | None = None) -> dict:
    """The metrics of settings.measurements on `model` (on `device`), in the registry's order, JSON-safe (a NaN is
    None); an untrained (e.g. diverged) model gets only the measurements that mean something without training.
    `taken` maps measurements already taken to their metrics, which stand in their place."""
    metrics, taken = {}, taken or {}
    with use_precision(settings.train.precision):
        for measurement in MEASUREMENTS.values():
            if measurement.name in taken:
                metrics.update(taken[measurement.name])
            elif (measurement.name in settings.measurements and measurement.function is not None
                    and (trained or not measurement.needs_training)):
                metrics.update(_load(measurement.function)(model, arch, data, settings, torch.device(device)))
    return json_safe(metrics)


def measurement_work(data: Dataset, settings: TrialSettings) -> int:
    """Forward passes (images) the measurements of `settings` run after training, as each one declares its own."""
    return sum(_load(measurement.work)(data, settings) for measurement in MEASUREMENTS.values()
               if measurement.name in settings.measurements and measurement.work is not None)


def run_trial(arch: ArchConfig, data: Dataset, settings: TrialSettings, *, on_epoch=None,
              progress=None) -> TrialOutcome:
    with torch.random.fork_rng(devices=[]):  # the seed fixes the initial weights too (paired ablation arms)
        torch.manual_seed(settings.train.seed)
        model = build_trial_model(arch, data)
    data = bounded(data, settings)
    device = resolve_device(settings.train.device)
    result = train(model, data, settings.train, on_epoch=on_epoch, progress=progress,
                   reserve_images=measurement_work(data, settings))
    history = [vars(epoch) for epoch in result.history]
    timing = {"train_seconds": result.train_seconds, "images_per_second": result.images_per_second,
              "epochs": result.epochs}
    trained = result.status is Outcome.OK
    # the trainer validated the final model already: its figure is the accuracy measurement, not a second pass
    validated = {"accuracy": {"val_accuracy": result.val_accuracy}} if trained else {}
    metrics = {**timing, **measure_model(model, arch, data, settings, device, trained=trained, taken=validated)}
    error = None if trained else f"diverged: the training loss became NaN/inf in epoch {result.epochs}"
    return TrialOutcome(result.status, metrics, model, history, error)
