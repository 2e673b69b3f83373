"""A study on disk: the Optuna storage, the study's definition and every finished trial's files.

Layout of `OUT/NAME/`: `study.json` (what defines the study: storage URL, space, data set, objectives, sampler,
seed, budget; checked on --resume), `study.db` (the default SQLite Optuna storage), `trials/NNNN/` (config.yaml,
metrics.json, log.txt of each finished trial). The Optuna storage is the source of truth; the files are written
first and the storage told second, so a trial is either finished in the storage with its files, or still RUNNING
and re-run on --resume.
"""
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
import yaml

from vitnas.nas.files import write_text_atomic
from vitnas.nas.metrics import objective_values
from vitnas.nas.records import Objective, StudySummary, TrialRecord
from vitnas.errors import UserError

STUDY_FILE = "study.json"
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudySpec":
        return cls(**{**d, "objectives": [Objective(**o) for o in d["objectives"]]})


def default_storage(directory: Path) -> str:
    return f"sqlite:///{(directory / 'study.db').resolve()}"


def _open_storage(url: str) -> optuna.storages.BaseStorage:
    if url.startswith("sqlite:"):
        # the driver writes while `vitnas report` reads: wait for SQLite's lock instead of failing
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.get_storage(url)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StudyStore:
    """One study: asks for trials, records them (files, then storage) and summarises them."""

    def __init__(self, directory: Path, spec: StudySpec, study: optuna.Study):
        self.directory, self.spec, self.study = directory, spec, study
        self._driver = {"host": socket.gethostname(), "pid": os.getpid()}

    @classmethod
    def create(cls, directory: Path, spec: StudySpec, sampler: optuna.samplers.BaseSampler) -> "StudyStore":
        if (directory / STUDY_FILE).exists():
            existing = cls.open(directory)
            if not existing.study.get_trials(deepcopy=False):  # an earlier start that ran nothing: start afresh
                optuna.delete_study(study_name=existing.spec.name, storage=_open_storage(existing.spec.storage))
                (directory / STUDY_FILE).unlink()
                return cls.create(directory, spec, sampler)
            raise UserError(f"study {spec.name!r} already exists at {directory} with {existing.counted_trials()} "
                            "finished trials: pass --resume to continue it, or choose a new --study name")
        directory.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(storage=_open_storage(spec.storage), sampler=sampler, study_name=spec.name,
                                        directions=[o.direction for o in spec.objectives])
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
            study = optuna.load_study(study_name=spec.name, storage=_open_storage(spec.storage), sampler=sampler)
        except KeyError:
            raise UserError(f"storage {spec.storage} has no study {spec.name!r} (named in {path})") from None
        return cls(directory, spec, study)

    # -- counting and recovery -------------------------------------------------------------------------------
    def counted_trials(self) -> int:
        """Trials that count towards --trials: finished ones, not budget rejections nor interrupted runs."""
        return sum(1 for t in self.study.get_trials(deepcopy=False)
                   if t.state.is_finished() and not t.user_attrs.get("rejected") and not t.user_attrs.get("interrupted"))

    def recover_interrupted(self) -> list[int]:
        """Trials left RUNNING by a driver on this host that no longer lives: mark them failed, queue them again."""
        host = socket.gethostname()
        recovered = []
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            driver = frozen.user_attrs.get("driver", {})
            if driver.get("host") != host or _pid_alive(int(driver.get("pid", -1))):
                continue  # another driver's live trial (e.g. a shared PostgreSQL study)
            self.interrupt(optuna.trial.Trial(self.study, frozen._trial_id))
            recovered.append(frozen.number)
        return recovered

    def interrupt(self, trial: optuna.trial.Trial) -> None:
        """A trial whose run was cut off (Ctrl-C, killed driver): failed as interrupted, its config queued again."""
        trial.set_user_attr("interrupted", True)
        trial.set_user_attr("error", "interrupted: the driver stopped before this trial finished; re-queued")
        frozen = self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number})

    # -- one trial's life ------------------------------------------------------------------------------------
    def ask(self) -> optuna.trial.Trial:
        trial = self.study.ask()
        trial.set_user_attr("driver", self._driver)
        trial.set_user_attr("seed", self.spec.seed)
        return trial

    def reject(self, trial: optuna.trial.Trial, config: dict, reason: str) -> None:
        """A config outside the MACs/params budget: recorded, but not trained and not counted as a trial."""
        trial.set_user_attr("config", config)
        trial.set_user_attr("rejected", True)
        trial.set_user_attr("error", reason)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def finish(self, trial: optuna.trial.Trial, config: dict, payload: dict) -> TrialRecord:
        """Persist one trial's outcome: its files first, then its state and values in the storage."""
        metrics, error = payload.get("metrics", {}), payload.get("error")
        values = None
        if payload.get("status") == "ok":
            try:
                values = objective_values(self.spec.objectives, metrics)
            except (KeyError, TypeError, ValueError) as err:
                error = f"metric {err} missing from the trial's results"
            else:
                if any(v != v for v in values.values()):  # NaN objective: a failed measurement, not a result
                    values, error = None, f"an objective is NaN: {values}"
        folder = self.directory / "trials" / f"{trial.number:04d}"
        write_text_atomic(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        record = {"status": payload.get("status"), "error": error, "seed": self.spec.seed,
                  "timing": {key: payload.get(key) for key in ("duration_s", "started_at", "finished_at")},
                  "metrics": metrics, "history": payload.get("history", [])}
        write_text_atomic(folder / "metrics.json", json.dumps(record, indent=2))
        write_text_atomic(folder / "log.txt", payload.get("log", ""))
        trial.set_user_attr("config", config)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("duration_s", payload.get("duration_s"))
        if values is None:
            trial.set_user_attr("error", error or f"trial ended with status {payload.get('status')}")
            frozen = self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            frozen = self.study.tell(trial, [values[o.name] for o in self.spec.objectives])
        return self._record(frozen)

    # -- summaries -------------------------------------------------------------------------------------------
    def _record(self, frozen: optuna.trial.FrozenTrial) -> TrialRecord:
        attrs = frozen.user_attrs
        state = _STATES.get(frozen.state, frozen.state.name)
        values = ({o.name: v for o, v in zip(self.spec.objectives, frozen.values)}
                  if state == "COMPLETE" and frozen.values else {})
        return TrialRecord(number=frozen.number, state=state, values=values, config=attrs.get("config", {}),
                           metrics=attrs.get("metrics", {}), duration_s=attrs.get("duration_s"),
                           error=attrs.get("error"), seed=attrs.get("seed"))

    def summary(self) -> StudySummary:
        """Every trial except budget rejections (which never ran)."""
        trials = [self._record(t) for t in self.study.get_trials(deepcopy=False) if not t.user_attrs.get("rejected")]
        return StudySummary(name=self.spec.name, objectives=list(self.spec.objectives), trials=trials,
                            storage=self.spec.storage)
