"""Search overhead and driver memory on this machine (CPU).

    python benchmarks/bench_search.py [--trials 8] [--seconds 19.5] [--memory-trials 50]

1. Driver peak memory (max RSS of this process) during a `--memory-trials` search of one-epoch trials.
2. Overhead: a search of `--trials` trials, each training for `--seconds` s (plus its measurements: about 20 s a
   trial), on 2 workers of 1 CPU. It prints the fixed start-up (imports, Ray start, the first worker's spawn: from
   the start of `run_search` until the first trial starts in its worker) and the ratio
   (search wall time after start-up) / (sum of trial times / workers), target <= 1.15; the ratio with the start-up
   included is printed too.
"""
import time

_PROCESS_START = time.time()

import argparse  # noqa: E402 -- the imports below are part of the start-up being measured
import json  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from vitnas.nas.metrics import parse_objectives  # noqa: E402
from vitnas.nas.executor import Resources  # noqa: E402
from vitnas.nas.search.runner import SearchSettings, load_inputs, open_study, run_search  # noqa: E402
from vitnas.nas.trainer import TrainSettings  # noqa: E402
from vitnas.nas.trial import TrialSettings  # noqa: E402

_IMPORTED = time.time()


class _Quiet:
    def trial_started(self, number, config): pass
    def trial_progress(self, number, epoch, val_accuracy): pass
    def trial_finished(self, record): print(f"  trial {record.number}: {record.state} {record.duration_s:.1f} s",
                                            flush=True)


def _search(out: Path, study: str, trials: int, train: TrainSettings, robustness: str) -> tuple[float, list[dict]]:
    settings = SearchSettings(space="metaformer", dataset="digits", trials=trials,
                              objectives=parse_objectives("accuracy,macs,robustness"), sampler="tpe",
                              trial=TrialSettings(train=train, robustness=robustness), out=out, study=study,
                              resources=Resources(workers=2, cpus_per_trial=1))
    start = time.time()
    with open_study(settings) as store:
        run_search(settings, store, _Quiet(), load_inputs(settings))
    timings = [json.loads(p.read_text())["timing"] for p in sorted((out / study / "trials").glob("*/metrics.json"))]
    return start, timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=19.5)
    parser.add_argument("--memory-trials", type=int, default=50)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="vitnas-bench-"))

    _search(out, "memory", args.memory_trials, TrainSettings(epochs=1), "none")
    print(f"driver peak memory (max RSS) after a {args.memory_trials}-trial search: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    start, timings = _search(out, "overhead", args.trials, TrainSettings(seconds=args.seconds), "default")
    end = max(t["finished_at"] for t in timings)
    first = min(t["started_at"] for t in timings)
    ideal = sum(t["duration_s"] for t in timings) / 2
    print(f"overhead: {len(timings)} trials of {ideal * 2 / len(timings):.1f} s mean on 2 workers")
    print(f"  fixed start-up: imports {_IMPORTED - _PROCESS_START:.1f} s, then Ray start and the first worker's "
          f"spawn {first - start:.1f} s")
    print(f"  wall after start-up / (sum of trial times / workers) = {end - first:.1f} / {ideal:.1f} = "
          f"{(end - first) / ideal:.3f}  (target <= 1.15)")
    print(f"  including start-up: {(end - start) / ideal:.3f}")


if __name__ == "__main__":
    main()
