"""Generated, learnable images for tests and speed benchmarks: `synthetic[:n=2048,size=32,chans=3,classes=10,seed=0]`.

Each class has a smooth random prototype; an image is its class prototype plus pixel noise, so a small model
learns it in a few epochs. `n` training images and n // 4 test images.
"""
from __future__ import annotations

import numpy as np

from vitnas.nas.data.dataset import Splits, check_size
from vitnas.errors import UserError

DEFAULTS = {"n": 2048, "size": 32, "chans": 3, "classes": 10, "seed": 0}
MAX_SEED = 2**32 - 1  # numpy's seeds, as the CLI's --seed


def parse_synthetic_spec(spec: str) -> dict[str, int]:
    """`synthetic` or `synthetic:key=value,...` into parameters, rejecting unknown keys, non-positive sizes, seeds
    outside 0..2**32-1, more classes than images, and sizes whose generation would not fit in memory."""
    params = dict(DEFAULTS)
    _, _, options = spec.partition(":")
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key not in DEFAULTS or not value.strip().lstrip("-").isdigit():
            raise UserError(f"bad synthetic option '{item}': use synthetic:n=2048,size=32,chans=3,classes=10,seed=0")
        params[key] = int(value)
    if min(params["n"], params["size"], params["chans"], params["classes"]) < 1:
        raise UserError(f"synthetic options n, size, chans and classes must be positive, got {params}")
    if not 0 <= params["seed"] <= MAX_SEED:
        raise UserError(f"synthetic seed must be in 0..{MAX_SEED}, got {params['seed']}")
    if params["classes"] > params["n"]:
        raise UserError(f"synthetic classes ({params['classes']}) must be at most n ({params['n']}): every class "
                        "needs training images")
    # Generation holds float64 prototypes and, per split, about three float64 copies of the images.
    pixels = params["chans"] * params["size"] ** 2
    check_size(8 * (params["classes"] + 3 * (params["n"] + params["n"] // 4)) * pixels, spec)
    return params


def make_synthetic(n: int, size: int, chans: int, classes: int, seed: int) -> Splits:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.0, 1.0, size=(classes, chans, 4, 4))
    # Nearest upsampling of a 4x4 pattern: cheap, and features large enough for any stem to see.
    prototypes = coarse.repeat(-(-size // 4), axis=2).repeat(-(-size // 4), axis=3)[:, :, :size, :size]

    def sample(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count, dtype=np.int64) % classes
        rng.shuffle(labels)
        images = prototypes[labels] + rng.normal(0.0, 0.15, size=(count, chans, size, size))
        return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8), labels

    x_train, y_train = sample(n)
    x_test, y_test = sample(max(1, n // 4))
    return Splits(x_train, y_train, x_test, y_test, classes=[f"class{i}" for i in range(classes)])
