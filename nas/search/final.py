"""Measure a finished search's front in full: test accuracy and the study's robustness suite, on test images.

A search trial ranks on a bounded validation subset and takes the test pass and the robustness suite only where they
are asked for (nas/trial.py), so every trial costs a bounded time. The front is the handful of trials a user reads
and exports, so once the search holds all its trials each front member is measured from its kept weights
(trials/NNNN/model.pt): test accuracy on the search's bounded test subset (TrialSettings.test_images) and the
study's suite on TrialSettings.robustness_images of those images (test accuracy only for the suite `none`).

It runs on the driver, in this process, one member after the other: the weights are files the driver wrote, the
models are the front's few, and the images are bounded, so shipping them to Ray workers would add a second kind of
run to the executor and a Ray start-up for seconds of work. A search whose trials ran on a cluster's GPUs is
measured on the driver's GPU if it has one, else on its CPU.

The results go to the trial folder's metrics.json (key `final_metrics`, the file's other keys kept) first, then to
the Optuna storage as the study user attribute records.final_metrics_key(number), which reports read. A member
holding that attribute is not measured again (a resumed finished study, or one whose measuring was cut short).
"""
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from vitnas.errors import UserError
from vitnas.nas.checkpoint import Checkpoint, load_checkpoint
from vitnas.nas.data import Dataset
from vitnas.nas.files import json_safe, json_text, write_text_atomic
from vitnas.nas.inference import use_precision
from vitnas.nas.measurements import robustness, test
from vitnas.nas.records import final_metrics_key
from vitnas.nas.report import report_dict
from vitnas.nas.report_format import format_number
from vitnas.nas.robustness import parse_suite
from vitnas.nas.search.study import WEIGHTS_FILE, StudyStore
from vitnas.nas.trainer import resolve_device
from vitnas.nas.trial import TrialSettings, bounded

FINAL_METRICS = "final_metrics"  # the key in a trial folder's metrics.json


def unmeasured_front(store: StudyStore) -> list[int]:
    """The numbers of the front's members (as the report draws the front) that have no final metrics yet."""
    summary = store.summary()
    by_number = {trial.number: trial for trial in summary.trials}
    return [number for number in report_dict(summary)["pareto"] if not by_number[number].final_metrics]


def measure_front(store: StudyStore, data: Dataset, settings: TrialSettings,
                  say: Callable[[str], None] = lambda line: None) -> list[int]:
    """Measure every front member without final metrics (`data`: the search's whole data set, `settings`: its trial
    settings); returns the numbers measured now. A member whose weights are missing or unreadable is named through
    `say`, with the reason, and left unmeasured; the others are still measured."""
    wanted = unmeasured_front(store)
    if not wanted:
        return []
    final = replace(settings, robustness=store.spec.robustness, robustness_split="test")
    images = bounded(data, final)
    device = _driver_device(settings.train.device)
    say(f"measuring the front's {len(wanted)} unmeasured member(s) on {len(images.y_test)} test images "
        f"(robustness suite {final.robustness!r})")
    measured = []
    for number in wanted:
        try:
            checkpoint = _load(store.trial_dir(number))
        except UserError as err:
            say(f"trial {number}: not measured: {err}")
            continue
        metrics = final_metrics(checkpoint, images, final, device)
        _record(store, number, checkpoint.info, metrics)
        say(f"trial {number}: test accuracy {format_number(metrics['test_accuracy'])}"
            + (f", robustness {format_number(metrics['robustness'])}" if "robustness" in metrics else ""))
        measured.append(number)
    return measured


def final_metrics(checkpoint: Checkpoint, data: Dataset, settings: TrialSettings, device: torch.device) -> dict:
    """Test accuracy on `data`'s test split and, unless the suite is `none`, the suite on at most
    settings.robustness_images of those images (settings.robustness_split is "test"), in the trials' precision."""
    model = checkpoint.model.to(device)
    with use_precision(settings.train.precision):
        metrics = {"test_accuracy": test(model, checkpoint.arch, data, settings, device)["test_accuracy"],
                   "test_images": len(data.y_test)}
        if parse_suite(settings.robustness).parts:
            metrics.update(robustness(model, checkpoint.arch, data, settings, device),
                           robustness_images=min(settings.robustness_images, len(data.y_test)))
    return json_safe(metrics)


def _load(folder: Path) -> Checkpoint:
    if not (folder / WEIGHTS_FILE).is_file():
        raise UserError(f"its weights were not kept ({folder / WEIGHTS_FILE} is missing: the search ran with "
                        "--keep-weights none, or the file was removed)")
    return load_checkpoint(folder)


def _record(store: StudyStore, number: int, info: dict, metrics: dict) -> None:
    """The folder first, the storage second (the store's order): a driver killed in between measures it again."""
    write_text_atomic(store.trial_dir(number) / "metrics.json", json_text({**info, FINAL_METRICS: metrics}, indent=2))
    store.study.set_user_attr(final_metrics_key(number), metrics)


def _driver_device(name: str) -> torch.device:
    """The trials' device where this machine has it; the CPU where they ran on GPUs this driver lacks."""
    return torch.device("cpu") if name.startswith("cuda") and not torch.cuda.is_available() else resolve_device(name)
