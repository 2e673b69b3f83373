"""How the study progressed: the hypervolume of the front after each finished trial, by count and by wall time.

Every step uses the report's one reference point (computed over all completed trials), so steps are comparable, the
curve never falls, and its last value is the hypervolume the report states. Trials are taken in the order they
finished (the storage's end times; trial number where a time is missing); failed and pruned trials are steps too,
because they spent budget without moving the front.
"""
import math
from dataclasses import dataclass

from vitnas.nas import pareto


@dataclass(frozen=True)
class ProgressStep:
    trial: int  # the trial whose end this step follows
    finished: int  # trials finished so far, in any state
    elapsed_s: float | None  # seconds from the first trial's start to this end; None without stored times
    hypervolume: float


def hypervolume_progress(report: dict) -> list[ProgressStep]:
    """One step per finished trial of a `report_dict`; empty when nothing completed (no reference point)."""
    if not report["reference_point"]:
        return []
    names = [objective["name"] for objective in report["objectives"]]
    directions = [objective["direction"] for objective in report["objectives"]]
    reference = [report["reference_point"][name] for name in names]
    done = sorted((t for t in report["trials"] if t["state"] in ("COMPLETE", "PRUNED", "FAIL")),
                  key=lambda t: (math.inf if t["finished_at"] is None else t["finished_at"], t["number"]))
    starts = [t["started_at"] for t in report["trials"] if t["started_at"] is not None]
    timed = bool(starts) and all(t["finished_at"] is not None for t in done)
    points: list[list[float]] = []
    steps = []
    for count, trial in enumerate(done, start=1):
        values = [trial["values"].get(name) for name in names]
        if trial["state"] == "COMPLETE" and None not in values:  # report_dict writes non-finite values as None
            points.append(values)
        volume = pareto.hypervolume(points, reference, directions) if points else 0.0
        elapsed = trial["finished_at"] - min(starts) if timed else None
        steps.append(ProgressStep(trial["number"], count, elapsed, volume))
    return steps
