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
    assert given.stages[1].mixer.to_dict() == {"kind": "attention", "heads": 2, "qkv_bias": True, "temperature": 2.0,
                                               "proj_bias": True}
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
    (_with(stages__0__mixer={"kind": "swin"}),
     "stages[0].mixer.kind: got 'swin'; allowed: attention, conv, identity, mlp, pool, random, sepconv, "
     "sr_attention, window"),
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
    (_with(norm="weightnorm"), "norm: got 'weightnorm'; allowed: layernorm, batchnorm, groupnorm, rmsnorm, none, "
                               "layernorm_nobias, groupnorm_nobias"),
    (_with(act="tanh"), "act: got 'tanh'; allowed: gelu, relu, silu, starrelu, squared_relu"),
    (_with(block="resnet"), "block: got 'resnet'; allowed: metaformer, convmixer, convnext"),
    (_with(head="max"), "head: got 'max'; allowed: gap, cls, pooled"),
    (_with(downsample="pool"), "downsample: got 'pool'; allowed: conv, norm_conv, norm_patch, patch_merging"),
    (_with(downsample_norm="bn"), "downsample_norm: got 'bn'; allowed: layernorm"),
    (_with(head_norm="bn"), "head_norm: got 'bn'; allowed: layernorm"),
    (_with(mlp_bias=1), "mlp_bias: got 1; allowed: true or false"),
    (_with(head="pooled", head_mlp_ratio=0), "head_mlp_ratio: got 0; allowed: a number > 0.0"),
    (_with(stem__norm=True, stem__act_norm=True), "stem.norm: got True; act_norm already ends the stem with the norm"),
    (_with(stem__norm="yes"), "stem.norm: got 'yes'; allowed: true or false"),
    ({**TINY, "image_size": 14, "downsample": "patch_merging"},
     "downsample: got 'patch_merging'; takes 2x2 neighbours, so the token grid before stage 1 must be even, got 7x7"),
    ({**TINY, "image_size": 14, "downsample": "norm_patch"}, "the token grid before stage 1 must be even, got 7x7"),
    (_with(stages__1__res_scale=0), "stages[1].res_scale: got 0; allowed: a number > 0.0"),
    (_with(stages__1__res_scale=1.0, block="convnext"),
     "stages[1].res_scale: got 1.0; only the metaformer block scales its residuals, got block 'convnext'"),
    (_with(stages__0__pos_embed=True), "stages[0].pos_embed: got True; the first stage's position embedding is the "
                                       "model's pos_embed"),
    (_with(stages__1__pos_embed=1), "stages[1].pos_embed: got 1; allowed: true or false"),
    (_with(stages__1__dilation=2), "stages[1].dilation: got 2; unknown key; allowed keys: depth, width, mixer, "
                                   "res_scale, pos_embed"),
    (_with(stages__1__mixer={"kind": "attention", "heads": 2, "proj_bias": "no"}),
     "stages[1].mixer.proj_bias: got 'no'; allowed: true or false"),
    (_with(stages__0__mixer={"kind": "window", "heads": 2, "window_size": 3}),
     "stages[0].mixer.window_size: got 3; must divide the stage's 8x8 token grid (or be at least 8: one window); "
     "allowed: 1, 2, 4, 8"),
    (_with(stages__0__mixer={"kind": "window", "heads": 2, "window_size": 0}), "stages[0].mixer.window_size: got 0"),
    (_with(stages__0__mixer={"kind": "window", "window_size": 4}), "give exactly one of heads or head_dim"),
    (_with(stages__0__mixer={"kind": "window", "head_dim": 3}), "stages[0].mixer.head_dim: got 3; must divide the "
                                                                "stage width 8"),
    (_with(stages__0__mixer={"kind": "window", "heads": 2, "window_size": 4, "shift": "half"}), "stages[0].mixer.shift: got 'half'"),
    (_with(stages__0__mixer={"kind": "sepconv", "kernel_size": 4}), "stages[0].mixer.kernel_size: got 4; allowed: an odd"),
    (_with(stages__0__mixer={"kind": "sepconv", "expansion": 0.1}), "expansion x width (8) must be at least 1"),
    (_with(stages__0__mixer={"kind": "sr_attention", "heads": 2, "sr_ratio": 9}),
     "stages[0].mixer.sr_ratio: got 9; reduces the stage's 8x8 token grid below one token; allowed: 1 to 8"),
    (_with(stages__0__mixer={"kind": "sr_attention", "heads": 2, "reduction": "max"}),
     "stages[0].mixer.reduction: got 'max'; allowed: conv, pool"),
    (_with(stages__0__mixer={"kind": "random", "kernel_size": 3}), "does not apply to mixer kind 'random'; its keys: none"),
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


def test_new_fields_default_to_the_models_before_them():
    """A config written before the new fields existed means what it meant: conv downsampling, the model's norm
    everywhere, biased MLPs, a linear head, no residual scales or stage position embeddings."""
    cfg = ArchConfig.from_dict(TINY)
    assert (cfg.downsample, cfg.downsample_norm, cfg.head_norm, cfg.mlp_bias, cfg.head_mlp_ratio) == (
        "conv", None, None, True, None)
    assert not cfg.stem.norm and all(s.res_scale is None and not s.pos_embed for s in cfg.stages)
    assert cfg.to_dict()["stages"][0] == TINY["stages"][0]  # a plain stage writes no new keys


def test_stage_extras_round_trip():
    data = _with(stages__1__res_scale=1.0, stages__1__pos_embed=True)
    cfg = ArchConfig.from_dict(data)
    assert cfg.to_dict()["stages"][1] == {**TINY["stages"][1], "mixer": cfg.stages[1].mixer.to_dict(),
                                          "res_scale": 1.0, "pos_embed": True}
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg


def test_a_window_as_large_as_the_grid_is_accepted():
    """Swin's rule: a window at least the grid's size is the whole grid (stage 4 of Swin-T: 7x7 grid, window 7)."""
    for window in (8, 12):
        ArchConfig.from_dict(_with(stages__0__mixer={"kind": "window", "heads": 2, "window_size": window}))
