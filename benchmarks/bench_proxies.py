"""Do the zero-cost proxies rank this space's architectures by trained accuracy better than params or MACs?

    python benchmarks/bench_proxies.py --data ../shared/data/cifar10-jpg.zip --archs 50 --train-images 5000 --epochs 1
    python benchmarks/bench_proxies.py --studies bench-es/random-full-s0 bench-es/random-full-s1 ...

The first form samples `--archs` architectures from the space (seeded, at most `--max-macs` MACs so that each trains
in seconds), trains each for `--epochs` on a stratified subset of `--train-images` training images and validates on
`--val-images`. The second takes the completed trials of finished searches instead (their configs, their training
and their validation accuracy: e.g. the random-search arms of bench_early_stop.py, uniform samples of the space
trained for a stated budget), so no architecture is trained twice. Either way each architecture is scored untrained
with NASWOT, synflow and MeCo (timed; a trial's own seed and data) and the script prints the Spearman rank
correlation of each proxy, and of params and MACs as baselines, with validation accuracy and its 95 % interval
(published on NAS-Bench-201: synflow 0.74, MeCo 0.89), and the proxies' median time per architecture.
"""
import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from scipy.stats import spearmanr

from vitnas.nas.data import load_dataset
from vitnas.nas.measurements import cost_metrics
from vitnas.nas.proxies import PROXIES, proxy_scores
from vitnas.nas.search.study import StudyStore, config_key
from vitnas.nas.trainer import TrainSettings, train
from vitnas.nas.trial import TrialSettings, bounded, build_trial_model
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.space import load_space


def sampled(args):
    """(arch, data, seed, trained validation accuracy) for `--archs` sampled architectures, trained here."""
    full = load_dataset(args.data, seed=args.seed)
    # a stratified training subset: bounded() cuts val/test, so cut train by swapping it into the test slot
    small = bounded(replace(full, x_test=full.x_train, y_test=full.y_train),
                    TrialSettings(val_images=args.val_images, test_images=args.train_images))
    data = replace(small, x_train=small.x_test, y_train=small.y_test, x_test=small.x_val, y_test=small.y_val)
    print(f"training each for {args.epochs} epoch(s) on {len(data.y_train)} images, validating on "
          f"{len(data.y_val)}, {args.threads} thread(s)")
    space = load_space("metaformer")
    archs = [a for a in space.sample(args.archs * 4, seed=args.seed, image_size=data.image_size,
                                     in_chans=data.in_chans, num_classes=data.num_classes)
             if cost_metrics(a)["macs"] <= args.max_macs][:args.archs]
    for arch in archs:
        model = build_trial_model(arch, data)
        result = train(model, data, TrainSettings(epochs=args.epochs, seed=args.seed, device="cpu"))
        yield arch, data, args.seed, result.val_accuracy


def from_studies(args):
    """(arch, data, seed, validation accuracy) of every completed trial of the `--studies` folders."""
    datasets = {}
    for folder in args.studies:
        meta = json.loads((folder / "study.json").read_text())
        trials = [t for t in StudyStore.open(folder).summary().trials if t.state == "COMPLETE"]
        key = (meta["dataset"], meta["seed"])
        if key not in datasets:
            datasets[key] = load_dataset(meta["dataset"], seed=meta["seed"])
        print(f"{folder}: {len(trials)} completed trials ({meta['dataset']}, budget {meta['budget']})")
        for trial in trials:
            yield (ArchConfig.from_dict(trial.config), datasets[key], trial.seed if trial.seed is not None
                   else meta["seed"], trial.metrics["val_accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/cifar10-jpg.zip")
    parser.add_argument("--studies", type=Path, nargs="+")
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-macs", type=float, default=50e6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, seconds = [], []
    for index, (arch, data, seed, accuracy) in enumerate(from_studies(args) if args.studies else sampled(args)):
        start = time.perf_counter()
        scores = proxy_scores(arch, data, seed=seed)
        seconds.append(time.perf_counter() - start)
        rows.append({**scores, **cost_metrics(arch), "accuracy": accuracy, "key": config_key(arch.to_dict())})
        print(f"{index + 1:3d} acc {accuracy:.3f} MACs {rows[-1]['macs'] / 1e6:6.1f}M "
              + " ".join(f"{n} {scores[n]:.4g}" for n in PROXIES) + f" ({seconds[-1]:.2f} s)", flush=True)
    accuracy = [r["accuracy"] for r in rows]
    distinct = len({r["key"] for r in rows})
    print(f"\n{len(rows)} architectures ({distinct} distinct); proxies' median time per architecture: "
          f"{statistics.median(seconds):.2f} s (max {max(seconds):.2f} s)")
    for name in (*PROXIES, "params", "macs"):
        rho = spearmanr([r[name] for r in rows], accuracy, nan_policy="omit").statistic
        low, high = rho_interval(rho, len(rows))
        print(f"  Spearman rho({name:7s}, val accuracy) = {rho:+.3f}  95% CI [{low:+.2f}, {high:+.2f}]")


def rho_interval(rho: float, n: int) -> tuple[float, float]:
    """The 95 % interval of a Spearman rho over n pairs: Fisher's z with the standard error 1.06 / sqrt(n - 3)
    (Fieller, Hartley and Pearson 1957)."""
    half = 1.959964 * 1.06 / math.sqrt(n - 3)
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    return math.tanh(z - half), math.tanh(z + half)


if __name__ == "__main__":
    main()
