"""Budgets that bound a whole trial: the default trial timeout, and rejecting proposals that cannot finish an epoch.

Sampled architectures differ in cost by four orders of magnitude; one training step of the largest can outlast a
whole time budget. Before training, a proposal's epoch time is estimated as training images x forward MACs divided by
the trial's peak training rate (forward MACs per second while training, measured once per search on dense matrix
products, the fastest work a CPU does). Real models run slower than that peak, so the estimate is a lower bound and
the check only rejects proposals that could not finish one epoch even at peak speed; the trial timeout catches the
rest.
"""
import time
from dataclasses import dataclass

import torch

from vitnas.nas.inference import autocast
from vitnas.nas.trainer import TrainSettings

# The default --trial-timeout under a time budget: three times the budget, and at least a minute beyond it (a small
# budget's trial still starts a worker, builds its model and takes its measurements).
TIMEOUT_FACTOR = 3.0
TIMEOUT_MIN_EXTRA_S = 60.0


def default_trial_timeout(train: TrainSettings) -> float | None:
    """The wall-clock limit of one trial when --trial-timeout is not given: none for an epoch budget, whose
    duration nothing tells before a trial has run."""
    if train.seconds is None:
        return None
    return max(TIMEOUT_FACTOR * train.seconds, train.seconds + TIMEOUT_MIN_EXTRA_S)


def epoch_limit(train: TrainSettings, trial_timeout: float | None) -> float | None:
    """The most seconds one epoch may take: the whole time budget, or the timeout shared by the budget's epochs."""
    if train.seconds is not None:
        return train.seconds
    return None if trial_timeout is None else trial_timeout / train.epochs


def peak_training_rate(threads: int, precision: str, width: int = 512, batch: int = 256, repeats: int = 3) -> float:
    """Forward MACs per second that a training step reaches at best on this CPU with `threads` threads: a stack of
    dense layers, forward and backward, timed after one warm-up step."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        layers = torch.nn.Sequential(*(torch.nn.Linear(width, width, bias=False) for _ in range(4)))
        x = torch.randn(batch, width)
        device = torch.device("cpu")
        best = float("inf")
        for _ in range(repeats + 1):
            start = time.perf_counter()
            with autocast(device, precision):
                layers(x).float().sum().backward()
            best = min(best, time.perf_counter() - start)
        return batch * 4 * width * width / best
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Feasibility:
    """Rejects a proposal whose estimated epoch time at the peak training rate exceeds `epoch_seconds`."""

    epoch_seconds: float
    macs_per_second: float
    train_images: int

    def estimate(self, macs: int) -> float:
        return self.train_images * macs / self.macs_per_second

    def violation(self, costs: dict) -> str | None:
        seconds = self.estimate(costs["macs"])
        if seconds <= self.epoch_seconds:
            return None
        return (f"infeasible for the budget: one epoch would take at least {seconds:,.0f} s at this CPU's peak "
                f"training rate, over the {self.epoch_seconds:g} s an epoch may take")
