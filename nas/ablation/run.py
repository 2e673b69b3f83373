"""Run a study's arms x seeds on the one trial executor (the same Ray set-up as `vitnas search`): the producer hands
out the runs that are not finished yet and persists each one the moment it ends."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vitnas.nas.ablation.plan import RunSpec, data_key, measurements, plan_runs, seed_datasets
from vitnas.nas.ablation.store import AblationStore, RunRecord
from vitnas.nas.ablation.study import Profile, Study
from vitnas.nas.executor import Resources, TrialRequest, TrialResult
from vitnas.nas.trainer import TrainSettings
from vitnas.nas.trial import TrialSettings

ROBUSTNESS_IMAGES = 1000  # test images the robustness suite perturbs per run


class AblationListener(Protocol):
    """What a live view is told, on the driver."""

    def run_started(self, run: RunSpec) -> None: ...
    def run_progress(self, run: RunSpec, epoch: int, val_accuracy: float) -> None: ...
    def run_finished(self, record: RunRecord) -> None: ...
    def runs_interrupted(self, runs: list[RunSpec]) -> None: ...


@dataclass
class AblationProducer:
    """The executor's producer for one study: every unfinished run once, in arm-major order."""

    store: AblationStore
    runs: list[RunSpec]
    study: Study
    profile: Profile
    listener: AblationListener

    def __post_init__(self) -> None:
        done = self.store.finished()
        self.pending = deque(run for run in self.runs if (run.arm, run.seed) not in done)
        self.running: dict[str, RunSpec] = {}

    def next_request(self) -> TrialRequest | None:
        if not self.pending:
            return None
        run = self.pending.popleft()
        self.running[run.key] = run
        self.listener.run_started(run)
        return TrialRequest(key=run.key, arch=run.arch, settings=trial_settings(run, self.study, self.profile),
                            data=data_key(run.seed))

    def on_progress(self, key: str, epoch) -> None:
        if key in self.running:
            self.listener.run_progress(self.running[key], epoch.epoch, epoch.val_accuracy)

    def on_finished(self, key: str, result: TrialResult) -> None:
        run = self.running.pop(key)
        record = self.store.record(run.arm, run.seed, run.arch, run.train, result)
        self.listener.run_finished(record)

    def on_interrupted(self, keys: list[str]) -> None:
        # nothing to write: an unfinished run has no metrics.json, so --resume runs it again
        self.listener.runs_interrupted([self.running.pop(key) for key in keys if key in self.running])


def trial_settings(run: RunSpec, study: Study, profile: Profile) -> TrialSettings:
    # test split for the suite too: an ablation selects nothing, so test is the honest estimate of every metric
    return TrialSettings(train=TrainSettings(**run.train), measurements=measurements(study),
                         robustness=profile.robustness, robustness_split="test",
                         robustness_images=ROBUSTNESS_IMAGES)


def prepare(study: Study, profile: Profile) -> tuple[dict, list[RunSpec]]:
    """The data (one split per seed) and every run with its config resolved: a bad arm fails here, before a store
    is written or anything trains."""
    datasets = seed_datasets(profile)
    first = next(iter(datasets.values()))
    return datasets, plan_runs(study, profile, (first.image_size, first.in_chans, first.num_classes))


def run_ablation(study: Study, profile: Profile, store: AblationStore, datasets: dict, runs: list[RunSpec],
                 resources: Resources, listener: AblationListener) -> None:
    """Run every run of `runs` that the store does not hold yet; each is persisted the moment it ends."""
    from vitnas.nas.executor.run import execute

    producer = AblationProducer(store, runs, study, profile, listener)
    if producer.pending:
        execute(producer, datasets, resources, Path(store.directory) / "ray")
