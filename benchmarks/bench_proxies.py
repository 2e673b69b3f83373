"""Do the zero-cost proxies rank this space's architectures by trained accuracy better than params or MACs?

    python benchmarks/bench_proxies.py --data ../shared/data/cifar10-jpg.zip --archs 50 --train-images 5000 --epochs 1

Samples `--archs` architectures from the space (seeded, at most `--max-macs` MACs so that each trains in seconds),
scores each untrained with NASWOT, synflow and MeCo (timed), trains it for `--epochs` on a stratified subset of
`--train-images` training images and validates on `--val-images`. Prints the Spearman rank correlation of each
proxy, and of params and MACs as baselines, with validation accuracy (published on NAS-Bench-201: synflow 0.74,
MeCo 0.89), and the proxies' median time per architecture.
"""
import argparse
import statistics
import time
from dataclasses import replace

import torch
from scipy.stats import spearmanr

from vitnas.nas.data import load_dataset
from vitnas.nas.measurements import cost_metrics
from vitnas.nas.proxies import PROXIES, proxy_scores
from vitnas.nas.trainer import TrainSettings, train
from vitnas.nas.trial import TrialSettings, bounded, build_trial_model
from vitnas.search_spaces.space import load_space


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/cifar10-jpg.zip")
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-macs", type=float, default=50e6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    full = load_dataset(args.data, seed=args.seed)
    # a stratified training subset: bounded() cuts val/test, so cut train by swapping it into the test slot
    small = bounded(replace(full, x_test=full.x_train, y_test=full.y_train),
                    TrialSettings(val_images=args.val_images, test_images=args.train_images))
    data = replace(small, x_train=small.x_test, y_train=small.y_test, x_test=small.x_val, y_test=small.y_val)
    space = load_space("metaformer")
    archs = [a for a in space.sample(args.archs * 4, seed=args.seed, image_size=data.image_size,
                                     in_chans=data.in_chans, num_classes=data.num_classes)
             if cost_metrics(a)["macs"] <= args.max_macs][:args.archs]
    rows, seconds = [], []
    for index, arch in enumerate(archs):
        start = time.perf_counter()
        scores = proxy_scores(arch, data, seed=args.seed)
        seconds.append(time.perf_counter() - start)
        model = build_trial_model(arch, data)
        result = train(model, data, TrainSettings(epochs=args.epochs, seed=args.seed, device="cpu"))
        rows.append({**scores, **cost_metrics(arch), "accuracy": result.val_accuracy})
        print(f"{index + 1:3d}/{len(archs)} acc {result.val_accuracy:.3f} MACs {rows[-1]['macs'] / 1e6:6.1f}M "
              + " ".join(f"{n} {scores[n]:.4g}" for n in PROXIES) + f" ({seconds[-1]:.2f} s)", flush=True)
    accuracy = [r["accuracy"] for r in rows]
    print(f"\n{len(rows)} architectures, {len(data.y_train)} training images, {args.epochs} epoch(s), "
          f"{len(data.y_val)} validation images, {args.threads} thread(s)")
    print(f"proxies' median time per architecture: {statistics.median(seconds):.2f} s (max {max(seconds):.2f} s)")
    for name in (*PROXIES, "params", "macs"):
        rho = spearmanr([r[name] for r in rows], accuracy, nan_policy="omit").statistic
        print(f"  Spearman rho({name:7s}, val accuracy) = {rho:+.3f}")


if __name__ == "__main__":
    main()
