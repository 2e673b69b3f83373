"""What each measurement declared in nas/metrics.py does: a function (model, arch, data, settings, device) -> metrics.

`model` is the trial's model (Normalize + MetaFormer) on `device`, taking float images in [0, 1]; `settings` is the
trial's TrialSettings. Each function returns plain numbers (or dicts of them) under the keys its metrics declare.
"""
import torch
from torch import nn

from vitnas.nas.cost import count_cost, measure_latency, measure_peak_memory
from vitnas.nas.data import Dataset
from vitnas.nas.inference import evaluate_accuracy
from vitnas.nas.trial import TrialSettings, normalized_model
from vitnas.search_spaces.config import ArchConfig


def _sample_shape(arch: ArchConfig) -> tuple[int, int, int]:
    return arch.in_chans, arch.image_size, arch.image_size


def cost_metrics(arch: ArchConfig) -> dict:
    """The cost metrics, counted without building a real model (the search counts every proposal with it)."""
    counted = count_cost(arch)
    return {"params": counted.params, "macs": counted.macs, "flops": counted.flops,
            "activation_bytes": counted.activation_bytes}


def cost(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings, device: torch.device) -> dict:
    return cost_metrics(arch)


def accuracy(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings, device: torch.device) -> dict:
    return {"val_accuracy": evaluate_accuracy(model, data.x_val, data.y_val,
                                              batch_size=settings.train.eval_batch_size, device=device)}


def test(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings, device: torch.device) -> dict:
    test_accuracy = evaluate_accuracy(model, data.x_test, data.y_test, batch_size=settings.train.eval_batch_size,
                                      device=device)
    return {"accuracy": test_accuracy,  # `accuracy` is test accuracy in a trial's report; a search ranks on val
            "test_accuracy": test_accuracy}


def test_work(data: Dataset, settings: TrialSettings) -> int:
    return len(data.y_test)


def latency(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings, device: torch.device) -> dict:
    shape = _sample_shape(arch)
    return {"latency_ms": measure_latency(model, shape, batch_size=1, device=device),
            "latency_ms_batch": measure_latency(model, shape, batch_size=settings.latency_batch, device=device),
            "latency_batch": settings.latency_batch}


def memory(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings, device: torch.device) -> dict:
    # a fresh copy: a training step on the trained model would move its BatchNorm statistics
    fresh = normalized_model(arch, data.mean, data.std)
    peak = measure_peak_memory(fresh, _sample_shape(arch), batch_size=settings.train.batch_size, device=device)
    return {"peak_memory_mb": peak / 2**20}


def _robustness_split(data: Dataset, settings: TrialSettings) -> tuple[torch.Tensor, torch.Tensor]:
    return (data.x_val, data.y_val) if settings.robustness_split == "val" else (data.x_test, data.y_test)


def robustness(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings,
               device: torch.device) -> dict:
    # the suite pulls in matplotlib (for its heat map): loaded only by trials that measure robustness
    from vitnas.nas.robustness import evaluate_robustness, parse_suite

    x, y = _robustness_split(data, settings)
    result = evaluate_robustness(model, x, y, parse_suite(settings.robustness), device=device,
                                 seed=settings.train.seed, batch_size=settings.train.eval_batch_size,
                                 max_images=settings.robustness_images)
    return {"robustness": result.score, "robustness_clean": result.clean,
            "robustness_components": result.components, "robustness_relative": result.relative,
            "robustness_details": result.details, "robustness_suite": settings.robustness,
            "robustness_split": settings.robustness_split}


def robustness_work(data: Dataset, settings: TrialSettings) -> int:
    from vitnas.nas.robustness import parse_suite
    _, y = _robustness_split(data, settings)
    return parse_suite(settings.robustness).forward_images(min(len(y), settings.robustness_images),
                                                           settings.train.eval_batch_size)


def proxies(model: nn.Module, arch: ArchConfig, data: Dataset, settings: TrialSettings, device: torch.device) -> dict:
    # measured on a freshly initialised copy (the trial's own initial weights: same seed), whenever it is taken
    from vitnas.nas.proxies import proxy_scores

    return proxy_scores(arch, data, seed=settings.train.seed, device=device)
