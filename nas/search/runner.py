"""Run a search: open or create the study, start (or join) Ray, let Ray Tune run trials that Optuna proposes."""
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from vitnas.nas.cost import count_cost
from vitnas.nas.data import load_dataset
from vitnas.nas.records import Objective
from vitnas.nas.search.samplers import make_sampler
from vitnas.nas.search.searcher import Budget, OptunaSearcher, SearchListener
from vitnas.nas.search.study import StudySpec, StudyStore, default_storage
from vitnas.nas.trial import TrialSettings
from vitnas.errors import UserError
from vitnas.search_spaces.space import load_space


@dataclass(frozen=True)
class SearchSettings:
    space: str
    dataset: str
    trials: int
    objectives: list[Objective]
    sampler: str
    trial: TrialSettings
    out: Path
    study: str
    seed: int = 0
    workers: int = 2
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    budget: Budget = Budget()
    address: str | None = None
    storage: str | None = None
    resume: bool = False


def default_study_name(space: str, dataset: str) -> str:
    stem = lambda s: Path(s).stem.split(":")[0] or "data"  # noqa: E731 -- 'synthetic:n=64' -> 'synthetic'
    return f"{stem(space)}-{stem(dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"


def _study_spec(settings: SearchSettings, directory: Path) -> StudySpec:
    return StudySpec(name=settings.study, storage=settings.storage or default_storage(directory),
                     space=settings.space, dataset=settings.dataset, objectives=list(settings.objectives),
                     sampler=settings.sampler, seed=settings.seed, budget={"epochs": settings.trial.train.epochs,
                                                                       "seconds": settings.trial.train.seconds},
                     robustness=settings.trial.robustness)


def open_study(settings: SearchSettings) -> StudyStore:
    """A new study, or with --resume the existing one, which must have been asked for the same way."""
    directory = settings.out / settings.study
    sampler = make_sampler(settings.sampler, settings.seed)
    wanted = _study_spec(settings, directory)
    if not settings.resume:
        return StudyStore.create(directory, wanted, sampler)
    store = StudyStore.open(directory, sampler)
    for field in ("space", "dataset", "objectives"):
        if getattr(store.spec, field) != getattr(wanted, field):
            raise UserError(f"--resume: this study was started with {field} {getattr(store.spec, field)!r}, not "
                            f"{getattr(wanted, field)!r}: repeat the original options or start a new --study")
    return store


def _start_ray(settings: SearchSettings) -> None:
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # let verbose=0 silence Tune's own status tables
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # our study store is the record
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if settings.address:
        ray.init(address=settings.address, log_to_driver=False, logging_level=logging.ERROR)
        return
    need = settings.workers * settings.cpus_per_trial
    ray.init(num_cpus=max(os.cpu_count() or 1, int(need + 0.999)), include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, configure_logging=True)


def _check_cluster_fits(settings: SearchSettings) -> None:
    """Tune would wait forever for resources no node has: say so instead."""
    import ray

    have = ray.cluster_resources()
    for name, per_trial, option in (("CPU", settings.cpus_per_trial, "--cpus-per-trial"),
                                    ("GPU", settings.gpus_per_trial, "--gpus-per-trial")):
        if per_trial > have.get(name, 0):
            raise UserError(f"{option} {per_trial:g} but the Ray cluster has {have.get(name, 0):g} {name}s: "
                            f"lower {option}" + (" or join a cluster with GPUs (--address)" if name == "GPU" else ""))


def _trial_device(settings: SearchSettings) -> TrialSettings:
    """A trial uses the GPU share Ray gave it, and the CPU when it was given none."""
    train = settings.trial.train
    if train.device == "auto":
        train = replace(train, device="cuda" if settings.gpus_per_trial > 0 else "cpu")
    return replace(settings.trial, train=train)


def run_search(settings: SearchSettings, store: StudyStore, listener: SearchListener) -> StudyStore:
    """Run trials until the study holds settings.trials counted trials; every finished one is persisted at once."""
    import ray
    from ray import tune

    from vitnas.nas.search.worker import run_trial_in_worker

    space = load_space(settings.space)
    data = load_dataset(settings.dataset, seed=settings.seed)
    store.recover_interrupted()
    if store.counted_trials() >= settings.trials:
        return store

    def propose(trial):
        return space.suggest(trial, image_size=data.image_size, in_chans=data.in_chans, num_classes=data.num_classes)

    def cost(config):
        counted = count_cost(config)
        return counted.macs, counted.params

    searcher = OptunaSearcher(store, propose, cost, settings.budget, settings.trials, listener)
    _start_ray(settings)
    try:
        _check_cluster_fits(settings)
        threads = max(1, int(settings.cpus_per_trial))
        trainable = tune.with_parameters(run_trial_in_worker, data=data, settings=_trial_device(settings),
                                         threads=threads)
        resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=settings.workers,
                                        reuse_actors=True,
                                        trial_dirname_creator=lambda t: f"trial_{t.config.get('number', t.trial_id)}"),
            run_config=tune.RunConfig(name=f"run-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=str((store.directory / "ray").resolve()), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        tuner.fit()
    finally:
        searcher.interrupt_running()
        ray.shutdown()
    if searcher.error is not None:
        raise searcher.error
    return store
