"""Run a search: read its inputs, open or create the study (locked for this driver), run the trials Optuna proposes
on the trial executor (Ray), then measure the front's members in full."""
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vitnas.nas.data import Dataset, load_dataset
from vitnas.nas.executor import Resources
from vitnas.nas.files import folder_name
from vitnas.nas.measurements import cost_metrics
from vitnas.nas.records import Objective
from vitnas.nas.search.feasibility import Feasibility, epoch_limit, peak_training_rate
from vitnas.nas.search.final import measure_front
from vitnas.nas.search.moasha import EarlyStopping, MoAsha
from vitnas.nas.search.prefilter import Prefilter, PrefilterSpec
from vitnas.nas.search.samplers import make_sampler
from vitnas.nas.search.searcher import PROPOSAL_SLICE_S, SEARCH_DATA, CostLimits, OptunaProducer, SearchListener
from vitnas.nas.search.study import StudySpec, StudyStore, default_storage, hold_lock
from vitnas.nas.search.weights import KeepWeights
from vitnas.nas.trial import TrialSettings
from vitnas.errors import UserError
from vitnas.search_spaces.space import Space, load_space


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
    allow_repeats: bool = False  # run an architecture the study ran already when the sampler proposes it again


@dataclass(frozen=True)
class SearchInputs:
    """What a search reads before its study exists, so a bad space or data set never leaves an empty study."""
    space: Space
    data: Dataset


def load_inputs(settings: SearchSettings) -> SearchInputs:
    return SearchInputs(load_space(settings.space), load_dataset(settings.dataset, seed=settings.seed))


def default_study_name(space: str, dataset: str) -> str:
    stem = lambda s: folder_name(Path(s).stem.split(":")[0])[:40]  # noqa: E731 -- 'synthetic:n=64' -> 'synthetic'
    return f"{stem(space)}-{stem(dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"


def _study_spec(settings: SearchSettings, directory: Path) -> StudySpec:
    return StudySpec(name=settings.study, storage=settings.storage or default_storage(directory),
                     space=settings.space, dataset=settings.dataset, objectives=list(settings.objectives),
                     sampler=settings.sampler, seed=settings.seed, budget={"epochs": settings.trial.train.epochs,
                                                                       "seconds": settings.trial.train.seconds},
                     robustness=settings.trial.robustness, measurements=sorted(settings.trial.measurements))


# What defines a study, as the option that sets it: a resumed study must be asked for with the same values, or its
# new trials would be scored under another suite, budget or validation split than the ones it holds
_DEFINING = {"space": "--space", "dataset": "--dataset", "objectives": "--objectives", "seed": "--seed",
             "sampler": "--sampler", "budget": "--epochs/--time", "robustness": "--robustness",
             "measurements": "--measure"}


def _as_option(name: str, value) -> str:
    """A StudySpec value the way its option is written."""
    if name == "budget":
        return f"--epochs {value['epochs']}" if value.get("epochs") is not None else f"--time {value['seconds']:g}"
    if name == "objectives":
        return f"--objectives {','.join(o.name for o in value)}"
    if name == "measurements":
        return f"measurements {','.join(value)}"
    return f"{_DEFINING[name]} {value}"


def _resumed_seed(seed: int, trials: int) -> int:
    """The sampler's seed on --resume: the study's seed moved on by its trial count, so a resumed sampler does not
    draw the first run's proposals again (within numpy's seed range)."""
    return (seed + 1_000_003 * trials) % 2**32


def open_study(settings: SearchSettings) -> StudyStore:
    """A new study, or with --resume the existing one, which must have been asked for the same way. The study is
    locked for this driver (`with open_study(...) as store:` frees it), unless its storage is a server: a study
    there is shared by design, and drivers on other machines could not see a file lock anyway."""
    directory = settings.out / settings.study
    store = StudyStore.open(directory) if settings.resume else None  # a missing study: one line, no lock file made
    shared = settings.storage is not None and not settings.storage.startswith("sqlite:")
    lock = None if shared else hold_lock(directory)
    try:
        wanted = _study_spec(settings, directory)
        if store is None:
            store = StudyStore.create(directory, wanted, make_sampler(settings.sampler, settings.seed))
        else:
            _check_same_definition(store.spec, wanted)
            trials = len(store.study.get_trials(deepcopy=False))
            store.study.sampler = make_sampler(settings.sampler, _resumed_seed(settings.seed, trials))
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    store.lock = lock
    return store


def _check_same_definition(had: StudySpec, wanted: StudySpec) -> None:
    for name, option in _DEFINING.items():
        old, new = getattr(had, name), getattr(wanted, name)
        if old is not None and old != new:  # None: a study.json from before the value was recorded
            raise UserError(f"--resume: study {had.name!r} was started with {_as_option(name, old)}, not "
                            f"{_as_option(name, new)}: repeat its original {option}, or start a new --study")


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


def run_search(settings: SearchSettings, store: StudyStore, listener: SearchListener, inputs: SearchInputs,
               say: Callable[[str], None] = lambda line: None) -> StudyStore:
    """Run trials until the study holds settings.trials counted trials; every finished one is persisted at once.
    A search that got them all (not one stopped early) then measures its front in full (nas/search/final.py),
    telling `say` what it does."""
    store.recover_interrupted()
    if store.counted_trials() < settings.trials:
        _run_trials(settings, store, listener, inputs)
    if store.counted_trials() >= settings.trials:
        measure_front(store, inputs.data, settings.trial, say)
    return store


def _run_trials(settings: SearchSettings, store: StudyStore, listener: SearchListener, inputs: SearchInputs) -> None:
    from vitnas.nas.executor.run import execute  # Ray loads only when a search runs

    space, data = inputs.space, inputs.data

    def propose(trial):
        return space.suggest(trial, image_size=data.image_size, in_chans=data.in_chans, num_classes=data.num_classes)

    rungs = settings.early_stop.rungs(settings.trial.train.epochs)
    producer = OptunaProducer(store, propose, cost_metrics, settings.limits, settings.trials, settings.trial, listener,
                              settings.keep_weights, feasibility=_feasibility(settings, data),
                              prefilter=_prefilter(settings, data),
                              early_stop=None if rungs is None else MoAsha(rungs, settings.objectives, store.study),
                              trial_timeout=settings.trial_timeout, allow_repeats=settings.allow_repeats,
                              proposal_slice_s=PROPOSAL_SLICE_S)
    execute(producer, {SEARCH_DATA: data}, settings.resources, store.directory / "ray")
