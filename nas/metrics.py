"""Every metric a trial can record, declared once; `--objectives`, `--measure`, trials and reports read from here.

A *measurement* is one piece of work on a model (count its cost, time it, run the robustness suite) that yields
several metrics; a *metric* is one number of a trial's metrics, produced by exactly one measurement. A search trial
takes the cheap measurements, those of its objectives and those asked for with `--measure`; `vitnas train` and
`vitnas evaluate` take them all. Adding a metric: a `Metric` below, and if no measurement yields it yet, a function
(model, arch, data, settings, device) -> dict in `nas/measurements.py` and a `Measurement` naming it here.

`accuracy` is validation accuracy: a search ranks on the validation split and never on test (test accuracy is the
`test` measurement: `vitnas train` and `--measure test` record it as `test_accuracy`, but it cannot be an objective).

This module imports neither torch nor any measurement, so the CLI can build its help text from it at start-up.
"""
from dataclasses import dataclass
from typing import Literal

from vitnas.errors import UserError
from vitnas.nas.records import Objective


@dataclass(frozen=True)
class Measurement:
    name: str  # as written in --measure
    meaning: str
    cheap: bool  # every search trial takes it, whatever its objectives
    needs_training: bool  # False: it means something for an untrained model too (a diverged trial still gets it)
    # "module:function" taking (model, arch, data, settings, device) and returning metrics; imported only when the
    # measurement is taken, so declaring one costs no import. None: the training run itself records these metrics.
    function: str | None
    # "module:function" taking (data, settings) and returning how many forward passes (images; a backward pass
    # counts as two) it runs after training, which a time budget keeps time for. None: too little to count.
    work: str | None = None


@dataclass(frozen=True)
class Metric:
    name: str  # as written in --objectives
    key: str  # key in a trial's metrics
    direction: Literal["maximize", "minimize"]  # better when larger or smaller; an objective's default direction
    unit: str
    meaning: str
    measurement: str  # the Measurement that produces it
    objective: bool = True  # whether a search may rank by it

    @property
    def needs_training(self) -> bool:
        return MEASUREMENTS[self.measurement].needs_training

    @property
    def label(self) -> str:
        """How a report names it: the meaning with its unit."""
        return f"{self.meaning} ({self.unit})"


_MEASUREMENTS = (
    Measurement("cost", "params, MACs, FLOPs, activation memory, counted on the meta device", True, False,
                "vitnas.nas.measurements:cost"),
    Measurement("accuracy", "validation accuracy", True, True, "vitnas.nas.measurements:accuracy"),
    Measurement("test", "test accuracy (a search never ranks on it)", False, True, "vitnas.nas.measurements:test",
                "vitnas.nas.measurements:test_work"),
    Measurement("training", "training time and throughput", True, True, None),
    Measurement("latency", "inference latency at batch 1 and at the latency batch", False, False,
                "vitnas.nas.measurements:latency"),
    Measurement("memory", "peak memory of one training step", False, False, "vitnas.nas.measurements:memory"),
    Measurement("robustness", "the suite chosen with --robustness", False, True,
                "vitnas.nas.measurements:robustness", "vitnas.nas.measurements:robustness_work"),
    Measurement("proxies", "zero-cost proxies NASWOT, synflow and MeCo of the untrained model", False, False,
                "vitnas.nas.measurements:proxies"),
)
MEASUREMENTS: dict[str, Measurement] = {m.name: m for m in _MEASUREMENTS}
CHEAP = frozenset(m.name for m in _MEASUREMENTS if m.cheap)
ALL = frozenset(MEASUREMENTS)

_METRICS = (
    Metric("accuracy", "val_accuracy", "maximize", "0..1", "validation accuracy", "accuracy"),
    Metric("test_accuracy", "test_accuracy", "maximize", "0..1", "test accuracy (reported, never ranked on)",
           "test", objective=False),
    Metric("robustness", "robustness", "maximize", "0..1", "mean accuracy over the robustness suite", "robustness"),
    Metric("macs", "macs", "minimize", "MACs", "multiply-accumulates per image", "cost"),
    Metric("flops", "flops", "minimize", "FLOPs", "FLOPs per image (2 x MACs)", "cost"),
    Metric("params", "params", "minimize", "parameters", "trainable parameters", "cost"),
    Metric("activation_bytes", "activation_bytes", "minimize", "bytes", "float32 activations per image", "cost"),
    Metric("latency_ms", "latency_ms", "minimize", "ms/image", "inference latency at batch 1", "latency"),
    Metric("latency_ms_batch", "latency_ms_batch", "minimize", "ms/image", "inference latency at the latency batch",
           "latency"),
    Metric("peak_memory_mb", "peak_memory_mb", "minimize", "MiB", "peak memory of a training step", "memory"),
    Metric("images_per_second", "images_per_second", "maximize", "images/s", "training throughput", "training"),
    Metric("train_seconds", "train_seconds", "minimize", "s", "wall-clock training time", "training"),
    Metric("naswot", "naswot", "maximize", "log det", "NASWOT: how differently the untrained model's activations "
           "split a batch", "proxies"),
    Metric("synflow", "synflow", "maximize", "log", "synflow: the untrained model's synaptic flow", "proxies"),
    Metric("meco", "meco", "maximize", "eigenvalue sum", "MeCo: smallest eigenvalues of the untrained model's "
           "feature correlations", "proxies"),
)
METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}
DEFAULT_OBJECTIVES = "accuracy,macs,robustness"
_DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


def objectives_help() -> str:
    """The --objectives help text: the grammar, then every objective with its default direction and meaning."""
    names = "; ".join(f"{m.name} ({'max' if m.direction == 'maximize' else 'min'}, {m.unit}): {m.meaning}"
                      for m in _METRICS if m.objective)
    return f"Comma list, each NAME or NAME:max|min. Names: {names}."


def measure_help() -> str:
    """The --measure help text: the optional measurements and what each one yields."""
    optional = "; ".join(f"{m.name} ({m.meaning})" for m in _MEASUREMENTS if not m.cheap)
    cheap = ", ".join(m.name for m in _MEASUREMENTS if m.cheap)
    return (f"Comma list of extra measurements, or all: {optional}. Always taken: {cheap}, and whatever the "
            "objectives need.")


def parse_objectives(spec: str) -> list[Objective]:
    """`accuracy,macs:min,latency_ms` -> objectives; a direction after ':' overrides the metric's default."""
    objectives: list[Objective] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        name, _, direction = token.partition(":")
        if name in METRICS and not METRICS[name].objective:
            raise UserError(f"--objectives: {name} cannot be an objective (the search never ranks on test); "
                            "use accuracy, which is validation accuracy")
        if name not in METRICS:
            choices = ", ".join(m.name for m in _METRICS if m.objective)
            raise UserError(f"--objectives: unknown objective {name!r}; choose from {choices}")
        if direction and direction not in _DIRECTIONS:
            raise UserError(f"--objectives: direction {direction!r} of {name!r} must be max or min")
        if any(o.name == name for o in objectives):
            raise UserError(f"--objectives: {name!r} is named twice")
        objectives.append(Objective(name, _DIRECTIONS[direction] if direction else METRICS[name].direction))
    if not objectives:
        raise UserError(f"--objectives: name at least one objective, e.g. {DEFAULT_OBJECTIVES}")
    return objectives


def parse_measurements(spec: str) -> frozenset[str]:
    """`latency,memory` -> those names; `all` -> every measurement; an empty list -> none beyond the cheap ones."""
    names = {token.strip() for token in spec.split(",") if token.strip()}
    if names == {"all"}:
        return ALL
    unknown = sorted(names - ALL)
    if unknown:
        raise UserError(f"--measure: unknown measurement {unknown[0]!r}; choose from {', '.join(MEASUREMENTS)} "
                        "or all")
    return frozenset(names)


def measurements_for(objectives: list[Objective], extra: frozenset[str] = frozenset()) -> frozenset[str]:
    """What a search trial measures: the cheap measurements, its objectives' and the extra ones asked for."""
    return CHEAP | extra | {METRICS[o.name].measurement for o in objectives}


def objective_values(objectives: list[Objective], metrics: dict) -> dict[str, float]:
    """The objective values of one finished trial, read from its metrics: KeyError when one was not measured, NaN
    where JSON-safe metrics hold null (a NaN measurement)."""
    values = {o.name: metrics[METRICS[o.name].key] for o in objectives}
    return {name: float("nan") if value is None else float(value) for name, value in values.items()}
