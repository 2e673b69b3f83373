"""A study on disk: the Optuna storage, the study's definition and every finished trial's files.

Layout of `OUT/NAME/`: `study.json` (what defines the study: storage URL, space, data set, objectives, sampler,
seed, budget, robustness suite, measurements; checked on --resume), `study.db` (the default SQLite Optuna storage,
recorded relative to the folder), `.lock` (held by the driver running the study), `trials/NNNN/` (config.yaml,
metrics.json, log.txt of each finished trial, and model.pt, its trained weights, as --keep-weights says: a trial
folder loads like a `vitnas train` checkpoint). The Optuna storage is the source of truth; the files are written
first (metrics.json last) and the storage told second, so a trial is either finished in the storage with its files, or
still RUNNING: on --resume, one whose files are whole is told from them and any other runs again.

How each run ended (vitnas.nas.outcome.Outcome) is the trial's `outcome` attribute; in Optuna's terms OK is
COMPLETE, PRUNED is PRUNED and every other outcome is FAIL.
"""
import fcntl
import json
import os
import socket
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TextIO

import optuna
import yaml

from vitnas.nas.executor import TrialResult
from vitnas.nas.files import json_text, write_atomic, write_text_atomic
from vitnas.nas.metrics import objective_values
from vitnas.nas.outcome import Outcome
from vitnas.nas.records import Objective, StudySummary, TrialRecord, trial_record
from vitnas.nas.study_reader import DEFAULT_DATABASE, DEFAULT_STORAGE, STUDY_FILE, sqlite_file
from vitnas.errors import UserError
from vitnas.search_spaces.config import ArchConfig

LOCK_FILE = ".lock"
WEIGHTS_FILE = "model.pt"
# A rejected proposal the sampler should steer away from: over a cost limit, infeasible for the budget or ranked out
# by the prefilter (a repeat is not: its architecture was trained). Optuna's samplers skip FAIL trials, so without
# this a sampler drawn to large models kept proposing ones over --max-macs (once 276 in a row, 8 minutes of an idle
# worker); nas.search.samplers shows these to TPE as its constant liar shows running trials (the worse group).
AVOID_ATTR = "avoid"
_STATES = {optuna.trial.TrialState.COMPLETE: "COMPLETE", optuna.trial.TrialState.FAIL: "FAIL",
           optuna.trial.TrialState.PRUNED: "PRUNED", optuna.trial.TrialState.RUNNING: "RUNNING",
           optuna.trial.TrialState.WAITING: "WAITING"}


@dataclass(frozen=True)
class StudySpec:
    """What defines a study; a resumed study must be asked for with the same definition."""

    name: str
    storage: str
    space: str
    dataset: str
    objectives: list[Objective]
    sampler: str
    seed: int
    budget: dict = field(default_factory=dict)
    robustness: str = "default"
    measurements: list[str] | None = None  # sorted; None in studies from before it was recorded

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudySpec":
        return cls(**{**d, "objectives": [Objective(**o) for o in d["objectives"]]})


def default_storage(directory: Path) -> str:
    """The storage study.json records for a new study in `directory`: its own study.db, relative to the folder."""
    return DEFAULT_STORAGE


def _open_storage(directory: Path, url: str) -> optuna.storages.BaseStorage:
    """The storage of the study in `directory` (the folder's own study.db by study_reader.sqlite_file's rule)."""
    if url.startswith("sqlite:"):
        if sqlite_file(directory, url) == directory / DEFAULT_DATABASE:
            url = f"sqlite:///{(directory / DEFAULT_DATABASE).resolve()}"
        # the driver writes while `vitnas report` reads: wait for SQLite's lock instead of failing
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.get_storage(url)


def hold_lock(directory: Path) -> TextIO:
    """Take the study's lock for the life of this process (or until the returned file is closed): one driver per
    study, or two would both run trials up to --trials and propose the same architectures. A second driver is
    told who holds it. The lock is flock's, so it goes with the process, kill -9 included."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another driver"
        handle.close()
        raise UserError(f"study {directory} is being run by {holder}: wait for it to finish or stop it; a study "
                        "has one driver at a time (share one through a server --storage)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return handle


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _outcome(frozen: optuna.trial.FrozenTrial) -> Outcome | None:
    """How the trial's run ended; None while it runs."""
    value = frozen.user_attrs.get("outcome")
    return None if value is None else Outcome(value)


def config_key(config: dict) -> str:
    """One text per architecture: equal configs give equal keys (tuples and lists alike, keys in any order, and a
    config stored before a field existed equal to one that spells out that field's default)."""
    try:
        config = ArchConfig.from_dict(config).to_dict()
    except UserError:
        pass  # not a valid architecture (a hand-made record): compared as written
    return json.dumps(config, sort_keys=True)


class StudyStore:
    """One study: asks for trials, records them (files, then storage) and summarises them."""

    def __init__(self, directory: Path, spec: StudySpec, study: optuna.Study):
        self.directory, self.spec, self.study = directory, spec, study
        self._driver = {"host": socket.gethostname(), "pid": os.getpid()}
        self.lock: TextIO | None = None  # hold_lock's file, while this process drives the study

    def __enter__(self) -> "StudyStore":
        return self

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.close()  # frees the study for the next driver
            self.lock = None

    @classmethod
    def create(cls, directory: Path, spec: StudySpec, sampler: optuna.samplers.BaseSampler) -> "StudyStore":
        if (directory / STUDY_FILE).exists():
            existing = cls.open(directory)
            if not existing.ran_any():  # an earlier start that ran nothing: start afresh
                optuna.delete_study(study_name=existing.spec.name,
                                    storage=_open_storage(directory, existing.spec.storage))
                (directory / STUDY_FILE).unlink()
                return cls.create(directory, spec, sampler)
            raise UserError(f"study {spec.name!r} already exists at {directory} with {existing.counted_trials()} "
                            "finished trials: pass --resume to continue it, or choose a new --study name")
        directory.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(storage=_open_storage(directory, spec.storage), sampler=sampler,
                                        study_name=spec.name, directions=[o.direction for o in spec.objectives])
        except optuna.exceptions.DuplicatedStudyError:
            raise UserError(f"storage {spec.storage} already holds a study named {spec.name!r}: pass --resume "
                            "to continue it, or choose a new --study name") from None
        write_text_atomic(directory / STUDY_FILE, json.dumps(spec.to_dict(), indent=2))
        return cls(directory, spec, study)

    @classmethod
    def open(cls, directory: Path, sampler: optuna.samplers.BaseSampler | None = None) -> "StudyStore":
        path = directory / STUDY_FILE
        if not path.exists():
            raise UserError(f"no study at {directory} ({STUDY_FILE} is missing): give a study folder such as "
                            "runs/NAME, or run `vitnas search` first")
        try:
            spec = StudySpec.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as err:
            raise UserError(f"{path} is corrupt ({err}): restore it from a backup or start a new --study") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.load_study(study_name=spec.name, storage=_open_storage(directory, spec.storage),
                                      sampler=sampler)
        except KeyError:
            raise UserError(f"storage {spec.storage} has no study {spec.name!r} (named in {path})") from None
        return cls(directory, spec, study)

    # -- counting and recovery -------------------------------------------------------------------------------
    def counted_trials(self) -> int:
        """Trials that count towards --trials: finished ones, not cost-limit rejections nor interrupted runs."""
        return sum(1 for t in self.study.get_trials(deepcopy=False)
                   if t.state.is_finished() and (outcome := _outcome(t)) is not None and outcome.counted)

    def ran_any(self) -> bool:
        """Whether any trial was run (or is running): proposals rejected before training do not count."""
        return any(_outcome(t) is not Outcome.REJECTED for t in self.study.get_trials(deepcopy=False))

    def ran_configs(self) -> dict[str, int]:
        """The architectures of the counted trials (canonical JSON -> trial number): what a search must not run
        again."""
        return {config_key(t.user_attrs["config"]): t.number for t in self.study.get_trials(deepcopy=False)
                if t.state.is_finished() and (outcome := _outcome(t)) is not None and outcome.counted
                and "config" in t.user_attrs}

    def recover_interrupted(self) -> list[int]:
        """Trials left RUNNING by a driver on this host that no longer lives. One killed after its files were all
        written (metrics.json is the last) but before the storage was told is told now, from its files: files and
        storage agree and the finished work is kept. Any other is failed as interrupted and its config queued again."""
        host = socket.gethostname()
        recovered = []
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            driver = frozen.user_attrs.get("driver", {})
            if driver.get("host") != host or _pid_alive(int(driver.get("pid", -1))):
                continue  # another driver's live trial (e.g. a shared PostgreSQL study)
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            files = self._written_result(frozen.number)
            if files is None:
                self.interrupt(trial)
            else:
                config, result = files
                self._tell(trial, config, *self._judged(result))
            recovered.append(frozen.number)
        return recovered

    def _written_result(self, number: int) -> tuple[dict, TrialResult] | None:
        """The config and result a trial's folder holds, when every file was written; None otherwise."""
        folder = self.trial_dir(number)
        try:
            record = json.loads((folder / "metrics.json").read_text())
            config = yaml.safe_load((folder / "config.yaml").read_text())
            log = (folder / "log.txt").read_text()
            outcome = Outcome(record["status"])
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
            return None  # absent (the usual case) or cut short: the trial runs again
        timing = record.get("timing") or {}
        return config, TrialResult(outcome=outcome, metrics=record.get("metrics") or {}, error=record.get("error"),
                                   history=record.get("history") or [], log=log, duration_s=timing.get("duration_s"),
                                   started_at=timing.get("started_at"), finished_at=timing.get("finished_at"))

    def interrupt(self, trial: optuna.trial.Trial) -> None:
        """A trial whose run was cut off (Ctrl-C, killed driver): failed as interrupted, its config queued again."""
        trial.set_user_attr("outcome", Outcome.INTERRUPTED.value)
        trial.set_user_attr("error", "interrupted: the driver stopped before this trial finished; re-queued")
        frozen = self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number})

    # -- one trial's life ------------------------------------------------------------------------------------
    def ask(self) -> optuna.trial.Trial:
        trial = self.study.ask()
        trial.set_user_attr("driver", self._driver)
        trial.set_user_attr("seed", self.spec.seed)
        return trial

    def reject(self, trial: optuna.trial.Trial, config: dict, reason: str, *, avoid: bool = False) -> None:
        """A proposal not trained (over a cost limit, infeasible for the budget, prefiltered, a repeat): recorded,
        not counted as a trial. `avoid`: the sampler may rank it below every trained trial (AVOID_ATTR)."""
        trial.set_user_attr("config", config)
        trial.set_user_attr("outcome", Outcome.REJECTED.value)
        trial.set_user_attr("error", reason)
        if avoid:
            trial.set_user_attr(AVOID_ATTR, True)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def trial_dir(self, number: int) -> Path:
        return self.directory / "trials" / f"{number:04d}"

    def weights_path(self, number: int) -> Path:
        return self.trial_dir(number) / WEIGHTS_FILE

    def finish(self, trial: optuna.trial.Trial, config: dict, result: TrialResult) -> TrialRecord:
        """Persist one run's result: its files first (weights included), then its outcome and values in the storage."""
        result, values = self._judged(result)
        self._write_files(self.trial_dir(trial.number), config, result)
        return self._tell(trial, config, result, values)

    def _judged(self, result: TrialResult) -> tuple[TrialResult, dict[str, float] | None]:
        """The run's final outcome and its objective values: an OK run without usable objectives is FAILED."""
        if result.outcome is not Outcome.OK:
            return result, None
        values, error = self._objective_values(result.metrics)
        return (result, values) if values is not None else (replace(result, outcome=Outcome.FAILED, error=error), None)

    def _tell(self, trial: optuna.trial.Trial, config: dict, result: TrialResult,
              values: dict[str, float] | None) -> TrialRecord:
        """The storage learns a run's final outcome (the one its files record) and, when OK, its objective values."""
        trial.set_user_attr("config", config)
        trial.set_user_attr("metrics", result.metrics)
        trial.set_user_attr("duration_s", result.duration_s)
        trial.set_user_attr("outcome", result.outcome.value)
        if result.error:
            trial.set_user_attr("error", result.error)
        if result.outcome is Outcome.OK:
            frozen = self.study.tell(trial, [values[o.name] for o in self.spec.objectives])
        else:
            state = optuna.trial.TrialState.PRUNED if result.outcome is Outcome.PRUNED else optuna.trial.TrialState.FAIL
            frozen = self.study.tell(trial, state=state)
        return self._record(frozen)

    def _objective_values(self, metrics: dict) -> tuple[dict[str, float] | None, str | None]:
        try:
            values = objective_values(self.spec.objectives, metrics)
        except (KeyError, TypeError, ValueError) as err:
            return None, f"metric {err} missing from the trial's results"
        if any(v != v for v in values.values()):  # NaN objective: a failed measurement, not a result
            return None, f"an objective is NaN: {values}"
        return values, None

    def _write_files(self, folder: Path, config: dict, result: TrialResult) -> None:
        """The trial folder, laid out as a checkpoint (nas.checkpoint reads `dataset` and `seed`); metrics.json last,
        so its presence means the folder is whole (recover_interrupted relies on it)."""
        if result.weights is not None and result.outcome is Outcome.OK:
            write_atomic(folder / WEIGHTS_FILE, lambda out: out.write(result.weights))
        write_text_atomic(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        write_text_atomic(folder / "log.txt", result.log)
        record = {"status": result.outcome.value, "error": result.error, "dataset": self.spec.dataset,
                  "seed": self.spec.seed, "timing": {"duration_s": result.duration_s, "started_at": result.started_at,
                                                     "finished_at": result.finished_at},
                  "metrics": result.metrics, "history": result.history}
        write_text_atomic(folder / "metrics.json", json_text(record, indent=2))

    # -- summaries -------------------------------------------------------------------------------------------
    def _record(self, frozen: optuna.trial.FrozenTrial, study_attrs: dict | None = None) -> TrialRecord:
        attrs = frozen.user_attrs
        state = _STATES.get(frozen.state, frozen.state.name)
        values = {o.name: v for o, v in zip(self.spec.objectives, frozen.values or ())}
        started, finished = (None if t is None else t.timestamp() for t in (frozen.datetime_start,
                                                                              frozen.datetime_complete))
        return trial_record(frozen.number, state, values, attrs, started, finished, study_attrs)

    def summary(self) -> StudySummary:
        """Every trial except cost-limit rejections (which never ran)."""
        study_attrs = self.study.user_attrs  # the front's final metrics (records.final_metrics_key)
        trials = [self._record(t, study_attrs) for t in self.study.get_trials(deepcopy=False)
                  if _outcome(t) is not Outcome.REJECTED]
        return StudySummary(name=self.spec.name, objectives=list(self.spec.objectives), trials=trials,
                            storage=self.spec.storage)
