"""The space file: reading, narrowing, suggesting valid configs, Optuna's name rule, the default architecture."""
import copy

import pytest
import torch
import yaml

from vitnas.errors import UserError
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


@pytest.mark.parametrize("image_size, in_chans", SIZES)
def test_suggested_configs_are_valid_and_run(image_size, in_chans):
    space, seen = load_space("metaformer"), {}
    for seed in range(12):
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
    (_broken(mixer=["pool", "swin"]), "dimensions.mixer: got 'swin'; allowed: attention, pool"),
    (_broken(width=[]), "dimensions.width: got []; allowed: a non-empty list"),
    (_broken(width=[0]), "dimensions.width: got 0; allowed: positive numbers"),
    (_broken(colour=["red"]), "dimensions.colour: unknown dimension"),
    (_broken(depth=[1.5]), "dimensions.depth: got 1.5; allowed: integers"),
    (_broken(conv_kernel=[3, 4]), "dimensions.conv_kernel: got 4; allowed: odd sizes"),
    (_broken(drop_path={"low": 0.5, "high": 0.1}), "dimensions.drop_path: got"),
    ({"dimensions": {}}, "missing; every dimension needs"),
    ([], "expected a mapping with a `dimensions` mapping"),
])
def test_space_file_errors(data, message):
    with pytest.raises(UserError) as err:
        space_from_dict(data)
    assert message in str(err.value) and "\n" not in str(err.value)


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
