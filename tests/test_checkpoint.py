"""Checkpoints: saved and loaded without a data set, strict JSON metrics, and one-line errors for bad folders."""
import json

import pytest
import torch

from vitnas.errors import UserError
from vitnas.nas.checkpoint import load_checkpoint, read_info, save_checkpoint
from vitnas.nas.trial import normalized_model
from vitnas.search_spaces.space import load_space

MEAN, STD = [0.2, 0.5, 0.7], [0.1, 0.3, 0.2]  # unlike any default, so only the file can supply them


def _arch(width_scale: int = 1, in_chans: int = 3):
    arch = load_space("metaformer").default_config(8, in_chans, 4)
    if width_scale == 1:
        return arch
    data = arch.to_dict()
    data["stages"] = [{**stage, "width": stage["width"] * width_scale} for stage in data["stages"]]
    return type(arch).from_dict(data)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    arch = _arch()
    model = normalized_model(arch, MEAN, STD).eval()
    save_checkpoint(tmp_path, arch, model, {"dataset": "synthetic:chans=3", "seed": 7,
                                            "metrics": {"accuracy": 0.5, "robustness_relative": {"x": float("nan")}}})
    return tmp_path, model


def test_a_checkpoint_loads_without_its_data_set_and_computes_the_same_outputs(saved):
    directory, model = saved
    loaded = load_checkpoint(directory)
    normalize = loaded.model[0]
    assert normalize.mean.flatten().tolist() == pytest.approx(MEAN) and normalize.std.flatten().tolist() == \
        pytest.approx(STD)
    images = torch.rand(5, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), model(images))
    assert loaded.arch == _arch() and loaded.info["seed"] == 7 and not loaded.model.training


def test_metrics_json_is_strict_json(saved):
    directory, _ = saved
    text = (directory / "metrics.json").read_text()
    info = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in metrics.json"))
    assert info["metrics"]["robustness_relative"] == {"x": None}
    assert read_info(directory)["dataset"] == "synthetic:chans=3"


def test_weights_that_do_not_match_the_config_are_one_line(saved):
    directory, _ = saved
    (directory / "config.yaml").write_text(_arch(width_scale=2).to_yaml())
    with pytest.raises(UserError, match="does not match") as error:
        load_checkpoint(directory)
    assert "size mismatch" in str(error.value) and "\n" not in str(error.value)


def test_the_input_channels_come_from_the_config(saved):
    directory, _ = saved
    (directory / "config.yaml").write_text(_arch(in_chans=1).to_yaml())  # the saved statistics have 3 channels
    with pytest.raises(UserError, match="does not match"):
        load_checkpoint(directory)


def test_pickled_python_objects_are_refused(saved):
    directory, _ = saved
    torch.save({"weights": load_checkpoint(directory).arch}, directory / "model.pt")  # an object, not tensors
    with pytest.raises(UserError, match="holds more than weights"):
        load_checkpoint(directory)
