"""What matters: how much each architecture dimension drives each objective, by Optuna's own importance evaluators.

The dimensions are rebuilt from each trial's config rather than read from Optuna's parameters: the search names a
parameter after the choices left to it (`patch_size.overlap[1,2,4,8]`, `num_stages[1,2]`), so one dimension is spread
over several names and a stage's parameters exist only in trials that have the stage, while Optuna's fANOVA assesses
only parameters every trial has. From configs every trial has every dimension: a stage or a mixer setting a trial
lacks is the choice ABSENT. An in-memory Optuna study holds these as trials (no storage is touched).

fANOVA (random-forest functional ANOVA: the share of the objective's variance each dimension explains) and PED-ANOVA
(how differently the best trials are distributed over a dimension than all trials) answer related but different
questions; both are normalised to sum to 1 per objective.
"""
import json
import math
import warnings
from dataclasses import dataclass
from functools import partial

ABSENT = "absent"  # the value of a dimension a trial does not have: a stage it lacks, another mixer kind's setting
DATA_FIELDS = ("name", "image_size", "in_chans", "num_classes")  # fixed by the data set, never searched
FANOVA_TREES = 64
PED_ANOVA_TOP_TRIALS = 5  # PED-ANOVA compares the best trials, at least this many, with all of them
PED_ANOVA_QUANTILE = 0.1  # ... or the best 10% when that is more
MIN_TRIALS = PED_ANOVA_TOP_TRIALS + 1  # the top set must leave some trials out (Optuna asserts it)
EVALUATORS = ("fANOVA", "PED-ANOVA")


@dataclass(frozen=True)
class Importance:
    """Importance of each dimension for each objective (each evaluator's shares sum to 1 per objective)."""

    dimensions: list[str]  # most important first (largest share over objectives and evaluators)
    scores: dict[str, dict[str, dict[str, float]]]  # evaluator -> objective -> dimension -> share
    trials: int  # the complete trials it rests on
    top_trials: int  # how many of them PED-ANOVA takes as the best
    categorical: frozenset[str]  # dimensions whose values are choices, not numbers
    constant: list[str]  # dimensions that took one value in every trial (importance 0, left out)
    flat: list[str]  # objectives that took one value in every trial (no variance to explain)

    def strongest(self, dimension: str) -> float:
        return max(score[dimension] for by_objective in self.scores.values() for score in by_objective.values())


def architecture_dimensions(config: dict) -> dict[str, object]:
    """A config as flat dimensions: `stem.kind`, `num_stages`, `stage1.mixer`, `stage1.width`,
    `stage1.conv.kernel_size` (a mixer's settings under its kind, so a pool window is not a conv kernel), `norm`, ...
    A config without stages (not an architecture) gives its flat scalar entries."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        if key in DATA_FIELDS:
            continue
        if key == "stages" and isinstance(value, list):
            flat["num_stages"] = len(value)
            for index, stage in enumerate(value, start=1):
                flat.update(_stage_dimensions(index, stage))
        elif isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if _scalar(v)})
        elif _scalar(value):
            flat[key] = value
    return flat


def _stage_dimensions(index: int, stage: dict) -> dict[str, object]:
    mixer = dict(stage.get("mixer") or {})
    kind = mixer.pop("kind", None)
    flat = {f"stage{index}.mixer": kind, f"stage{index}.width": stage.get("width"),
            f"stage{index}.depth": stage.get("depth")}
    flat.update({f"stage{index}.{kind}.{k}": v for k, v in mixer.items() if _scalar(v)})
    return flat


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def choice_label(value) -> str:
    """How a report names a categorical value: `none` for null, JSON spelling for the rest (true, 0.01, conv)."""
    return value if isinstance(value, str) else "none" if value is None else json.dumps(value)


def dimension_table(configs: list[dict]) -> tuple[dict[str, list], frozenset[str]]:
    """Per dimension the value of each config (ABSENT where a config lacks it), and which dimensions are categorical:
    a dimension is numeric only when every config has a finite number for it; choices become their labels."""
    rows = [architecture_dimensions(config) for config in configs]
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns: dict[str, list] = {}
    categorical = set()
    for name in names:
        raw = [row.get(name, ABSENT) for row in rows]
        if all(_is_number(value) for value in raw):
            columns[name] = [float(value) for value in raw]
        else:
            columns[name] = [ABSENT if value is ABSENT else choice_label(value) for value in raw]
            categorical.add(name)
    return columns, frozenset(categorical)


def ranked_trials(report: dict) -> list[dict]:
    """The COMPLETE trials with a value for every objective (report_dict wrote non-finite values as None)."""
    names = [objective["name"] for objective in report["objectives"]]
    return [trial for trial in report["trials"] if trial["state"] == "COMPLETE"
            and all(trial["values"].get(name) is not None for name in names)]


def importance(report: dict, seed: int = 0) -> Importance | None:
    """fANOVA and PED-ANOVA importance of every varying dimension for every objective of a `report_dict`; None with
    fewer than MIN_TRIALS complete trials or when no dimension varies."""
    trials = ranked_trials(report)
    if len(trials) < MIN_TRIALS:
        return None
    columns, categorical = dimension_table([trial["config"] for trial in trials])
    constant = [name for name, column in columns.items() if len(set(column)) == 1]
    varying = {name: column for name, column in columns.items() if name not in constant}
    if not varying:
        return None
    study = _optuna_study(report, trials, varying, categorical)
    top = max(PED_ANOVA_TOP_TRIALS, math.ceil(PED_ANOVA_QUANTILE * len(trials)))
    scores: dict[str, dict[str, dict[str, float]]] = {name: {} for name in EVALUATORS}
    flat = []
    for index, objective in enumerate(report["objectives"]):
        values = [trial["values"][objective["name"]] for trial in trials]
        if max(values) == min(values):
            flat.append(objective["name"])
            for by_objective in scores.values():
                by_objective[objective["name"]] = dict.fromkeys(varying, 0.0)
            continue
        for name, by_objective in scores.items():
            by_objective[objective["name"]] = _evaluate(study, name, index, objective["direction"],
                                                        top / len(trials), seed)
    order = sorted(varying, key=lambda d: -max(s[d] for by_o in scores.values() for s in by_o.values()))
    return Importance(order, scores, len(trials), top, categorical & set(varying), constant, flat)


def _optuna_study(report: dict, trials: list[dict], columns: dict[str, list], categorical: frozenset[str]):
    """An in-memory Optuna study holding each trial's dimensions as parameters and its objective values."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {name: optuna.distributions.CategoricalDistribution(sorted(set(column), key=choice_order))
                     if name in categorical else optuna.distributions.FloatDistribution(min(column), max(column))
                     for name, column in columns.items()}
    study = optuna.create_study(directions=[objective["direction"] for objective in report["objectives"]])
    names = [objective["name"] for objective in report["objectives"]]
    study.add_trials([optuna.trial.create_trial(
        params={name: column[row] for name, column in columns.items()}, distributions=distributions,
        values=[trial["values"][name] for name in names]) for row, trial in enumerate(trials)])
    return study


def _evaluate(study, evaluator: str, index: int, direction: str, top_quantile: float, seed: int) -> dict[str, float]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    if evaluator == "fANOVA":  # explained variance: the direction does not matter
        chosen, sign = FanovaImportanceEvaluator(n_trees=FANOVA_TREES, seed=seed), 1.0
    else:  # PED-ANOVA's best trials are those with the lowest target
        chosen = PedAnovaImportanceEvaluator(target_quantile=top_quantile)
        sign = -1.0 if direction == "maximize" else 1.0
    with warnings.catch_warnings():  # both say what the code above already handles
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes the importances")
        shares = optuna.importance.get_param_importances(study, evaluator=chosen,
                                                         target=partial(_objective, index=index, sign=sign))
    return {name: float(share) for name, share in shares.items()}


def _objective(trial, index: int, sign: float) -> float:
    return sign * trial.values[index]


def choice_order(label: str):
    """Numbers in numeric order, then words, `absent` last: how a reader scans choices."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (2 if label == ABSENT else 1, 0.0, label)
