"""Trainer speed: throughput against a minimal hand-written loop, and achieved FLOP/s against the matmul peak.

    python benchmarks/bench_trainer.py [--rounds 5] [--batch-size 128] [--images 1024]

1. `vitnas.nas.trainer.train` (its defaults: crop + flip augmentation, label smoothing, gradient clipping,
   warm-up + cosine, NaN checks) against a bare loop (index a batch, forward, cross-entropy, backward, AdamW step)
   training the same model on the same data at the same batch size, alternating step by step in one process so both
   see the same load from other users of the machine; the median of per-epoch ratios is printed (target >= 0.95).
2. Training FLOP/s for that model (FLOPs of one forward + backward counted by torch's FlopCounterMode) as a fraction
   of the fp32 matmul peak (a 2048^2 torch.mm) measured in the same round, and a profile of where a training step
   spends its time.
3. On a GPU, if one is present, the same with bf16 autocast, channels-last and the data on the device.

The model is the search space's default architecture for 32x32 RGB with 10 classes (Normalize + build_model).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vitnas.nas.data import Dataset, Normalize, load_dataset
from vitnas.nas.trainer import TrainSettings, train
from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.space import load_space

_MATMUL_OPS = ("mm", "addmm", "bmm", "matmul", "linear", "convolution", "conv", "baddbmm")


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of a square torch.mm over a few tries."""
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BareLoop:
    """The minimal loop a person would write (index a batch, forward, cross-entropy, backward, AdamW step), run one
    step per call so that it can interleave with the trainer's steps through the trainer's `progress` hook."""

    def __init__(self, model: nn.Module, data: Dataset, batch_size: int, device: torch.device) -> None:
        self.model, self.batch_size, self.device = model.to(device), batch_size, device
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        self.x, self.y = data.x_train.to(device), data.y_train.to(device)
        self.order, self.position = torch.randperm(len(self.y), device=device), 0
        self.seconds, self.images = 0.0, 0

    def step(self, _update=None) -> None:
        if self.position + self.batch_size > len(self.y):
            self.order, self.position = torch.randperm(len(self.y), device=self.device), 0
        indices = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        _sync(self.device)
        start = time.perf_counter()
        images = self.x[indices].float().div_(255.0)
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss = F.cross_entropy(self.model(images).float(), self.y[indices])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        _sync(self.device)
        self.seconds += time.perf_counter() - start
        self.images += self.batch_size

    def images_per_second(self) -> float:
        rate = self.images / self.seconds
        self.seconds, self.images = 0.0, 0
        return rate


def training_flops_per_image(model: nn.Module, data: Dataset, batch_size: int, device: torch.device) -> float:
    images = data.x_train[:batch_size].to(device).float() / 255.0
    with FlopCounterMode(display=False) as counter:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model(images).float().sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch_size


def matmul_time_share(model: nn.Module, data: Dataset,
                      settings: TrainSettings) -> tuple[float, list[tuple[str, float]]]:
    """Share of the operator time of one trainer epoch on the CPU spent in matmul/conv kernels, and the five
    costliest operators."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        train(model, data, settings)
    events = [e for e in profile.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if any(op in e.key for op in _MATMUL_OPS))
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:5]
    return matmul / total, [(e.key, e.self_cpu_time_total / total) for e in top]


def compare(data: Dataset, model: nn.Module, device: torch.device, rounds: int, batch_size: int) -> None:
    peak_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    flops = training_flops_per_image(copy.deepcopy(model).to(device), data, batch_size, device)
    print(f"\n== {device.type}: model {sum(p.numel() for p in model.parameters()):,} params, "
          f"{flops / 1e6:.1f} MFLOP per training image, batch {batch_size}")
    trainer_model, bare = copy.deepcopy(model), BareLoop(copy.deepcopy(model), data, batch_size, device)
    settings = TrainSettings(epochs=1, batch_size=batch_size, device=str(device), flip=True)
    # The bare loop takes one step inside every `progress` call (after every trainer step on the CPU, every 16th on a
    # GPU), which the trainer leaves out of its own images/s: the two alternate step by step, so both see the same
    # load from other users of the machine. Each round also measures the peak just before.
    peaks, ratios, utilisations = [], [], []
    for round_index in range(rounds + 1):  # round 0 warms everything up and is not counted
        peak = matmul_peak(device, peak_dtype, repeats=3)
        trainer_rate = train(trainer_model, data, settings, progress=bare.step).images_per_second
        bare_rate = bare.images_per_second()
        if round_index:
            peaks.append(peak)
            ratios.append(trainer_rate / bare_rate)
            utilisations.append(trainer_rate * flops / peak)
            print(f"round {round_index}: {peak_dtype} matmul peak {peak / 1e9:6.1f} GFLOP/s, "
                  f"trainer {trainer_rate:6.0f} img/s, bare loop {bare_rate:6.0f} img/s, "
                  f"ratio {trainer_rate / bare_rate:.3f}")
    print(f"ratio trainer / bare loop (median of rounds): {statistics.median(ratios):.3f}  (target >= 0.95)")
    quietest = peaks.index(max(peaks))  # the round with the highest peak had the machine most to itself
    print(f"training FLOP/s as a fraction of the matmul peak: median of rounds {statistics.median(utilisations):.1%}; "
          f"quietest round (peak {peaks[quietest] / 1e9:.0f} GFLOP/s) {utilisations[quietest]:.1%} "
          f"at ratio {ratios[quietest]:.3f}")
    if device.type == "cpu":
        share, top = matmul_time_share(trainer_model, data, settings)
        print(f"operator time in matmul/conv kernels: {share:.0%}; costliest operators: "
              + ", ".join(f"{name} {part:.0%}" for name, part in top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="counted epochs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=1024, help="synthetic 32x32 RGB training images")
    args = parser.parse_args()
    data = load_dataset(f"synthetic:n={args.images},size=32,chans=3,classes=10", val_fraction=0.05)
    torch.manual_seed(0)
    config = load_space("metaformer").default_config(data.image_size, data.in_chans, data.num_classes)
    model = nn.Sequential(Normalize(data.mean, data.std), build_model(config))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {len(data.x_train)} training images, "
          f"model: the search space's default for 32x32x3, stages {config.to_dict()['stages']}")
    compare(data, model, torch.device("cpu"), args.rounds, args.batch_size)
    if torch.cuda.is_available():
        compare(data, model, torch.device("cuda"), args.rounds, args.batch_size)
    else:
        print("\n== cuda: skipped (no GPU on this machine)")


if __name__ == "__main__":
    main()
