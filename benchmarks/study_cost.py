"""How long a study profile trains, estimated before running it: each arm's 1-thread training throughput (images/s,
forward + backward + AdamW on a batch of random 32x32 images) x runs x epochs x training images. Used to size the
shipped `full` profiles to about 10 minutes on 2 idle cores (evaluation and start-up come on top).

    python benchmarks/study_cost.py full poolformer-token-mixer convmixer-kernel ...
"""
import sys
import time

import torch
import torch.nn.functional as F

from vitnas.nas.ablation.plan import plan_runs
from vitnas.nas.ablation.study import load_study
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.model import build_model

CIFAR_SHAPE = (32, 3, 10)  # image size, channels, classes of the shipped full profiles
CIFAR_TRAIN = 45_000  # training images once the 10 % validation split is held out


def images_per_second(arch: dict, batch_size: int, steps: int = 4) -> float:
    """Training throughput on one thread, timed after two warm-up steps."""
    model = build_model(ArchConfig.from_dict(arch))
    optimizer = torch.optim.AdamW(model.parameters())
    x, y = torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))
    for step in range(2 + steps):
        if step == 2:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


def training_seconds(name: str, profile: str) -> tuple[float, dict[str, int]]:
    """Single-thread seconds of training for every run of the study's profile, and each arm's images/s."""
    study = load_study(name)
    chosen = study.profiles[profile]
    runs = plan_runs(study, chosen, CIFAR_SHAPE)
    images = chosen.train_images or CIFAR_TRAIN
    rates = {arm: images_per_second(first.arch, first.train.get("batch_size", 128))
             for arm in study.arms for first in [next(run for run in runs if run.arm == arm)]}
    seconds = sum(run.train["epochs"] * images / rates[run.arm] for run in runs)
    return seconds, {arm: round(rate) for arm, rate in rates.items()}


if __name__ == "__main__":
    torch.set_num_threads(1)  # one thread per run, two runs at a time: the shipped profiles' --workers 2
    profile, total = sys.argv[1], 0.0
    for name in sys.argv[2:]:
        seconds, rates = training_seconds(name, profile)
        total += seconds
        print(f"{name}: images/s {rates}; {seconds / 60:.1f} core-min -> {seconds / 120:.1f} min on 2 workers",
              flush=True)
    print(f"total {total / 120:.1f} min on 2 workers")
