"""The metrics a search can rank by: each objective's name, the trial metric it reads and its default direction.

`accuracy` is validation accuracy: a search ranks on the validation split and never on test (test accuracy is
recorded in every trial's metrics as `test_accuracy` and shown in reports, but it cannot be an objective).
"""
from dataclasses import dataclass

from vitnas.nas.records import Objective
from vitnas.errors import UserError


@dataclass(frozen=True)
class MetricSpec:
    metric: str  # key in a trial's metrics
    direction: str
    meaning: str


METRICS: dict[str, MetricSpec] = {
    "accuracy": MetricSpec("val_accuracy", "maximize", "validation accuracy (0..1)"),
    "robustness": MetricSpec("robustness", "maximize", "mean accuracy over the robustness suite (0..1)"),
    "macs": MetricSpec("macs", "minimize", "multiply-accumulates per image"),
    "flops": MetricSpec("flops", "minimize", "FLOPs per image (2 x MACs)"),
    "params": MetricSpec("params", "minimize", "trainable parameters"),
    "latency_ms": MetricSpec("latency_ms", "minimize", "inference ms/image at batch 1"),
    "latency_ms_batch": MetricSpec("latency_ms_batch", "minimize", "inference ms/image at the latency batch size"),
    "peak_memory_mb": MetricSpec("peak_memory_mb", "minimize", "peak training memory (MiB)"),
    "images_per_second": MetricSpec("images_per_second", "maximize", "training throughput"),
    "train_seconds": MetricSpec("train_seconds", "minimize", "wall-clock training time"),
}
DEFAULT_OBJECTIVES = "accuracy,macs,robustness"
_DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


def parse_objectives(spec: str) -> list[Objective]:
    """`accuracy,macs:min,latency_ms` -> objectives; a direction after ':' overrides the metric's default."""
    objectives: list[Objective] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        name, _, direction = token.partition(":")
        if name == "test_accuracy":
            raise UserError("--objectives: test_accuracy cannot be an objective (the search never ranks on test); "
                            "use accuracy, which is validation accuracy")
        if name not in METRICS:
            raise UserError(f"--objectives: unknown objective {name!r}; choose from {', '.join(METRICS)}")
        if direction and direction not in _DIRECTIONS:
            raise UserError(f"--objectives: direction {direction!r} of {name!r} must be max or min")
        if any(o.name == name for o in objectives):
            raise UserError(f"--objectives: {name!r} is named twice")
        objectives.append(Objective(name, _DIRECTIONS[direction] if direction else METRICS[name].direction))
    if not objectives:
        raise UserError("--objectives: name at least one objective, e.g. accuracy,macs,robustness")
    return objectives


def objective_values(objectives: list[Objective], metrics: dict) -> dict[str, float]:
    """The objective values of one finished trial, read from its metrics."""
    return {o.name: float(metrics[METRICS[o.name].metric]) for o in objectives}
