"""The one training loop (search, ablations, export): AdamW, warm-up + cosine, label smoothing, gradient clipping,
random crop + flip on batched uint8 tensors, all on the training device.

Kept direct on purpose (data already on the device, index batches out of it, no DataLoader): on a small CPU the
per-step overhead is what separates a trainer from a hand-written loop. The model takes float images in [0, 1].
Deterministic on the CPU for a seed: the data order and augmentation come from one seeded torch.Generator and the
model's own randomness (dropout, drop-path) from the global generator, seeded inside a forked RNG state.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vitnas.errors import UserError
from vitnas.nas.data import Dataset
from vitnas.nas.inference import as_input, autocast, check_precision, evaluate_accuracy, memory_format, use_precision
from vitnas.nas.outcome import Outcome

DEFAULT_EPOCHS = 10
# On a GPU, reading the loss forces a sync; check for NaN/inf every this many steps there (every step on the CPU).
_GPU_SYNC_EVERY = 16


@dataclass(frozen=True)
class TrainSettings:
    """How to train. Give `epochs` or `seconds` (wall clock), not both; neither means DEFAULT_EPOCHS epochs."""

    epochs: int | None = None
    seconds: float | None = None
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 0.1  # fraction of the budget spent ramping the learning rate up from 0
    label_smoothing: float = 0.1
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    crop_padding: int | None = None  # random-crop translation in pixels; None: image_size // 8; 0: off
    flip: bool | None = None  # random horizontal flip; None: only if the data set says mirroring keeps the class
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    compile: bool = False  # torch.compile the model (GPU runs; it costs compile time up front)
    eval_batch_size: int = 256  # every evaluation (validation, test, robustness suite) batches this many images
    precision: str = "auto"  # auto | bf16 | fp32 autocast for training and evaluation (nas.inference)

    def __post_init__(self) -> None:
        if self.epochs is not None and self.seconds is not None:
            raise UserError("give either an epoch budget or a time budget, not both")
        if self.epochs is None and self.seconds is None:
            object.__setattr__(self, "epochs", DEFAULT_EPOCHS)
        if self.epochs is not None and self.epochs < 1:
            raise UserError(f"epochs must be at least 1, got {self.epochs}")
        if self.seconds is not None and self.seconds <= 0:
            raise UserError(f"the time budget must be positive, got {self.seconds} s")
        if self.batch_size < 1 or self.lr <= 0 or not 0.0 <= self.warmup < 1.0 or self.grad_clip < 0:
            raise UserError("batch_size >= 1, lr > 0, warmup in [0, 1) and grad_clip >= 0 are required")
        check_precision(self.precision)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's batches
    train_accuracy: float  # on the augmented training batches
    val_accuracy: float
    seconds: float  # wall time of the epoch, its validation included
    images_per_second: float  # training images per second of the epoch's training part (validation excluded)


@dataclass(frozen=True)
class ProgressUpdate:
    """What `progress` receives during training (every step on the CPU, every few steps on a GPU)."""

    epoch: int
    step: int
    fraction: float  # of the budget (steps or seconds) used, 0..1
    loss: float  # running mean over the current epoch
    accuracy: float  # running training accuracy over the current epoch
    images_per_second: float


@dataclass(frozen=True)
class TrainResult:
    status: Outcome  # OK or DIVERGED
    epochs: int  # epochs run (a time budget may end with a partial one, which counts)
    val_accuracy: float  # after the last epoch; 0.0 when diverged
    train_seconds: float  # wall time of the whole call
    images_per_second: float  # training images per second of training steps
    history: list[EpochMetrics] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but no CUDA GPU is available: use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"unknown device '{name}': use auto, cpu or cuda")
    return torch.device(name)


def augment(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random translation by up to `padding` pixels (zero fill, i.e. crop of a padded image) and optional
    horizontal flip, per image, on a uint8 batch (N, C, H, W) on its device, with one gather."""
    n, channels, height, width = x.shape
    mirrored = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(x.device) if flip else None
    if padding == 0:
        return x if mirrored is None else torch.where(mirrored[:, None, None, None], x.flip(3), x)
    shifts = torch.randint(0, 2 * padding + 1, (2, n, 1), generator=generator, device=generator.device).to(x.device)
    rows = torch.arange(height, device=x.device) + shifts[0]  # (N, H) rows in the padded image
    cols = torch.arange(width, device=x.device) + shifts[1]  # (N, W)
    if mirrored is not None:
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    padded = F.pad(x, (padding, padding, padding, padding)).flatten(2)  # (N, C, H' * W')
    # Pixel (r, c) of a padded image sits at r * W' + c: one gather along that axis, shared by every channel.
    index = (rows[:, :, None] * (width + 2 * padding) + cols[:, None, :]).view(n, 1, -1).expand(n, channels, -1)
    return padded.gather(2, index).view(n, channels, height, width)


def _learning_rate(settings: TrainSettings, fraction: float) -> float:
    """Linear warm-up over the first `warmup` of the budget, then cosine decay to zero."""
    if fraction < settings.warmup:
        return settings.lr * fraction / settings.warmup
    progress = (fraction - settings.warmup) / (1.0 - settings.warmup)
    return settings.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.AdamW:
    # Weight decay on weight matrices and kernels only: decaying norm gains and biases only hurts.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.99), foreach=True)  # fewer, larger kernels


def train(model: nn.Module, data: Dataset, settings: TrainSettings, *,
          on_epoch: Callable[[EpochMetrics], None] | None = None,
          progress: Callable[[ProgressUpdate], None] | None = None, reserve_images: int = 0) -> TrainResult:
    """Trains `model` in place on data.x_train and reports data.x_val accuracy after each epoch. Under a time budget,
    `reserve_images` is the forward passes the caller runs after training within the same budget."""
    device = resolve_device(settings.device)
    on_gpu = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if on_gpu else []), use_precision(settings.precision):
        torch.manual_seed(settings.seed)
        return _train(model, data, settings, device, on_epoch, progress, reserve_images)


def _train(model, data, settings, device, on_epoch, progress, reserve_images) -> TrainResult:
    start = time.perf_counter()
    on_gpu = device.type == "cuda"
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    model.to(device, memory_format=memory_format(device)).train()
    step_model = torch.compile(model) if settings.compile else model
    optimizer = _optimizer(model, settings)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    padding = data.image_size // 8 if settings.crop_padding is None else settings.crop_padding
    flip = data.flip_invariant if settings.flip is None else settings.flip

    x_train, y_train = data.x_train.to(device), data.y_train.to(device)  # the whole training set lives on the device
    n = len(y_train)
    steps_per_epoch = max(1, n // settings.batch_size)  # drop the ragged last batch: one compiled shape, even steps
    total_steps = steps_per_epoch * settings.epochs if settings.epochs is not None else None
    sync_every = _GPU_SYNC_EVERY if on_gpu else 1

    # A time budget bounds the whole trial, not only its steps: training ends early enough for the last validation
    # and the caller's measurements, each image estimated at a third of a training image's measured time (a backward
    # pass costs about two forwards; evaluation needs no gradients, so the estimate errs long). Training keeps at
    # least half the budget: a model whose measurements need more is the trial timeout's to stop.
    after_training = len(data.y_val) + reserve_images

    def training_seconds() -> float:
        reserve = after_training * step_seconds / (3 * images_seen) if images_seen else 0.0
        return settings.seconds - min(reserve, settings.seconds / 2)

    def budget_used() -> float:
        return step / total_steps if total_steps is not None else (time.perf_counter() - start) / training_seconds()

    history: list[EpochMetrics] = []
    step, step_seconds, images_seen, epoch = 0, 0.0, 0, 0
    out_of_time = False
    while not out_of_time and (total_steps is None or step < total_steps):
        epoch += 1
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        batches = epoch_images = 0
        order = torch.randperm(n, generator=generator, device=generator.device).to(device)
        for batch_index in range(steps_per_epoch):
            step_start = time.perf_counter()
            learning_rate = _learning_rate(settings, budget_used())
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            indices = order[batch_index * settings.batch_size:(batch_index + 1) * settings.batch_size]
            images = as_input(augment(x_train[indices], padding, flip, generator), device)
            labels = y_train[indices]
            with autocast(device):
                logits = step_model(images)
                loss = F.cross_entropy(logits.float(), labels, label_smoothing=settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
            optimizer.step()
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(dim=1) == labels).sum()
            batches += 1
            epoch_images += len(labels)
            step += 1
            images_seen += len(labels)
            if step % sync_every == 0 or batch_index == steps_per_epoch - 1:
                if not math.isfinite(loss.item()):
                    return TrainResult(Outcome.DIVERGED, epoch, 0.0, time.perf_counter() - start,
                                       images_seen / max(step_seconds, 1e-9), history)
            step_seconds += time.perf_counter() - step_start
            if progress is not None and step % sync_every == 0:
                progress(ProgressUpdate(epoch, step, min(1.0, budget_used()), loss_sum.item() / batches,
                                        correct.item() / epoch_images,
                                        images_seen / max(step_seconds, 1e-9)))
            if settings.seconds is not None and time.perf_counter() - start >= training_seconds():
                out_of_time = True
                break
        epoch_train_seconds = time.perf_counter() - epoch_start
        val_accuracy = evaluate_accuracy(model, data.x_val, data.y_val, batch_size=settings.eval_batch_size,
                                         device=device)
        metrics = EpochMetrics(epoch, loss_sum.item() / batches, correct.item() / epoch_images, val_accuracy,
                               time.perf_counter() - epoch_start, epoch_images / max(epoch_train_seconds, 1e-9))
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics)  # may raise (a pruned trial): that ends training, by design
    return TrainResult(Outcome.OK, epoch, history[-1].val_accuracy, time.perf_counter() - start,
                       images_seen / max(step_seconds, 1e-9), history)
