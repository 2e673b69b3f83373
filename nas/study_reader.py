"""Read a study for a report without Optuna and without writing: the SQLite storage opened read-only.

Why not Optuna: loading a study through it imports Optuna and SQLAlchemy (about a second) and, on a file that is not
an Optuna database, creates Optuna's tables in it. A report only reads, so it reads the few tables it needs directly
(Optuna's RDB schema: studies, trials with their start and end times, trial_values, trial_user_attributes, and
study_user_attributes, where the front's final metrics are). A storage
that is not SQLite (a shared PostgreSQL study) is read through the search's own store, which does import Optuna.
"""
import json
import math
import sqlite3
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from vitnas.errors import UserError
from vitnas.nas.outcome import Outcome
from vitnas.nas.records import Objective, StudySummary, TrialRecord, trial_record

STUDY_FILE = "study.json"
DEFAULT_DATABASE = "study.db"
# What study.json records for the default storage: the folder's own database, named relative to the folder
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_DATABASE}"
# Optuna stores an infinite objective value as NULL plus a type tag.
_INFINITE = {"INF_POS": math.inf, "INF_NEG": -math.inf}


def newest_study(root: Path) -> Path:
    studies = sorted(root.glob(f"*/{STUDY_FILE}"), key=lambda p: p.stat().st_mtime)
    if not studies:
        raise UserError(f"no study found under {root}: run `vitnas search --space metaformer` first, or pass DIR")
    return studies[-1].parent


def read_study(directory: Path) -> StudySummary:
    """Every trial of the study in `directory` except budget rejections (which never ran)."""
    spec_path = directory / STUDY_FILE
    if not spec_path.is_file():
        raise UserError(f"no study at {directory} ({STUDY_FILE} is missing): give a study folder such as runs/NAME, "
                        "or run `vitnas search` first")
    try:
        spec = json.loads(spec_path.read_text())
        name, storage = str(spec["name"]), spec["storage"]
        objectives = [Objective(o["name"], o["direction"]) for o in spec["objectives"]]
        if not isinstance(storage, str):
            raise TypeError("storage is not a string")
    except (ValueError, TypeError, KeyError) as err:
        raise UserError(f"{spec_path} is corrupt ({err}): restore it from a backup or start a new --study") from None
    database = sqlite_file(directory, storage)
    if database is None:  # a server storage: Optuna reads it
        from vitnas.nas.search.study import StudyStore
        return StudyStore.open(directory).summary()
    return StudySummary(name=name, objectives=objectives, trials=_read_trials(database, name, objectives),
                        storage=storage)


def sqlite_file(directory: Path, storage: str) -> Path | None:
    """The SQLite file behind a study's storage URL (None: a server storage); the one rule the report and the search
    both follow. The default storage is the study folder's own study.db, and so is an absolute URL naming a study.db
    (what studies recorded before) when the folder holds one: a copied or moved study folder reads and writes its
    own trials, never the original folder's."""
    if not storage.startswith("sqlite:///"):
        return None
    path = Path(unquote(storage[len("sqlite:///"):]))
    if storage == DEFAULT_STORAGE or (path.name == DEFAULT_DATABASE and (directory / DEFAULT_DATABASE).is_file()):
        return directory / DEFAULT_DATABASE
    return path


def _read_trials(database: Path, name: str, objectives: list[Objective]) -> list[TrialRecord]:
    if not database.is_file():
        raise UserError(f"the study's storage {database} is missing: keep study.db beside study.json")
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT study_id FROM studies WHERE study_name = ?", (name,)).fetchone()
            if row is None:
                raise UserError(f"{database} holds no vitnas study named {name!r}: give the folder the search wrote")
            trials = connection.execute("SELECT trial_id, number, state, datetime_start, datetime_complete "
                                        "FROM trials WHERE study_id = ? ORDER BY number", row).fetchall()
            values = connection.execute("SELECT v.trial_id, v.objective, v.value, v.value_type FROM trial_values v "
                                        "JOIN trials t USING (trial_id) WHERE t.study_id = ?", row).fetchall()
            attrs = connection.execute("SELECT a.trial_id, a.key, a.value_json FROM trial_user_attributes a "
                                       "JOIN trials t USING (trial_id) WHERE t.study_id = ?", row).fetchall()
            study_attrs = dict(connection.execute("SELECT key, value_json FROM study_user_attributes "
                                                  "WHERE study_id = ?", row).fetchall())
    except sqlite3.DatabaseError as err:  # not a database, or not Optuna's schema
        raise UserError(f"{database} is not a vitnas study database ({err}): give the folder the search wrote") from None
    study = {key: json.loads(value_json) for key, value_json in study_attrs.items()}
    by_trial: dict[int, dict] = {}
    for trial_id, key, value_json in attrs:
        by_trial.setdefault(trial_id, {})[key] = json.loads(value_json)
    objective_values: dict[int, dict[str, float]] = {}
    for trial_id, index, value, value_type in values:
        if index < len(objectives):
            objective_values.setdefault(trial_id, {})[objectives[index].name] = _INFINITE.get(value_type, value)
    records = []
    for trial_id, number, state, started, finished in trials:
        user = by_trial.get(trial_id, {})
        if user.get("outcome") != Outcome.REJECTED.value:  # rejected proposals never ran
            records.append(trial_record(number, state, objective_values.get(trial_id, {}), user,
                                        _timestamp(started), _timestamp(finished), study))
    return records


def _timestamp(text: str | None) -> float | None:
    """Optuna's naive local datetime text as POSIX seconds, read the way Optuna's own FrozenTrial reads it."""
    return None if text is None else datetime.fromisoformat(text).timestamp()
