"""Time the search driver spends per proposal: Optuna's TPE vs the search's TPE (one study read per proposal).

    python benchmarks/bench_proposals.py [--trials 180] [--complete 20] [--proposals 10]

A SQLite study like a `--time` search's after `--trials` proposals (`--complete` trained, the rest rejected before
training) is written once with random proposals; then each sampler, on its own copy of that study, makes
`--proposals` proposals the way the search does (ask, suggest through the space, count the cost, reject), timed
per step. Prints the mean seconds of each step and the ratio of the suggest steps, side by side in one run.
"""
import argparse
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import optuna

from vitnas.nas.measurements import cost_metrics
from vitnas.nas.search.samplers import make_sampler
from vitnas.search_spaces.space import load_space

SPACE = load_space("metaformer")
DIRECTIONS = ["maximize", "minimize", "maximize"]  # the default objectives: accuracy, macs, robustness


def suggest(trial):
    return SPACE.suggest(trial, image_size=32, in_chans=3, num_classes=10)


def make_study(path: Path, trials: int, complete: int) -> None:
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="s", directions=DIRECTIONS,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    trained = set(random.Random(0).sample(range(trials), complete))
    for number in range(trials):
        trial = study.ask()
        config = suggest(trial)
        if number in trained:
            study.tell(trial, [random.random(), float(cost_metrics(config)["macs"]), random.random()])
        else:
            trial.set_user_attr("outcome", "rejected")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)


def time_proposals(path: Path, sampler: optuna.samplers.BaseSampler, proposals: int) -> dict[str, float]:
    study = optuna.load_study(storage=f"sqlite:///{path}", study_name="s", sampler=sampler)
    steps = {"ask": 0.0, "suggest": 0.0, "cost": 0.0, "reject": 0.0}
    for _ in range(proposals):
        start = time.perf_counter()
        trial = study.ask()
        asked = time.perf_counter()
        config = suggest(trial)
        suggested = time.perf_counter()
        cost_metrics(config)
        counted = time.perf_counter()
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        told = time.perf_counter()
        for step, seconds in zip(steps, (asked - start, suggested - asked, counted - suggested, told - counted)):
            steps[step] += seconds / proposals
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=180)
    parser.add_argument("--complete", type=int, default=20)
    parser.add_argument("--proposals", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        plain = optuna.samplers.TPESampler(seed=1, multivariate=True, group=True, constant_liar=True,
                                           n_startup_trials=8)
    with tempfile.TemporaryDirectory() as tmp:
        original = Path(tmp) / "study.db"
        make_study(original, args.trials, args.complete)
        results = {}
        for name, sampler in (("optuna tpe", plain), ("search tpe", make_sampler("tpe", 1))):
            copy = Path(tmp) / f"{name.split()[0]}.db"
            shutil.copy(original, copy)
            cost_metrics(suggest(optuna.create_study().ask()))  # the first count in a process pays a warm-up
            results[name] = time_proposals(copy, sampler, args.proposals)
    print(f"{args.trials} trials in the study ({args.complete} trained), {args.proposals} proposals each; "
          "mean seconds per step")
    for name, steps in results.items():
        print(f"  {name}: " + ", ".join(f"{step} {seconds:.3f}" for step, seconds in steps.items())
              + f", total {sum(steps.values()):.3f}")
    ratio = results["optuna tpe"]["suggest"] / results["search tpe"]["suggest"]
    print(f"suggest: search tpe {ratio:.2f}x faster than optuna's tpe")


if __name__ == "__main__":
    main()
