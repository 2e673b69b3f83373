"""What matters: architecture dimensions rebuilt from configs, and Optuna's importance on studies built so that one
dimension alone decides each objective."""
import random

import pytest

from vitnas.nas.records import Objective, StudySummary, TrialRecord
from vitnas.nas.report import report_dict
from vitnas.nas.report_charts import choice_views
from vitnas.nas.report_importance import ABSENT, EVALUATORS, architecture_dimensions, dimension_table, importance


def config(mixers: list[str], width: int = 64, norm: str = "layernorm", patch: int = 2) -> dict:
    stages = [{"depth": 2, "width": width, "mixer": {"kind": kind, **({"kernel_size": 3} if kind == "pool" else {})}}
              for kind in mixers]
    return {"name": "x", "image_size": 8, "in_chans": 1, "num_classes": 3,
            "stem": {"kind": "patch", "patch_size": patch, "act_norm": False}, "stages": stages,
            "norm": norm, "layer_scale": None, "head": "gap"}


def test_a_config_flattens_to_named_dimensions_with_mixer_settings_under_their_kind():
    assert architecture_dimensions(config(["pool", "attention"])) == {
        "stem.kind": "patch", "stem.patch_size": 2, "stem.act_norm": False, "num_stages": 2,
        "stage1.mixer": "pool", "stage1.width": 64, "stage1.depth": 2, "stage1.pool.kernel_size": 3,
        "stage2.mixer": "attention", "stage2.width": 64, "stage2.depth": 2,
        "norm": "layernorm", "layer_scale": None, "head": "gap"}


def test_missing_stages_and_settings_are_the_choice_absent_and_only_complete_numbers_are_numeric():
    columns, categorical = dimension_table([config(["pool"], width=32), config(["conv", "attention"], width=64)])
    assert columns["stage1.width"] == [32.0, 64.0] and "stage1.width" not in categorical
    assert columns["stage2.width"] == [ABSENT, "64"] and "stage2.width" in categorical
    assert columns["stage1.pool.kernel_size"] == ["3", ABSENT]
    assert columns["layer_scale"] == ["none", "none"] and columns["stem.act_norm"] == ["false", "false"]


def synthetic_study(n: int = 24, seed: int = 0) -> StudySummary:
    """Accuracy is decided by the first stage's mixer, MACs by the width; norm and patch size vary but do nothing."""
    rng = random.Random(seed)
    objectives = [Objective("accuracy", "maximize"), Objective("macs", "minimize")]
    trials = []
    for number in range(n):
        mixer, width = rng.choice(["attention", "pool", "conv"]), rng.choice([32, 64, 128])
        accuracy = {"attention": 0.9, "pool": 0.6, "conv": 0.3}[mixer] + rng.uniform(-0.01, 0.01)
        macs = width * 1000.0 + rng.uniform(-10, 10)
        trials.append(TrialRecord(number, "COMPLETE", {"accuracy": accuracy, "macs": macs},
                                  config([mixer], width, rng.choice(["layernorm", "batchnorm"]), rng.choice([2, 4])),
                                  {}))
    return StudySummary("synthetic", objectives, trials)


def test_the_dimension_that_decides_an_objective_is_the_most_important_for_it_by_both_evaluators():
    found = importance(report_dict(synthetic_study()))
    assert found.trials == 24 and found.top_trials == 5 and found.flat == []
    assert set(found.constant) >= {"stem.kind", "num_stages", "head"}
    for evaluator in EVALUATORS:
        accuracy, macs = found.scores[evaluator]["accuracy"], found.scores[evaluator]["macs"]
        assert max(accuracy, key=accuracy.get) == "stage1.mixer"
        assert max(macs, key=macs.get) == "stage1.width"
        assert sum(accuracy.values()) == pytest.approx(1.0) and sum(macs.values()) == pytest.approx(1.0)
    assert found.scores["fANOVA"]["accuracy"]["stage1.mixer"] > 0.8
    assert found.dimensions[:2] in (["stage1.mixer", "stage1.width"], ["stage1.width", "stage1.mixer"])


def test_per_choice_view_shows_the_direction_of_the_deciding_dimension():
    report = report_dict(synthetic_study())
    view = next(v for v in choice_views(report, importance(report)) if v.dimension == "stage1.mixer")
    accuracy = view.values[0]
    assert view.choices == ["attention", "conv", "pool"]
    assert min(accuracy["attention"]) > max(accuracy["pool"]) > max(accuracy["conv"])
    assert sorted(n for numbers in view.trials[0].values() for n in numbers) == list(range(24))


def test_too_few_trials_or_nothing_varying_give_no_importance_and_a_flat_objective_is_named():
    for n in (3, 4, 5):  # PED-ANOVA's top 5 would be every trial (Optuna asserts on that)
        assert importance(report_dict(synthetic_study(n=n))) is None
    assert importance(report_dict(synthetic_study(n=6))).trials == 6
    same = StudySummary("same", [Objective("accuracy", "maximize")],
                        [TrialRecord(n, "COMPLETE", {"accuracy": 0.1 * n}, config(["pool"]), {}) for n in range(6)])
    assert importance(report_dict(same)) is None
    flat = synthetic_study(n=8)
    flat = StudySummary("flat", flat.objectives, [TrialRecord(t.number, t.state, {**t.values, "macs": 5.0}, t.config,
                                                              {}) for t in flat.trials])
    found = importance(report_dict(flat))
    assert found.flat == ["macs"] and set(found.scores["fANOVA"]["macs"].values()) == {0.0}
