"""One trial: an architecture config, a data set and a training budget in; every metric the search ranks by out.

The same function serves `vitnas train`, each search trial (inside a Ray worker) and ablations. A trial's model is
`Normalize(data) -> build_model(config)`, so it takes images in [0, 1], which is what the robustness suite perturbs.
"""
from dataclasses import dataclass, field

from torch import nn

from vitnas.nas.cost import count_cost, measure_latency, measure_peak_memory
from vitnas.nas.data import Dataset, Normalize
from vitnas.nas.robustness import evaluate_robustness, parse_suite
from vitnas.nas.trainer import TrainSettings, evaluate_accuracy, resolve_device, train
from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.config import ArchConfig
from vitnas.errors import UserError


@dataclass(frozen=True)
class TrialSettings:
    train: TrainSettings = field(default_factory=TrainSettings)
    robustness: str = "default"  # a suite spec (nas.robustness.parse_suite)
    robustness_split: str = "val"  # a search ranks on validation; `vitnas train` reports on test
    robustness_images: int = 500
    latency_batch: int = 64


@dataclass
class TrialOutcome:
    status: str  # "ok" | "diverged"
    metrics: dict
    model: nn.Module
    history: list[dict]
    error: str | None = None


def build_trial_model(arch: ArchConfig, data: Dataset) -> nn.Module:
    if (arch.image_size, arch.in_chans, arch.num_classes) != (data.image_size, data.in_chans, data.num_classes):
        raise UserError(f"architecture {arch.name!r} is for {arch.image_size}px x {arch.in_chans} channels, "
                        f"{arch.num_classes} classes, but data set {data.name!r} has {data.image_size}px x "
                        f"{data.in_chans} channels, {data.num_classes} classes: build it with the data's shape")
    return nn.Sequential(Normalize(data.mean, data.std), build_model(arch))


def measure_model(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings, device: str) -> dict:
    """Everything measured on a trained model: accuracies, cost, latency and the robustness suite."""
    cost = count_cost(arch)
    x_rob, y_rob = (data.x_val, data.y_val) if settings.robustness_split == "val" else (data.x_test, data.y_test)
    robustness = evaluate_robustness(model, x_rob, y_rob, parse_suite(settings.robustness), device=device,
                                     seed=settings.train.seed, max_images=settings.robustness_images)
    rob = robustness.to_dict()  # JSON-safe: NaN (e.g. relative to a zero clean accuracy) becomes null
    sample_shape = (arch.in_chans, arch.image_size, arch.image_size)
    test_accuracy = evaluate_accuracy(model, data.x_test, data.y_test, device=device)
    return {
        "accuracy": test_accuracy,  # `accuracy` is test accuracy in a trial's report; a search ranks on val
        "test_accuracy": test_accuracy,
        "val_accuracy": evaluate_accuracy(model, data.x_val, data.y_val, device=device),
        "params": cost.params,
        "macs": cost.macs,
        "flops": cost.flops,
        "activation_bytes": cost.activation_bytes,
        "latency_ms": measure_latency(model, sample_shape, batch_size=1, device=device),
        "latency_ms_batch": measure_latency(model, sample_shape, batch_size=settings.latency_batch, device=device),
        "latency_batch": settings.latency_batch,
        # a fresh copy: a training step on the trained model would move its BatchNorm statistics
        "peak_memory_mb": _mebibytes(measure_peak_memory(build_trial_model(arch, data), sample_shape,
                                                          batch_size=settings.train.batch_size, device=device)),
        "robustness": robustness.score,
        "robustness_clean": robustness.clean,
        **{f"robustness_{key}": value for key, value in rob.items() if key in ("components", "relative", "details")},
        "robustness_suite": settings.robustness,
        "robustness_split": settings.robustness_split,
    }


def _mebibytes(n_bytes: int | None) -> float:
    return float("nan") if n_bytes is None else n_bytes / 2**20


def run_trial(arch: ArchConfig, data: Dataset, settings: TrialSettings, *, on_epoch=None,
              progress=None) -> TrialOutcome:
    model = build_trial_model(arch, data)
    device = resolve_device(settings.train.device)
    result = train(model, data, settings.train, on_epoch=on_epoch, progress=progress)
    history = [vars(epoch) for epoch in result.history]
    timing = {"train_seconds": result.train_seconds, "images_per_second": result.images_per_second,
              "epochs": result.epochs}
    if result.status != "ok":
        return TrialOutcome(result.status, timing, model, history,
                            error=f"diverged: the training loss became NaN/inf in epoch {result.epochs}")
    return TrialOutcome("ok", {**timing, **measure_model(model, arch, data, settings, device)}, model, history)
