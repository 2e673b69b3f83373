"""Reports read a study read-only and without Optuna, and agree with what Optuna itself reads."""
import hashlib
import json
import math
import shutil
import sqlite3

import optuna
import pytest

from test_cli_startup import heavy_imports
from vitnas.errors import UserError
from vitnas.nas.study_reader import read_study

OBJECTIVES = [{"name": "accuracy", "direction": "maximize"}, {"name": "macs", "direction": "minimize"}]


@pytest.fixture
def study_dir(tmp_path):
    """A study folder as the search writes it: study.json + an Optuna SQLite storage with trials in every state."""
    directory = tmp_path / "s"
    directory.mkdir()
    url = f"sqlite:///{directory / 'study.db'}"
    (directory / "study.json").write_text(json.dumps({"name": "s", "storage": url, "objectives": OBJECTIVES}))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, study_name="s", directions=["maximize", "minimize"])
    for values, attrs in (([0.9, 1e6], {"config": {"name": "a"}, "metrics": {"val_accuracy": 0.9}, "seed": 3}),
                          ([0.5, math.inf], {"duration_s": 1.5})):
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, values)
    failed = study.ask()
    failed.set_user_attr("error", "out of memory")
    failed.set_user_attr("outcome", "failed")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    rejected = study.ask()
    rejected.set_user_attr("outcome", "rejected")
    study.tell(rejected, state=optuna.trial.TrialState.FAIL)
    study.ask()  # still running
    return directory


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reader_agrees_with_optuna(study_dir):
    summary = read_study(study_dir)
    frozen = {t.number: t for t in optuna.load_study(study_name="s", storage=f"sqlite:///{study_dir / 'study.db'}")
              .get_trials()}
    assert [t.number for t in summary.trials] == [0, 1, 2, 4]  # the rejected proposal (3) is left out
    assert [t.state for t in summary.trials] == ["COMPLETE", "COMPLETE", "FAIL", "RUNNING"]
    assert summary.trials[0].values == dict(zip(("accuracy", "macs"), frozen[0].values))
    assert summary.trials[1].values == {"accuracy": 0.5, "macs": math.inf}
    assert summary.trials[0].config == {"name": "a"} and summary.trials[0].seed == 3
    assert summary.trials[1].duration_s == 1.5 and summary.trials[2].error == "out of memory"
    assert summary.trials[2].outcome == "failed" and summary.trials[3].outcome is None
    assert summary.trials[0].started_at == frozen[0].datetime_start.timestamp()
    assert summary.trials[0].finished_at == frozen[0].datetime_complete.timestamp()
    assert summary.trials[3].started_at is not None and summary.trials[3].finished_at is None  # still running
    assert [o.name for o in summary.objectives] == ["accuracy", "macs"]


def test_reading_changes_nothing(study_dir):
    before = _digest(study_dir / "study.db")
    read_study(study_dir)
    assert _digest(study_dir / "study.db") == before


def test_a_copied_study_reads_its_own_database(study_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy)
    with sqlite3.connect(copy / "study.db") as connection:  # the copy diverges from the original
        connection.execute("DELETE FROM trials WHERE number = 0")
    assert 0 not in [t.number for t in read_study(copy).trials]
    assert 0 in [t.number for t in read_study(study_dir).trials]


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100])
def test_a_foreign_or_corrupt_database_is_refused_and_left_alone(study_dir, content):
    (study_dir / "study.db").write_bytes(content)
    before = _digest(study_dir / "study.db")
    with pytest.raises(UserError, match="not a vitnas study database"):
        read_study(study_dir)
    assert _digest(study_dir / "study.db") == before


def test_a_database_without_this_study_is_refused(study_dir):
    spec = json.loads((study_dir / "study.json").read_text())
    (study_dir / "study.json").write_text(json.dumps({**spec, "name": "other"}))
    with pytest.raises(UserError, match="no vitnas study named 'other'"):
        read_study(study_dir)


def test_report_imports_neither_optuna_ray_nor_matplotlib(study_dir):
    assert heavy_imports("report", str(study_dir), "--json") & {"optuna", "ray", "matplotlib", "torch"} == set()
