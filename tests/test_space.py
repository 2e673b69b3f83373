"""The space file: reading, narrowing, suggesting valid configs, Optuna's name rule, the default architecture."""
import copy

import pytest
import torch
import yaml

from vitnas.errors import UserError
from vitnas.search_spaces.checks import check_int
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.registry import ACTS, MIXERS, NORMS, ChoiceDim, MixerKind
from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.space import SPACE_DIR, RandomSuggester, load_space, space_from_dict

SIZES = [(8, 1), (9, 1), (12, 3), (16, 3), (28, 1), (32, 3), (224, 3)]


class RecordingTrial(RandomSuggester):
    """Remembers the choice list of every parameter name, as Optuna would insist on."""

    def __init__(self, seed, seen):
        super().__init__(seed)
        self.seen = seen

    def suggest_categorical(self, name, choices):
        assert self.seen.setdefault(name, list(choices)) == list(choices), f"{name} changed its choices"
        return super().suggest_categorical(name, choices)


@pytest.mark.parametrize("seeds", [range(3), pytest.param(range(3, 12), marks=pytest.mark.slow)])
@pytest.mark.parametrize("image_size, in_chans", SIZES)
def test_suggested_configs_are_valid_and_run(image_size, in_chans, seeds):
    space, seen = load_space("metaformer"), {}
    for seed in seeds:
        cfg = space.suggest(RecordingTrial(seed, seen), image_size, in_chans, 5)
        with torch.device("meta"):  # shapes and wiring without the compute
            out = build_model(cfg)(torch.zeros(2, in_chans, image_size, image_size))
        assert out.shape == (2, 5)


def test_small_sampled_models_train_a_step():
    data = yaml.safe_load((SPACE_DIR / "metaformer.yaml").read_text())
    data["dimensions"].update(width=[8, 16], depth=[1], head_dim=[4, 8])
    space = space_from_dict(data)
    for cfg in space.sample(12, seed=1, image_size=8, in_chans=1, num_classes=3):
        model = build_model(cfg).train()
        model(torch.randn(2, 1, 8, 8)).sum().backward()


def test_sampling_is_reproducible_and_seed_dependent():
    space = load_space("metaformer")
    a = space.sample(5, seed=3, image_size=32, in_chans=3, num_classes=10)
    assert a == space.sample(5, seed=3, image_size=32, in_chans=3, num_classes=10)
    assert a != space.sample(5, seed=4, image_size=32, in_chans=3, num_classes=10)


def test_narrowed_space_only_gives_its_choices(tmp_path):
    data = yaml.safe_load((SPACE_DIR / "metaformer.yaml").read_text())
    data["dimensions"].update(mixer=["pool"], num_stages=[2], width=[16], stem=["conv"])
    path = tmp_path / "narrow.yaml"
    path.write_text(yaml.safe_dump(data))
    for cfg in load_space(str(path)).sample(5, seed=0, image_size=16, in_chans=1, num_classes=2):
        assert [s.mixer.kind for s in cfg.stages] == ["pool", "pool"] and cfg.stem.kind == "conv"


def test_cls_only_with_isotropic_attention():
    space = load_space("metaformer")
    cfgs = space.sample(300, seed=0, image_size=16, in_chans=1, num_classes=2)
    cls = [c for c in cfgs if c.head == "cls"]
    assert cls and all(len(c.stages) == 1 and c.stages[0].mixer.kind == "attention" for c in cls)


@pytest.mark.parametrize("image_size, in_chans", SIZES)
def test_default_config_fits_every_size(image_size, in_chans):
    cfg = load_space("metaformer").default_config(image_size, in_chans, 10)
    assert (cfg.image_size, cfg.in_chans, cfg.num_classes) == (image_size, in_chans, 10)
    with torch.device("meta"):
        assert build_model(cfg)(torch.zeros(1, in_chans, image_size, image_size)).shape == (1, 10)


def test_default_for_digits():
    cfg = load_space("metaformer").default_config(8, 1, 10)
    assert cfg.stem.kind == "conv" and cfg.stem.patch_size == 2
    assert [(s.width, s.mixer.kind) for s in cfg.stages] == [(64, "conv"), (128, "conv")]


def _broken(**dims):
    data = yaml.safe_load((SPACE_DIR / "metaformer.yaml").read_text())
    data = copy.deepcopy(data)
    data["dimensions"].update(dims)
    return data


@pytest.mark.parametrize("data, message", [
    (_broken(mixer=["pool", "swin"]), "dimensions.mixer: got 'swin'; allowed: attention, conv, identity, mlp, pool"),
    (_broken(width=[]), "dimensions.width: got []; allowed: a non-empty list"),
    (_broken(width=[0]), "dimensions.width: got 0; allowed: positive numbers"),
    (_broken(colour=["red"]), "dimensions.colour: unknown dimension"),
    (_broken(depth=[1.5]), "dimensions.depth: got 1.5; allowed: integers"),
    (_broken(conv_kernel=[3, 4]), "dimensions.conv_kernel: got 4; allowed: odd sizes"),
    (_broken(drop_path={"low": 0.5, "high": 0.1}), "dimensions.drop_path: got"),
    (_broken(layer_scale=["off"]), "dimensions.layer_scale: got 'off'; allowed: positive numbers or null"),
    ({**_broken(), "max_tokens": {"swin": 8}}, "max_tokens: got {'swin': 8}; allowed: a mapping from a mixer kind"),
    ([], "expected a mapping with a `dimensions` mapping"),
])
def test_space_file_errors(data, message):
    with pytest.raises(UserError) as err:
        space_from_dict(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_dimension_left_out_takes_its_one_default_choice():
    """A space file copied before a release added a dimension keeps its meaning: the new dimension is fixed."""
    data = _broken()
    for name in ("temperature", "pool_size", "stem_act_norm", "layer_scale"):
        del data["dimensions"][name]
    data["dimensions"].update(mixer=["attention", "pool"], width=[16, 32], head_dim=[16])
    cfgs = space_from_dict(data).sample(40, seed=0, image_size=16, in_chans=1, num_classes=2)
    mixers = [s.mixer for c in cfgs for s in c.stages]
    assert {m["temperature"] for m in mixers if m.kind == "attention"} == {1.0}
    assert {m["kernel_size"] for m in mixers if m.kind == "pool"} == {3}
    assert {(c.stem.act_norm, c.layer_scale) for c in cfgs} == {(False, None)}
    assert {m.kind for m in mixers} == {"attention", "pool"}  # the listed dimensions still vary


def test_an_empty_dimensions_mapping_is_the_default_model():
    space = space_from_dict({"dimensions": {}, "default": {"stages": [{"depth": 1, "width": 8, "mixer": "pool"}]}})
    assert space.to_dict()["dimensions"]["pool_size"] == [3]
    expected = ArchConfig.from_dict({
        "name": "sampled", "image_size": 32, "in_chans": 3, "num_classes": 4,
        "stem": {"kind": "patch", "patch_size": 16},
        "stages": [{"depth": 1, "width": 64, "mixer": {"kind": "pool", "kernel_size": 3}}], "block": "metaformer",
        "norm": "layernorm", "act": "gelu", "mlp_ratio": 4.0, "head": "gap"})
    assert space.sample(3, seed=0, image_size=32, in_chans=3, num_classes=4) == [expected] * 3


def test_unknown_space_and_impossible_patch():
    with pytest.raises(UserError, match="space: got 'nope'; allowed: metaformer"):
        load_space("nope")
    space = space_from_dict(_broken(patch_size=[16]))
    with pytest.raises(UserError, match="no patch_size in \\[16\\] fits 8x8 images"):
        space.suggest(RandomSuggester(0), 8, 1, 2)


def test_narrowing_to_an_impossible_combination_is_a_user_error():
    space = space_from_dict(_broken(mixer=["pool"], head=["cls"]))
    with pytest.raises(UserError, match=r"no choice of head in \['cls'\] fits this model"):
        space.suggest(RandomSuggester(0), 16, 1, 2)


class Shift(torch.nn.Module):
    """A toy token mixer that rolls the grid `step` positions along its width."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def forward(self, x):
        return torch.roll(x, self.step, dims=-2)


def _validate_shift(settings, width, grid, where):
    check_int(f"{where}.step", settings["step"], 1, grid - 1)


def _register_shift() -> None:
    """Declares a new mixer kind the way a module in parts/ would."""
    MIXERS.register("shift", MixerKind(
        settings={"step": 1}, validate=_validate_shift,
        build=lambda settings, width, grid, act_layer: Shift(settings["step"]),
        dimensions=(ChoiceDim("shift_step", 1, number=int, setting="step",
                              fits=lambda step, width, grid: step < grid),)))


@pytest.fixture
def shift_mixer():
    _register_shift()
    yield
    MIXERS.unregister("shift")


def _shift_config(**mixer) -> dict:
    return {"image_size": 8, "in_chans": 1, "num_classes": 2, "stem": {"patch_size": 2},
            "stages": [{"depth": 1, "width": 8, "mixer": {"kind": "shift", **mixer}}]}


def test_a_registered_mixer_is_validated_built_and_suggested_with_no_other_edit(shift_mixer):
    cfg = ArchConfig.from_dict(_shift_config(step=2))
    mixer = build_model(cfg).stages[0].blocks[0].mixer
    assert isinstance(mixer, Shift) and mixer.step == 2
    x = torch.arange(16.0).view(1, 4, 4, 1)
    assert mixer(x)[0, :, :, 0].tolist()[0] == [2.0, 3.0, 0.0, 1.0]
    with pytest.raises(UserError, match=r"stages\[0\].mixer.step: got 4; allowed: an integer from 1 to 3"):
        ArchConfig.from_dict(_shift_config(step=4))  # the 4x4 grid
    with pytest.raises(UserError, match="kernel_size: got 3; does not apply to mixer kind 'shift'; its keys: step"):
        ArchConfig.from_dict(_shift_config(kernel_size=3))
    # the space: one line (`shift` in `mixer`) offers it; its own dimension is optional and filtered per stage
    data = _broken(mixer=["shift"], num_stages=[2], width=[8], stem=["patch"], patch_size=[2], shift_step=[1, 2, 3])
    assert "shift_step" in space_from_dict(data).to_dict()["dimensions"]
    seen = {}
    for seed in range(20):
        cfg = space_from_dict(data).suggest(RecordingTrial(seed, seen), 8, 1, 2)  # grids 4 then 2
        assert [s.mixer.kind for s in cfg.stages] == ["shift", "shift"] and cfg.stages[1].mixer["step"] == 1
    assert seen["s0.shift_step"] == [1, 2, 3] and "s1.shift_step" not in str(seen)
    del data["dimensions"]["shift_step"]
    assert {c.stages[0].mixer["step"] for c in space_from_dict(data).sample(5, 0, 8, 1, 2)} == {1}


def test_an_unregistered_mixer_is_unknown_again():
    _register_shift()
    MIXERS.unregister("shift")
    with pytest.raises(UserError, match="mixer.kind: got 'shift'; allowed: attention, conv, identity, mlp, pool"):
        ArchConfig.from_dict(_shift_config())
    with pytest.raises(UserError, match="dimensions.shift_step: unknown dimension"):
        space_from_dict(_broken(shift_step=[1]))


def test_a_registered_norm_and_activation_are_one_line_each():
    class HalfNorm(torch.nn.Module):  # called as cls(dim, eps=eps), like every norm
        def __init__(self, dim, eps):
            super().__init__()
            self.dim, self.eps = dim, eps

        def forward(self, x):
            return x / 2

    NORMS.register("half", HalfNorm)
    ACTS.register("tanh", torch.nn.Tanh)
    try:
        cfg = ArchConfig.from_dict({**_shift_config(), "norm": "half", "act": "tanh",
                                    "stages": [{"depth": 1, "width": 8, "mixer": "pool"}]})
        block = build_model(cfg).stages[0].blocks[0]
        assert isinstance(block.norm1, HalfNorm) and isinstance(block.channel.act, torch.nn.Tanh)
        space = space_from_dict(_broken(norm=["half"], act=["tanh"]))
        assert {(c.norm, c.act) for c in space.sample(3, 0, 8, 1, 2)} == {("half", "tanh")}
    finally:
        NORMS.unregister("half")
        ACTS.unregister("tanh")


def test_window_sizes_suggested_divide_their_stage_grid():
    data = _broken(mixer=["window"], window_size=[2, 3, 4, 7], width=[16], head_dim=[8], num_stages=[1, 2, 3],
                   patch_size=[2, 4])
    seen = {}
    for seed in range(30):
        cfg = space_from_dict(data).suggest(RecordingTrial(seed, seen), 28, 1, 2)
        for stage, grid in zip(cfg.stages, cfg.stage_grids()):
            assert grid % stage.mixer["window_size"] == 0


def test_2x2_downsampling_only_on_even_grids():
    """12x12 images at patch 2 give a 6x6 grid, then 3x3: patch merging fits two stages, not three."""
    data = _broken(downsample=["patch_merging", "norm_patch"], patch_size=[2], stem=["patch"], num_stages=[2, 3, 4])
    cfgs = space_from_dict(data).sample(30, seed=0, image_size=12, in_chans=1, num_classes=2)
    assert {len(c.stages) for c in cfgs} == {2} and {c.downsample for c in cfgs} == {"patch_merging", "norm_patch"}
    mixed = space_from_dict(_broken(downsample=["patch_merging", "conv"], patch_size=[2], stem=["patch"]))
    for cfg in mixed.sample(40, seed=1, image_size=12, in_chans=1, num_classes=2):
        if cfg.downsample == "patch_merging":
            assert all(g % 2 == 0 for g in cfg.stage_grids()[:-1])


def test_new_dimensions_are_drawn_only_where_they_apply():
    data = _broken(res_scale=[None, 1.0], head_mlp_ratio=[None, 4.0], stage_pos_embed=[False, True],
                   width=[16], head_dim=[8])
    cfgs = space_from_dict(data).sample(150, seed=2, image_size=16, in_chans=1, num_classes=2)
    for cfg in cfgs:
        assert all(s.res_scale is None for s in cfg.stages) or cfg.block == "metaformer"
        assert not cfg.stages[0].pos_embed
        assert all(MIXERS[s.mixer.kind].pos_embed for s in cfg.stages if s.pos_embed)
        assert not (cfg.stem.norm and cfg.stem.act_norm)
    assert any(c.head_mlp_ratio for c in cfgs) and any(s.res_scale for c in cfgs for s in c.stages)
    assert any(s.pos_embed for c in cfgs for s in c.stages) and any(c.stem.norm for c in cfgs)


def test_a_space_without_the_new_dimensions_suggests_the_old_models():
    data = _broken()
    for name in ("stem_norm", "downsample", "mlp_bias", "head_mlp_ratio", "res_scale", "stage_pos_embed"):
        del data["dimensions"][name]
    data["dimensions"].update(mixer=["attention", "pool", "mlp", "conv", "identity"], head=["gap", "cls"],
                              block=["metaformer", "convmixer"], norm=["layernorm", "batchnorm"], act=["gelu"])
    for cfg in space_from_dict(data).sample(20, seed=0, image_size=16, in_chans=1, num_classes=2):
        assert (cfg.downsample, cfg.mlp_bias, cfg.head_mlp_ratio, cfg.stem.norm) == ("conv", True, None, False)
        assert all(s.res_scale is None and not s.pos_embed for s in cfg.stages)
