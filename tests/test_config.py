"""ArchConfig: round trips, data overrides and every validation rule's one-line message."""
import copy

import pytest

from vitnas.search_spaces.config import ArchConfig, stage_grids
from vitnas.errors import UserError
from vitnas.search_spaces.presets import load_preset, preset_names

TINY = {
    "name": "tiny", "image_size": 16, "in_chans": 1, "num_classes": 3,
    "stem": {"kind": "patch", "patch_size": 2},
    "stages": [{"depth": 1, "width": 8, "mixer": {"kind": "pool", "kernel_size": 3}},
               {"depth": 1, "width": 16, "mixer": {"kind": "attention", "heads": 2}}],
}


def _with(**changes) -> dict:
    data = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = data
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return data


@pytest.mark.parametrize("name", preset_names())
def test_presets_round_trip(name):
    cfg = load_preset(name)
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.image_size == 224 and cfg.in_chans == 3 and cfg.num_classes == 1000


def test_yaml_round_trip_and_mixer_shorthand(tmp_path):
    cfg = ArchConfig.from_dict(TINY)
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert ArchConfig.from_yaml(path) == cfg
    short = _with(stages__0__mixer="identity")
    assert ArchConfig.from_dict(short).stages[0].mixer.kind == "identity"


def test_mixer_settings_take_their_kinds_defaults():
    given = ArchConfig.from_dict(_with(stages__1__mixer={"temperature": 2.0, "heads": 2, "kind": "attention"}))
    assert given.stages[1].mixer.to_dict() == {"kind": "attention", "heads": 2, "qkv_bias": True, "temperature": 2.0}
    assert given.stages[1].mixer["head_dim"] is None
    assert ArchConfig.from_dict(_with(stages__0__mixer="pool")) == ArchConfig.from_dict(TINY)  # kernel_size 3


def test_stage_grids_halve_rounding_up():
    assert stage_grids(7, 4) == [7, 4, 2, 1] and stage_grids(8, 1) == [8]


def test_with_data_revalidates():
    cfg = ArchConfig.from_dict(TINY)
    other = cfg.with_data(image_size=8, in_chans=3, num_classes=7)
    assert (other.image_size, other.in_chans, other.num_classes) == (8, 3, 7)
    assert other.stages == cfg.stages
    with pytest.raises(UserError, match="stem.patch_size: got 2; must divide image_size 9"):
        cfg.with_data(image_size=9)


@pytest.mark.parametrize("data, message", [
    (_with(stem__patch_size=3), "stem.patch_size: got 3; must divide image_size 16; allowed: 1, 2, 4, 8, 16"),
    (_with(stem__kind="conv", stem__patch_size=1), "stem.patch_size: got 1; the conv stem stacks stride-2 convs"),
    (_with(stem__kind="hex"), "stem.kind: got 'hex'; allowed: patch, overlap, conv"),
    (_with(stages__1__mixer={"kind": "attention", "heads": 3}), "stages[1].mixer.heads: got 3; must divide the stage width 16"),
    (_with(stages__1__mixer={"kind": "attention", "head_dim": 5}), "stages[1].mixer.head_dim: got 5; must divide"),
    (_with(stages__1__mixer={"kind": "attention"}), "give exactly one of heads or head_dim"),
    (_with(stages__1__mixer={"kind": "attention", "heads": 2, "temperature": 0}), "stages[1].mixer.temperature: got 0"),
    (_with(stages__0__mixer={"kind": "pool", "heads": 2}), "stages[0].mixer.heads: got 2; does not apply to mixer kind 'pool'"),
    (_with(stages__0__mixer={"kind": "conv", "kernel_size": 4}), "stages[0].mixer.kernel_size: got 4; allowed: an odd size"),
    (_with(stages__0__mixer={"kind": "swin"}), "stages[0].mixer.kind: got 'swin'; allowed: attention, conv, identity, mlp, pool"),
    (_with(stages__0__mixer={"kernel_size": 3}), "stages[0].mixer.kind: missing; it is required"),
    (_with(stages__0__mixer=["pool"]), "stages[0].mixer: got ['pool']; expected a mapping"),
    (_with(stages__0__mixer={"kind": "mlp", "token_mlp_ratio": 0.01}), "token_mlp_ratio x width (8) must be at least 1"),
    (_with(head="cls"), "head: got 'cls'; a CLS token needs an isotropic model (1 stage), got 2 stages"),
    ({**TINY, "head": "cls", "stages": TINY["stages"][:1]}, "a CLS token needs a mixer that keeps a token sequence"),
    ({**TINY, "head": "cls", "stages": [{"depth": 1, "width": 8, "mixer": {"kind": "mlp"}}]},
     "a CLS token needs a mixer that keeps a token sequence (attention), got stages[0].mixer.kind 'mlp'; use head: gap"),
    ({**TINY, "stem": {"kind": "patch", "patch_size": 16}}, "the token grid is 1x1 before stage 1; with stem.patch_size 16"),
    ({**TINY, "stages": TINY["stages"] * 3}, "stages: got"),
    ({**TINY, "stages": []}, "stages: got []; allowed: a list of 1 to 4 stages"),
    (_with(norm="weightnorm"), "norm: got 'weightnorm'; allowed: layernorm, batchnorm, groupnorm, rmsnorm, none"),
    (_with(act="tanh"), "act: got 'tanh'; allowed: gelu, relu, silu"),
    (_with(block="resnet"), "block: got 'resnet'; allowed: metaformer, convmixer"),
    (_with(head="max"), "head: got 'max'; allowed: gap, cls"),
    (_with(mlp_ratio=0), "mlp_ratio: got 0; allowed: a number > 0.0"),
    (_with(layer_scale=-1.0), "layer_scale: got -1.0"),
    (_with(drop_path=1.5), "drop_path: got 1.5; allowed: a number >= 0.0 and <= 0.9"),
    (_with(norm_eps=0), "norm_eps: got 0"),
    (_with(image_size=0), "image_size: got 0; allowed: an integer from 1 to 4096"),
    (_with(in_chans="rgb"), "in_chans: got 'rgb'"),
    (_with(num_classes=0), "num_classes: got 0"),
    (_with(pos_embed="yes"), "pos_embed: got 'yes'; allowed: true or false"),
    (_with(stages__0__depth=0), "stages[0].depth: got 0; allowed: an integer from 1 to 64"),
    (_with(stages__0__width=2.5), "stages[0].width: got 2.5"),
    (_with(colour="red"), "colour: got 'red'; unknown key"),
    (_with(stem__size=3), "stem.size: got 3; unknown key"),
    ({k: v for k, v in TINY.items() if k != "stages"}, "stages: missing; it is required"),
])
def test_validation_errors_are_one_line_and_name_the_field(data, message):
    with pytest.raises(UserError) as err:
        ArchConfig.from_dict(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_yaml_file_is_a_user_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("stages: [unclosed")
    with pytest.raises(UserError, match="not valid YAML"):
        ArchConfig.from_yaml(path)
    with pytest.raises(UserError, match="cannot read it"):
        ArchConfig.from_yaml(tmp_path / "missing.yaml")
