"""Hypervolume over wall-clock time: TPE with full-budget trials vs TPE + MO-ASHA vs random search.

    python benchmarks/bench_early_stop.py --dataset ../shared/data/cifar10-jpg.zip --train-images 5000 \
        --epochs 9 --minutes 30 --seeds 0,1,2 --out bench-es [--max-macs 5M]

Each arm is one `vitnas search` (2 workers, objectives accuracy,macs, robustness none) stopped with Ctrl-C when its
wall budget ends; every finished trial is in its study. `--train-images N` trains every arm on the same stratified
N of the data set's training images (the search holds a tenth of them out for validation), written once to
OUT/trainN.npz, so that a short wall budget still holds enough trials to compare. Hypervolumes use one reference
point shared by every arm and seed (pareto.reference_point over all completed trials of all runs), and a trial
counts from the moment it finished.
Prints, per run, its trials by state, its rejected proposals and the share of the two workers' time no trial ran;
per arm, the mean hypervolume at each tenth of the budget and the time at which it first reaches the
full-budget arm's final hypervolume (target: MO-ASHA within half the budget); writes OUT/curves.png.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vitnas.nas.data import load_dataset
from vitnas.nas.data.dataset import stratified_holdout
from vitnas.nas.pareto import hypervolume, reference_point
from vitnas.nas.search.study import StudyStore

ARMS = {"tpe-full": ["--sampler", "tpe"],
        "tpe-moasha": ["--sampler", "tpe", "--early-stop", "moasha"],
        "random-full": ["--sampler", "random"]}
DIRECTIONS = ["maximize", "minimize"]


def training_data(args) -> str:
    """The --dataset every arm searches: as given, or a stratified subset of its training images (test split whole)."""
    if args.train_images is None:
        return args.dataset
    path = args.out / f"train{args.train_images}.npz"
    if not path.exists():
        full = load_dataset(args.dataset, val_fraction=0.0)
        _, chosen = stratified_holdout(full.y_train.numpy(), args.train_images / len(full.y_train), seed=0)
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(path, x_train=full.x_train[chosen].numpy(), y_train=full.y_train[chosen].numpy(),
                 x_test=full.x_test.numpy(), y_test=full.y_test.numpy(), classes=np.array(full.classes))
    return str(path)


def run_arm(arm: str, seed: int, args) -> tuple[float, list[tuple[float, list[float]]]]:
    """Start time and (finished_at, [accuracy, macs]) of each completed trial of one stopped search."""
    study = f"{arm}-s{seed}"
    command = [sys.executable, "-m", "vitnas.cli", "search", "--dataset", args.data, "--epochs", str(args.epochs),
               "--objectives", "accuracy,macs", "--robustness", "none", "--workers", "2", "--trials", "100000",
               "--seed", str(seed), "--out", str(args.out), "--study", study, *ARMS[arm],
               *(["--max-macs", args.max_macs] if args.max_macs else [])]
    start = time.time()
    search = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        search.wait(timeout=args.minutes * 60)
    except subprocess.TimeoutExpired:
        os.killpg(search.pid, signal.SIGINT)
        search.wait(timeout=300)
    store = StudyStore.open(args.out / study)
    summary, end = store.summary(), start + args.minutes * 60
    done = [(t.finished_at, [t.values["accuracy"], t.values["macs"]]) for t in summary.trials
            if t.state == "COMPLETE" and t.finished_at is not None and t.finished_at <= end]
    counts = {state: sum(t.state == state for t in summary.trials) for state in ("COMPLETE", "PRUNED", "FAIL")}
    busy = sum(min(t.finished_at or end, end) - t.started_at for t in summary.trials if t.started_at is not None)
    rejected = sum(t.user_attrs.get("outcome") == "rejected" for t in store.study.get_trials())
    print(f"  {study}: {counts}, {rejected} proposals rejected, workers idle {1 - busy / (2 * (end - start)):.0%} "
          "of the budget", flush=True)
    return start, sorted(done)


def curve(start: float, done: list, reference: list[float], times: np.ndarray) -> np.ndarray:
    return np.array([hypervolume([p for at, p in done if at - start <= t], reference, DIRECTIONS)
                     for t in times])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="../shared/data/cifar10-jpg.zip")
    parser.add_argument("--train-images", type=int)
    parser.add_argument("--max-macs", help="passed to every arm's search, e.g. 5M: bounds the slowest trial")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arms", default=",".join(ARMS), help="a comma-separated subset of " + ", ".join(ARMS))
    parser.add_argument("--reference", help="ACCURACY,MACS: a fixed reference point instead of the runs' own, to set "
                                            "these runs beside an earlier run's (its curves.json holds its point)")
    parser.add_argument("--out", type=Path, default=Path("bench-early-stop"))
    args = parser.parse_args()
    args.data = training_data(args)
    arms = [arm for arm in ARMS if arm in args.arms.split(",")]
    runs = {(arm, int(seed)): run_arm(arm, int(seed), args) for seed in args.seeds.split(",") for arm in arms}
    everything = [p for _, done in runs.values() for _, p in done]
    reference = ([float(v) for v in args.reference.split(",")] if args.reference
                 else reference_point(everything, DIRECTIONS))
    times = np.linspace(0, args.minutes * 60, 61)
    curves = {arm: np.mean([curve(*runs[key], reference, times) for key in runs if key[0] == arm], axis=0)
              for arm in arms}
    target = curves["tpe-full"][-1] if "tpe-full" in curves else float("nan")
    print(f"reference point (accuracy, MACs): {reference}; budget {args.minutes:g} min, seeds {args.seeds}")
    print("arm          " + " ".join(f"{t / 60:5.1f}m" for t in times[::6]) + "  reaches tpe-full's final HV at")
    for arm, values in curves.items():
        reached = times[np.argmax(values >= target)] / 60 if (values >= target).any() else float("nan")
        print(f"{arm:12s} " + " ".join(f"{v:6.3g}" for v in values[::6]) + f"  {reached:.1f} min")
    (args.out / "curves.json").write_text(json.dumps({"times_s": times.tolist(), "reference": reference,
                                                      **{arm: v.tolist() for arm, v in curves.items()}}))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6, 4))
    for arm, values in curves.items():
        axis.plot(times / 60, values, label=arm)
    axis.set(xlabel="wall clock (min)", ylabel="hypervolume (accuracy x MACs)", title=f"{Path(args.data).name}, "
             f"{args.epochs} epochs, 2 workers, seeds {args.seeds}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.out / "curves.png", dpi=120)
    print(f"curves: {args.out / 'curves.png'}")


if __name__ == "__main__":
    main()
