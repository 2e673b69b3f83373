"""The ablation's folder: `study.json` (the study as read, its profile and seeds, and what decides its runs) and
`runs/ARM/seed-S/` with `config.yaml`, `log.txt` and `metrics.json` per finished run; `ablate report` adds
`results.json` and `results.md`.

A run's files are written the moment it ends, each atomically, `metrics.json` last: a run is finished exactly when
its metrics.json exists, so a kill -9 at any point leaves finished runs whole and unfinished ones absent, and
`--resume` runs precisely the missing ones. A failed run is finished too (its reason is in metrics.json): resuming
does not repeat it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from vitnas.errors import UserError
from vitnas.nas.ablation.study import Profile, Study, profile_with_seeds, study_from_dict
from vitnas.nas.files import json_text, write_text_atomic
from vitnas.nas.outcome import Outcome

STUDY_FILE = "study.json"
RUNS_DIR = "runs"
METRICS_FILE = "metrics.json"
FORMAT = 1


@dataclass(frozen=True)
class RunRecord:
    """One finished run as persisted."""

    arm: str
    seed: int
    outcome: Outcome
    metrics: dict
    error: str | None = None
    duration_s: float | None = None


class AblationStore:
    def __init__(self, directory: Path, header: dict):
        self.directory, self.header = directory, header

    @classmethod
    def create(cls, directory: Path, study: Study, profile: Profile, identity: dict) -> AblationStore:
        if (directory / STUDY_FILE).exists():
            raise UserError(f"{directory} already holds an ablation: add --resume to continue it, or choose another "
                            "--out")
        header = {"format": FORMAT, "study": study.raw, "profile": profile.name, "seeds": list(profile.seeds),
                  "identity": identity, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        store = cls(directory, header)
        store._write_header()
        return store

    @classmethod
    def open(cls, directory: Path) -> AblationStore:
        path = directory / STUDY_FILE
        try:
            header = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{directory}: no {STUDY_FILE} here; pass the folder an ablation wrote (its --out)") \
                from None
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: cannot read it ({err})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise UserError(f"{path}: not an ablation study file of format {FORMAT}")
        return cls(directory, header)

    def resume(self, study: Study, profile: Profile, identity: dict) -> None:
        """Continue with the study as it is now, which must decide its runs as it did when it started: more seeds
        are fine, anything else that changes a run's result is refused."""
        stored = self.header["identity"]
        for key in identity:
            if stored.get(key) != identity[key]:
                raise UserError(f"--resume: the study's {key} changed since {self.directory} started (now "
                                f"{json.dumps(identity[key])[:120]}): restore the study file, or start again in a "
                                "new --out")
        missing = sorted(set(self.header["seeds"]) - set(profile.seeds))
        if missing:
            raise UserError(f"--resume: seeds {missing} of {self.directory} are not in this run's seeds "
                            f"{list(profile.seeds)}: keep them (--seeds may only grow)")
        self.header.update(study=study.raw, seeds=list(profile.seeds))
        self._write_header()

    def _write_header(self) -> None:
        write_text_atomic(self.directory / STUDY_FILE, json_text(self.header, indent=2) + "\n")

    # ---- what the store holds
    def study(self) -> Study:
        return study_from_dict(self.header["study"])

    def profile(self, study: Study) -> Profile:
        return profile_with_seeds(study.profile(self.header["profile"]), self.header["seeds"])

    def run_dir(self, arm: str, seed: int) -> Path:
        return self.directory / RUNS_DIR / arm / f"seed-{seed}"

    def record(self, arm: str, seed: int, arch: dict, train: dict, result) -> RunRecord:
        """Persist one ended run (an executor TrialResult) now, metrics.json last."""
        folder = self.run_dir(arm, seed)
        write_text_atomic(folder / "config.yaml", yaml.safe_dump(arch, sort_keys=False))
        write_text_atomic(folder / "log.txt", result.log or "")
        payload = {"arm": arm, "seed": seed, "outcome": result.outcome.value, "error": result.error,
                   "metrics": result.metrics, "history": result.history, "train": train,
                   "duration_s": result.duration_s, "started_at": result.started_at,
                   "finished_at": result.finished_at}
        write_text_atomic(folder / METRICS_FILE, json_text(payload, indent=2) + "\n")
        return RunRecord(arm, seed, result.outcome, result.metrics, result.error, result.duration_s)

    def finished(self) -> dict[tuple[str, int], RunRecord]:
        """Every finished run on disk, by (arm, seed)."""
        records = {}
        for path in sorted((self.directory / RUNS_DIR).glob(f"*/seed-*/{METRICS_FILE}")):
            try:
                data = json.loads(path.read_text())
                record = RunRecord(data["arm"], int(data["seed"]), Outcome(data["outcome"]), data.get("metrics") or {},
                                   data.get("error"), data.get("duration_s"))
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise UserError(f"{path}: not a run record ({err}); delete its folder to run it again") from None
            records[(record.arm, record.seed)] = record
        return records
