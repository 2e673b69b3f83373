"""The study file: override paths, validation with one line naming the field, profiles, paired runs."""
import copy
import math

import pytest
import yaml

from vitnas.errors import UserError
from vitnas.nas.ablation.claims import parse_expectation, parse_metric
from vitnas.nas.ablation.overrides import apply_override, parse_path
from vitnas.nas.ablation.plan import identity, plan_runs
from vitnas.nas.ablation.study import load_study, profile_with_seeds, shipped_studies, study_from_dict

SHAPE = (32, 3, 10)
CONFIG = {"stem": {"kind": "patch", "patch_size": 4},
          "stages": [{"depth": 1, "width": 16, "mixer": {"kind": "pool", "kernel_size": 3}} for _ in range(4)],
          "norm": "groupnorm"}
STUDY = {
    "name": "tiny", "claim": "Pooling beats identity.", "source": "a paper, Table 1",
    "published": {"data": "ImageNet", "scale": "S12", "values": {"pool": 77.2}},
    "base": CONFIG, "reference": "pool",
    "arms": {"pool": {}, "identity": {"stages[*].mixer": "identity"},
             "late-attention": {"stages[2:].mixer": {"kind": "attention", "head_dim": 8}, "train.lr": 0.001}},
    "expect": [{"accuracy": "identity < pool"}, "relative:highfreq:0.08: late-attention > pool"],
    "robustness": "highfreq:0.08",
    "profiles": {"quick": {"data": "synthetic:n=192,size=32,chans=3,classes=10", "budget": {"epochs": 1}},
                 "full": {"data": "cifar10", "budget": {"epochs": 20}, "seeds": [3, 4, 5], "train_images": 5000,
                          "set": {"stages[*].width": 32}}},
}


def study(**changes):
    data = copy.deepcopy(STUDY)
    data.update(changes)
    return study_from_dict(data)


def error_of(**changes) -> str:
    with pytest.raises(UserError) as info:
        runs(study(**changes))
    message = str(info.value)
    assert "\n" not in message
    return message


def runs(s, profile="quick"):
    return plan_runs(s, s.profile(profile), SHAPE)


# ---- override paths

def test_every_stage_at_once_a_slice_one_index_and_a_nested_key():
    config = copy.deepcopy(CONFIG)
    apply_override(config, parse_path("stages[*].mixer", "t"), "identity", "t")
    assert [s["mixer"] for s in config["stages"]] == ["identity"] * 4
    apply_override(config, parse_path("stages[2:].mixer", "t"), {"kind": "attention", "head_dim": 8}, "t")
    assert [s["mixer"] if isinstance(s["mixer"], str) else s["mixer"]["kind"] for s in config["stages"]] == \
        ["identity", "identity", "attention", "attention"]
    apply_override(config, parse_path("stages[-1].width", "t"), 64, "t")
    apply_override(config, parse_path("stem.kind", "t"), "conv", "t")
    assert [s["width"] for s in config["stages"]] == [16, 16, 16, 64] and config["stem"]["kind"] == "conv"
    config["stages"][2]["mixer"]["head_dim"] = 4  # each stage got its own copy
    assert config["stages"][3]["mixer"]["head_dim"] == 8


@pytest.mark.parametrize("path, fragment", [
    ("stages[*].mixr.kind", "no key 'mixr'"),
    ("stages[7].width", "index 7 is outside the 4 items"),
    ("stages[4:].width", "selects none of the 4 items"),
    ("norm[0]", "not a list"),
    ("stem.kind.x", "has no keys"),
])
def test_a_path_that_does_not_fit_the_config_names_the_problem(path, fragment):
    with pytest.raises(UserError, match="arms.x: " + path.replace("[", r"\[").replace("]", r"\]").replace("*", r"\*")) \
            as info:
        apply_override(copy.deepcopy(CONFIG), parse_path(path, "arms.x"), 1, "arms.x")
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["stages[x].mixer", "stages..mixer", "1stage", "stages[*", ""])
def test_unreadable_paths_fail_when_read(text):
    with pytest.raises(UserError, match="arms.x: override path"):
        parse_path(text, "arms.x")


# ---- the study file

def test_a_study_resolves_each_arm_and_pairs_seeds():
    s = study()
    planned = runs(s)
    assert [(r.arm, r.seed) for r in planned][:4] == [("pool", 0), ("pool", 1), ("pool", 2), ("identity", 0)]
    by_key = {r.key: r for r in planned}
    assert [st["mixer"]["kind"] for st in by_key["identity/seed-0"].arch["stages"]] == ["identity"] * 4
    late = by_key["late-attention/seed-1"]
    assert [st["mixer"]["kind"] for st in late.arch["stages"]] == ["pool", "pool", "attention", "attention"]
    assert late.train == {"lr": 0.001, "epochs": 1, "seed": 1}
    assert by_key["pool/seed-1"].train == {"epochs": 1, "seed": 1}  # the arm's lr is its own
    assert by_key["pool/seed-0"].arch["image_size"] == 32 and by_key["pool/seed-0"].arch["num_classes"] == 10


def test_profiles_replace_top_level_settings_and_apply_their_set_first():
    s = study()
    full = s.profile("full")
    assert full.seeds == (3, 4, 5) and full.train_images == 5000 and full.budget.epochs == 20
    assert full.robustness == "highfreq:0.08"  # from the top level
    assert {st["width"] for st in runs(s, "full")[0].arch["stages"]} == {32}


def test_more_seeds_from_the_command_line():
    assert profile_with_seeds(study().profile("quick"), 5).seeds == (0, 1, 2, 3, 4)
    with pytest.raises(UserError, match="--seeds: .* at least 3 seeds"):
        profile_with_seeds(study().profile("quick"), 2)


def test_metrics_include_every_expected_one_in_order():
    assert [m.text for m in study().metrics] == ["accuracy", "relative:highfreq:0.08"]


@pytest.mark.parametrize("changes, fragment", [
    ({"claim": None}, "claim: got None"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"reference": "conv"}, "reference: got 'conv'; it must be one of the arms"),
    ({"arms": {"pool": {}}}, "arms: got"),
    ({"arms": {"pool": {}, "bad name": {}}}, "arms.bad name: got"),
    ({"arms": {"pool": {}, "identity": {"image_size": 64}}}, "arms.identity: image_size: the data set decides"),
    ({"arms": {"pool": {}, "identity": {"train.momentum": 0.9}}}, "arms.identity: train.momentum: unknown"),
    ({"arms": {"pool": {}, "identity": {"train.lr": -1}}},
     "arms.identity: train: got {'lr': -1}; batch_size >= 1, lr > 0"),
    ({"expect": []}, "expect: got []"),
    ({"expect": ["accuracy: identity << pool"]}, "expect[0]: cannot read"),
    ({"expect": ["accuracy: conv < pool"]}, "expect[0]: 'conv' is not an arm"),
    ({"expect": ["accuracy: pool < pool"]}, "compares an arm with itself"),
    ({"expect": ["acuracy: identity < pool"]}, "expect[0]: unknown metric 'acuracy'"),
    ({"expect": ["relative:lowfreq:0.08: identity < pool"]}, "robustness: 'highfreq:0.08' does not measure "
                                                                 "low_freq_noise@0.08"),
    ({"robustness": "highfreq:9"}, "robustness:"),
    ({"published": {"data": "ImageNet"}}, "published.scale: missing"),
    ({"published": {"data": "x", "scale": "y", "values": {"conv": 1}}}, "published.values.conv: not an arm"),
    ({"published": {"data": "x", "scale": "y", "of": "macs"}}, "published.of: got 'macs'; allowed: one of the "
                                                                "study's metrics"),
    ({"profiles": {"quick": {}}}, "profiles.full: missing"),
    ({"profiles": {"quick": {"budget": {"epochs": 1}}, "full": {}}}, "profiles.quick.data: missing"),
    ({"profiles": {**STUDY["profiles"], "quick": {"data": "d", "budget": {"epochs": 1, "seconds": 9}}}},
     "profiles.quick.budget: got"),
    ({"profiles": {**STUDY["profiles"], "quick": {"data": "d", "budget": {"epochs": 1}, "seeds": 2}}},
     "profiles.quick.seeds: got 2; a confidence interval needs at least 3 seeds"),
    ({"profiles": {**STUDY["profiles"], "quick": {"data": "d", "budget": {"epochs": 1}, "seeds": [1, 1, 2]}}},
     "profiles.quick.seeds: got [1, 1, 2]"),
    ({"profiles": {**STUDY["profiles"],
                   "quick": {"data": "d", "budget": {"epochs": 1}, "set": {"stages[9].depth": 2}}}},
     "profiles.quick.set: stages[9].depth: index 9"),
    ({"arms": {**STUDY["arms"], "identity": {"stages[*].mixer": {"kind": "attention", "head_dim": 5}}}},
     "arms.identity (profile quick): stages[0].mixer.head_dim: got 5; must divide the stage width 16"),
    ({"base": "preset:no_such"}, "base: got 'preset:no_such'; allowed presets:"),
])
def test_mistakes_fail_before_training_with_one_line_naming_the_field(changes, fragment):
    assert fragment in error_of(**changes)


def test_expectations_read_chains_margins_and_metric_names_with_colons():
    chain = parse_expectation({"accuracy": "k3 < k5 < k9"}, "e")
    assert [(c.left, c.op, c.right) for c in chain] == [("k3", "<", "k5"), ("k5", "<", "k9")]
    (margin,) = parse_expectation("accuracy: T=4 > T=1 - 0.02", "e")
    assert (margin.left, margin.right, margin.offset, margin.sign) == ("T=4", "T=1", -0.02, 1)
    assert margin.text == "accuracy: T=4 > T=1 - 0.02"
    (robust,) = parse_expectation(yaml.safe_load("- relative:highfreq:0.08: attention > conv")[0], "e")
    assert robust.metric.part == "high_freq_noise@0.08" and robust.metric.field == "robustness_relative"


def test_metric_references_read_run_metrics():
    metrics = {"accuracy": 0.8, "val_accuracy": 0.7, "params": 10,
               "robustness_relative": {"high_freq_noise@0.08": 0.9},
               "robustness_components": {"fgsm@1": 0.4},
               "robustness_details": {"patch@0.1": {"fooling_rate": 0.25}}}
    assert parse_metric("accuracy", "m").value(metrics) == 0.8  # test accuracy in an ablation
    assert parse_metric("val_accuracy", "m").value(metrics) == 0.7
    assert parse_metric("relative:high_freq_noise:0.08", "m").value(metrics) == 0.9
    assert parse_metric("component:fgsm:1", "m").value(metrics) == 0.4
    assert parse_metric("fooling_rate", "m").value(metrics) == 0.25
    assert math.isnan(parse_metric("fooling_rate:0.05", "m").value(metrics))  # not measured


def test_identity_changes_with_what_decides_runs_only():
    base = identity(study(), study().profile("quick"))
    assert identity(study(claim="Another sentence."), study().profile("quick")) == base
    assert identity(study(expect=["accuracy: pool > identity"]), study().profile("quick"))["arms"] == base["arms"]
    changed = study(arms={**STUDY["arms"], "identity": {"stages[*].mixer": "pool"}})
    assert identity(changed, changed.profile("quick")) != base
    assert identity(study(), study().profile("full")) != base


def test_every_shipped_study_loads_and_resolves_for_cifar_and_for_its_quick_data():
    paths = shipped_studies()
    assert len(paths) >= 10
    for path in paths:
        s = load_study(str(path))
        assert {"quick", "full"} <= set(s.profiles) and path.stem == s.name
        assert all(len(p.seeds) >= 3 for p in s.profiles.values())
        assert s.profile("full").budget.epochs is not None  # the shipped studies compare at equal epochs
        plan_runs(s, s.profile("full"), (32, 3, 10))
        plan_runs(s, s.profile("quick"), (32, 3, 3))


def test_a_base_config_file_is_relative_to_the_study_file(tmp_path):
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump(CONFIG))
    data = {**copy.deepcopy(STUDY), "base": "arch.yaml"}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(data))
    s = load_study(str(tmp_path / "study.yaml"))
    assert runs(s)[0].arch["stages"][0]["width"] == 16
    (tmp_path / "arch.yaml").unlink()
    with pytest.raises(UserError, match="base: got 'arch.yaml'; no such config file"):
        load_study(str(tmp_path / "study.yaml"))


def test_yaml_mistakes_name_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\narms: {identity: {stages[*].mixer: identity}}\n")
    with pytest.raises(UserError, match=r"not valid YAML \(line 2, .*quote keys such as 'stages\[\*\].mixer'"):
        load_study(str(path))


def test_an_unknown_study_lists_the_shipped_ones():
    with pytest.raises(UserError, match="no shipped study of that name; shipped: .*poolformer-token-mixer"):
        load_study("no-such-study")
