"""An export and its train.py against `vitnas train`: files, sizes, the model check, and seconds per epoch.

    python benchmarks/bench_export.py SOURCE --zip ../shared/data/cifar10-jpg.zip --folder /tmp/cifar [--rounds 2]

1. `vitnas export SOURCE` (a study folder, a checkpoint folder or a CONFIG.yaml): the files, their sizes and the
   largest logit difference between the exported model and the vitnas model (printed by the command).
2. The same architecture shaped for the data set (`vitnas export CONFIG --dataset ZIP`), then, alternating so both see
   the same load from other users of the machine, `rounds` times each: `vitnas train CONFIG --dataset ZIP --epochs 1`
   (the epoch's seconds from its checkpoint's history) and `python train.py --data FOLDER --epochs 1` on the same
   images unpacked as an ImageFolder (the seconds it prints). Both epochs include the validation pass; data loading is
   outside both. Prints the medians and their ratio (target: train.py within 10 % of vitnas train).
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(command: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def vitnas_epoch(config: Path, dataset: str, out: Path) -> float:
    run(["vitnas", "train", str(config), "--dataset", dataset, "--epochs", "1", "--robustness", "none",
         "--out", str(out), "--json"])
    return json.loads((out / "metrics.json").read_text())["history"][0]["seconds"]


def train_py_epoch(export: Path, folder: Path) -> float:
    printed = run([sys.executable, "train.py", "--data", str(folder), "--epochs", "1", "--device", "cpu"], export)
    return float(re.search(r"epoch 1/1: .*, ([0-9.]+) s", printed).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("--zip", required=True, help="the data set as vitnas reads it (an ImageFolder .zip)")
    parser.add_argument("--folder", type=Path, required=True, help="the same images unpacked (train/, test/)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        print(run(["vitnas", "export", str(args.source), "--out", str(work / "export")]))
        shaped = work / "shaped"
        run(["vitnas", "export", str(work / "export" / "config.yaml"), "--dataset", args.zip, "--out", str(shaped)])
        vitnas, standalone = [], []
        for round_ in range(args.rounds):
            vitnas.append(vitnas_epoch(shaped / "config.yaml", args.zip, work / f"train{round_}"))
            standalone.append(train_py_epoch(shaped, args.folder))
            print(f"round {round_ + 1}: vitnas train {vitnas[-1]:.1f} s/epoch, train.py {standalone[-1]:.1f} s/epoch",
                  flush=True)
    a, b = statistics.median(vitnas), statistics.median(standalone)
    print(f"median seconds per epoch: vitnas train {a:.1f}, train.py {b:.1f}; train.py / vitnas train = {b / a:.3f}")


if __name__ == "__main__":
    main()
