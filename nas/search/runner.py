"""Run a search: open or create the study, then run the trials Optuna proposes on the trial executor (Ray)."""
import time
from dataclasses import dataclass, field
from pathlib import Path

from vitnas.nas.data import Dataset, load_dataset
from vitnas.nas.executor import Resources
from vitnas.nas.measurements import cost_metrics
from vitnas.nas.records import Objective
from vitnas.nas.search.feasibility import Feasibility, epoch_limit, peak_training_rate
from vitnas.nas.search.moasha import EarlyStopping, MoAsha
from vitnas.nas.search.prefilter import Prefilter, PrefilterSpec
from vitnas.nas.search.samplers import make_sampler
from vitnas.nas.search.searcher import SEARCH_DATA, CostLimits, OptunaProducer, SearchListener
from vitnas.nas.search.study import StudySpec, StudyStore, default_storage
from vitnas.nas.search.weights import KeepWeights
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
    resources: Resources = field(default_factory=Resources)
    limits: CostLimits = CostLimits()
    keep_weights: KeepWeights = KeepWeights()
    storage: str | None = None
    resume: bool = False
    early_stop: EarlyStopping = EarlyStopping()
    prefilter: PrefilterSpec | None = None
    trial_timeout: float | None = None  # seconds from a trial's request to its result (feasibility.py's default)


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
    for name in ("space", "dataset", "objectives"):
        if getattr(store.spec, name) != getattr(wanted, name):
            raise UserError(f"--resume: this study was started with {name} {getattr(store.spec, name)!r}, not "
                            f"{getattr(wanted, name)!r}: repeat the original options or start a new --study")
    return store


def _feasibility(settings: SearchSettings, data: Dataset) -> Feasibility | None:
    """The epoch-time check, where there is a limit to check against; trials on GPUs run at a rate the driver's CPU
    cannot measure, and only the trial timeout bounds them."""
    limit = epoch_limit(settings.trial.train, settings.trial_timeout)
    if limit is None or settings.resources.gpus_per_trial > 0:
        return None
    rate = peak_training_rate(settings.resources.threads, settings.trial.train.precision)
    return Feasibility(limit, rate, len(data.y_train))


def _prefilter(settings: SearchSettings, data: Dataset) -> Prefilter | None:
    if settings.prefilter is None:
        return None
    from vitnas.nas.proxies import proxy_scores  # builds models: only a prefiltering search pays for it
    from vitnas.search_spaces.config import ArchConfig

    proxy, seed = settings.prefilter.proxy, settings.trial.train.seed
    return Prefilter(settings.prefilter, lambda config: proxy_scores(ArchConfig.from_dict(config), data, seed=seed,
                                                                     names=(proxy,))[proxy], settings.objectives)


def run_search(settings: SearchSettings, store: StudyStore, listener: SearchListener) -> StudyStore:
    """Run trials until the study holds settings.trials counted trials; every finished one is persisted at once."""
    from vitnas.nas.executor.run import execute  # Ray loads only when a search runs

    space = load_space(settings.space)
    data = load_dataset(settings.dataset, seed=settings.seed)
    store.recover_interrupted()
    if store.counted_trials() >= settings.trials:
        return store

    def propose(trial):
        return space.suggest(trial, image_size=data.image_size, in_chans=data.in_chans, num_classes=data.num_classes)

    rungs = settings.early_stop.rungs(settings.trial.train.epochs)
    producer = OptunaProducer(store, propose, cost_metrics, settings.limits, settings.trials, settings.trial, listener,
                              settings.keep_weights, feasibility=_feasibility(settings, data),
                              prefilter=_prefilter(settings, data),
                              early_stop=None if rungs is None else MoAsha(rungs, settings.objectives, store.study),
                              trial_timeout=settings.trial_timeout)
    execute(producer, {SEARCH_DATA: data}, settings.resources, store.directory / "ray")
    return store
