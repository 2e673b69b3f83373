"""bf16 autocast against float32 on this CPU, side by side: accuracy at equal epochs and training throughput.

    python benchmarks/bench_bf16.py --data ../shared/data/cifar10-jpg.zip --seeds 0,1,2 --epochs 10

Trains the space's default model with `--precision fp32` and `bf16` for each seed (same seed: same initial weights,
data order and augmentation), on a stratified subset of `--train-images` training images (0: all), and prints per
precision the validation accuracy (mean and standard deviation over seeds) and the training images per second, and
the paired bf16 - fp32 difference with its 95 % t-interval.
Says whether this CPU has native bf16 (what `--precision auto` follows); without it bf16 is emulated and slower.
"""
import argparse
import statistics
from dataclasses import replace

import torch

from vitnas.nas.ablation.stats import paired
from vitnas.nas.data import load_dataset
from vitnas.nas.inference import native_bf16_cpu
from vitnas.nas.trainer import TrainSettings, train
from vitnas.nas.trial import TrialSettings, bounded, build_trial_model
from vitnas.search_spaces.space import load_space


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/cifar10-jpg.zip")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-images", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"native bf16 on this CPU: {native_bf16_cpu()} (torch {torch.__version__}, {args.threads} threads)")
    results: dict[str, list[tuple[float, float]]] = {"fp32": [], "bf16": []}
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        data = load_dataset(args.data, seed=seed)
        if args.train_images:  # a stratified training subset, cut the way a search cuts its test split
            cut = bounded(replace(data, x_test=data.x_train, y_test=data.y_train),
                          TrialSettings(test_images=args.train_images))
            data = replace(data, x_train=cut.x_test, y_train=cut.y_test)
        arch = load_space("metaformer").default_config(data.image_size, data.in_chans, data.num_classes)
        for precision in results:
            result = train(build_trial_model(arch, data), data,
                           TrainSettings(epochs=args.epochs, seed=seed, device="cpu", precision=precision))
            results[precision].append((result.val_accuracy, result.images_per_second))
            print(f"seed {seed} {precision}: val accuracy {result.val_accuracy:.4f}, "
                  f"{result.images_per_second:,.0f} img/s", flush=True)
    print(f"\n{len(data.y_train)} training images, {args.epochs} epochs, {len(data.y_val)} validation images")
    for precision, rows in results.items():
        accuracy = [a for a, _ in rows]
        spread = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
        print(f"  {precision}: val accuracy {statistics.mean(accuracy):.4f} +- {spread:.4f}, "
              f"{statistics.mean(s for _, s in rows):,.0f} img/s")
    difference = paired(*({seed: a for seed, (a, _) in zip(seeds, results[p])} for p in ("bf16", "fp32")))
    interval = "" if difference.ci is None else f", 95 % interval [{difference.ci[0]:+.4f}, {difference.ci[1]:+.4f}]"
    print(f"  bf16 - fp32 val accuracy, paired by seed: {difference.mean:+.4f}{interval}")
    speedup = statistics.mean(s for _, s in results["bf16"]) / statistics.mean(s for _, s in results["fp32"])
    print(f"  bf16 / fp32 throughput: {speedup:.2f}x")


if __name__ == "__main__":
    main()
