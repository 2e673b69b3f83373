"""Training speed of vitnas models versus timm's implementation of the same architecture, side by side.

Forward + backward images/s (train mode, SGD-free: gradients only) of poolformer_s12 and deit_small at 224x224
(batch 8) and a CIFAR-sized ConvMixer-256/8 (kernel 5, patch 2, 32x32, 10 classes, batch 32), measured in one
process with the two implementations back to back in every round, so machine load hits both alike. The ratio is the
median over rounds of (timm seconds / vitnas seconds), i.e. vitnas speed relative to timm (target >= 1.0); images/s
are medians too. Parameter counts of each pair are checked to be equal first.

timm is not a project dependency: it lives in a separate environment made by benchmarks/setup_bench_env.sh
(/work/main/bench-env: pinned CPU torch 2.13.0, timm --no-deps, a torchvision stub because no CPU torchvision build
exists and timm only needs its names at import time, vitnas installed editable with --no-deps).

    benchmarks/setup_bench_env.sh                        # once
    bench-env/bin/python benchmarks/bench_models.py      # --rounds 7 --steps 1 --threads 2 by default
"""
import argparse
import statistics
import time

import timm
import torch
from timm.models.convmixer import ConvMixer

from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.presets import load_preset


def _convmixer_256_8() -> ArchConfig:
    """The CIFAR ConvMixer-256/8 (kernel 5, patch 2): convmixer_1536_20's wiring at another size."""
    data = load_preset("convmixer_1536_20").to_dict()
    data.update(name="convmixer_256_8", image_size=32, num_classes=10)
    data["stem"]["patch_size"] = 2
    data["stages"] = [{"depth": 8, "width": 256, "mixer": {"kind": "conv", "kernel_size": 5}}]
    return ArchConfig.from_dict(data)


def _pairs():
    """(name, vitnas model, timm model, input shape, batch size)."""
    return [
        ("poolformer_s12", build_model(load_preset("poolformer_s12")), timm.create_model("poolformer_s12"),
         (3, 224, 224), 8),
        ("deit_small", build_model(load_preset("deit_small")), timm.create_model("deit_small_patch16_224"),
         (3, 224, 224), 8),
        ("convmixer_256_8 (k5 p2, 32x32)", build_model(_convmixer_256_8()),
         ConvMixer(dim=256, depth=8, kernel_size=5, patch_size=2, num_classes=10), (3, 32, 32), 32),
    ]


def _step_seconds(model: torch.nn.Module, x: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per model (median reported)")
    parser.add_argument("--steps", type=int, default=1, help="forward+backward steps per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, timm {timm.__version__}, {args.threads} threads, "
          f"{args.rounds} rounds x {args.steps} steps, forward+backward, train mode")
    print(f"{'model':34s} {'batch':>5s} {'vitnas img/s':>12s} {'timm img/s':>11s} {'ratio':>6s}")
    for name, ours, theirs, shape, batch in _pairs():
        n_ours, n_theirs = (sum(p.numel() for p in m.parameters()) for m in (ours, theirs))
        assert n_ours == n_theirs, f"{name}: params differ ({n_ours} vs {n_theirs})"
        ours.train(), theirs.train()
        x = torch.randn(batch, *shape)
        _step_seconds(ours, x, 1), _step_seconds(theirs, x, 1)  # warm-up: allocator, kernel selection
        ours_s, theirs_s = [], []
        for _ in range(args.rounds):  # back to back in each round, so a load spike mostly hits one pair
            ours_s.append(_step_seconds(ours, x, args.steps))
            theirs_s.append(_step_seconds(theirs, x, args.steps))
        ratio = statistics.median(t / o for o, t in zip(ours_s, theirs_s))
        print(f"{name:34s} {batch:5d} {batch / statistics.median(ours_s):12.1f} "
              f"{batch / statistics.median(theirs_s):11.1f} {ratio:6.2f}", flush=True)


if __name__ == "__main__":
    main()
