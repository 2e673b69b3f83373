"""The part of an exported train.py that is not vitnas's recipe: reading an ImageFolder with PIL, the epoch loop
around the recipe's step, and the command line.

Its source is lifted into train.py, where vitnas is not installed, so it imports only the standard library, PIL and
torch; the recipe it calls (augment, _learning_rate, _optimizer from nas/trainer.py; as_input, autocast,
evaluate_accuracy from nas/inference.py; channel_moments from nas/data) is lifted beside it, not restated. The loop
is its own because the trainer's (nas/trainer._train) also runs time budgets, progress callbacks, divergence checks
and torch.compile, which a standalone script does not need. The step inside it is the trainer's, line for line.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from vitnas.nas.data.dataset import channel_moments
from vitnas.nas.data.imagefolder import IMAGE_SUFFIXES
from vitnas.nas.inference import as_input, autocast, evaluate_accuracy, memory_format
from vitnas.nas.trainer import _learning_rate, _optimizer, augment

# vitnas holds out this fraction of each class of the training images for validation (nas.data.load_dataset).
VAL_FRACTION = 0.1


def load_image(path: Path, side: int, channels: int) -> torch.Tensor:
    """uint8 (channels, side, side); another size has its shorter side resized to `side` (bilinear) and is
    center-cropped, as vitnas's ImageFolder reader does."""
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (side, side):
            scale = side / min(image.size)
            width, height = max(side, round(image.width * scale)), max(side, round(image.height * scale))
            image = image.resize((width, height), Image.Resampling.BILINEAR)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.crop((left, top, left + side, top + side))
        pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.view(side, side, channels).permute(2, 0, 1)


def read_split(folder: Path, classes: list[str], side: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, side, side) uint8 and int64 labels of folder/<class>/<image>, labels numbered as `classes`."""
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted((folder / name).iterdir()) if (folder / name).is_dir() else []
        for path in files:
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                images.append(load_image(path, side, channels))
                labels.append(label)
    if not images:
        raise SystemExit(f"error: {folder}: no images in its class folders")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def hold_out(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, held out): round(fraction * n) random images of each class of n images, drawn with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    held = torch.zeros(len(labels), dtype=torch.bool)
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        held[members[torch.randperm(len(members), generator=generator)][:round(fraction * len(members))]] = True
    return (~held).nonzero().flatten(), held.nonzero().flatten()


def read_image_folder(root: Path, side: int, channels: int, num_classes: int, seed: int) -> dict[str, tuple]:
    """train/<class>/* (a validation share held out per class) and test/<class>/* or val/<class>/*."""
    train = root / "train"
    test = root / "test" if (root / "test").is_dir() else root / "val"
    if not train.is_dir() or not test.is_dir():
        raise SystemExit(f"error: {root}: expected an ImageFolder with train/<class>/ and test/<class>/ (or val/)")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) != num_classes:
        raise SystemExit(f"error: {train} has {len(classes)} class folders, but this model has {num_classes} classes")
    x, y = read_split(train, classes, side, channels)
    kept, held = hold_out(y, VAL_FRACTION, seed)
    return {"train": (x[kept], y[kept]), "val": (x[held], y[held]), "test": read_split(test, classes, side, channels)}


def fit(model: nn.Module, splits: dict[str, tuple], settings, device: torch.device) -> None:
    """vitnas's training step in a plain epoch loop; prints validation accuracy after every epoch."""
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    model.to(device, memory_format=memory_format(device)).train()
    optimizer = _optimizer(model, settings)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    x_train, y_train = (t.to(device) for t in splits["train"])
    steps_per_epoch = max(1, len(y_train) // settings.batch_size)  # the ragged last batch is dropped, as in vitnas
    total_steps = steps_per_epoch * settings.epochs
    for epoch in range(1, settings.epochs + 1):
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        order = torch.randperm(len(y_train), generator=generator, device=generator.device).to(device)
        for batch in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(settings, ((epoch - 1) * steps_per_epoch + batch) / total_steps)
            indices = order[batch * settings.batch_size:(batch + 1) * settings.batch_size]
            images = as_input(augment(x_train[indices], settings.crop_padding, settings.flip, generator), device)
            with autocast(device):
                loss = F.cross_entropy(model(images).float(), y_train[indices], label_smoothing=settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, settings.grad_clip)
            optimizer.step()
            loss_sum += loss.detach()
        accuracy = evaluate_accuracy(model, *splits["val"], batch_size=settings.eval_batch_size, device=device)
        print(f"epoch {epoch}/{settings.epochs}: train loss {loss_sum.item() / steps_per_epoch:.4f}, "
              f"val accuracy {accuracy:.4f}, {time.perf_counter() - start:.2f} s", flush=True)


def main(build_model: Callable[..., nn.Module], config: dict, settings) -> None:
    """The command line of train.py: train build_model() from scratch on an ImageFolder with `settings`."""
    parser = argparse.ArgumentParser(description="Train this exported model from scratch with the recipe of the "
                                                 "vitnas run it came from; prints validation accuracy per epoch.")
    parser.add_argument("--data", type=Path, required=True,
                        help="ImageFolder: train/<class>/<image> and test/<class>/<image> (or val/)")
    parser.add_argument("--epochs", type=int, default=settings.epochs, help=f"default {settings.epochs}")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one) | cpu | cuda | cuda:N")
    parser.add_argument("--seed", type=int, default=settings.seed, help=f"default {settings.seed}")
    parser.add_argument("--save", type=Path, help="write the trained weights (a state dict) to this file")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    settings = dataclasses.replace(settings, epochs=args.epochs, seed=args.seed)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    splits = read_image_folder(args.data, config["image_size"], config["in_chans"], config["num_classes"],
                               settings.seed)
    torch.manual_seed(settings.seed)
    model = build_model(*channel_moments(splits["train"][0]))  # normalised with the training data's statistics
    fit(model, splits, settings, device)
    test_accuracy = evaluate_accuracy(model, *splits["test"], batch_size=settings.eval_batch_size, device=device)
    print(f"test accuracy {test_accuracy:.4f}")
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"weights saved to {args.save}")
