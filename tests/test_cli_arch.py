"""`vitnas presets`, `vitnas arch summary`, `vitnas space show|sample` through Typer's runner."""
import json

import pytest
import yaml
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.nas.cost import Cost
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.presets import preset_names

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, list(args))


def test_summary_json_has_integer_counts():
    result = _run("arch", "summary", "--preset", "deit_tiny", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["params"], type(data["macs"])) == (5_717_416, int) and data["flops"] == 2 * data["macs"]
    assert [p["name"] for p in data["parts"]] == ["stem", "stage 1", "head"]


def test_summary_of_a_config_file_with_data_overrides(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text(ArchConfig.from_dict({"stem": {"patch_size": 4},
                                          "stages": [{"depth": 1, "width": 16, "mixer": "pool"}]}).to_yaml())
    result = _run("arch", "summary", str(path), "--image-size", "8", "--in-chans", "1", "--num-classes", "3")
    assert result.exit_code == 0, result.output
    assert "params" in result.output and "stage 1" in result.output and "FLOPs" in result.output


def test_presets_lists_every_preset_with_its_cost(monkeypatch):
    """A made-up cost per preset (counting them all at 224x224 takes seconds; the slow test below does it), each of
    which must show in its preset's row, in params, GMACs and GFLOPs."""
    names = preset_names()
    costs = {name: Cost(params=1_000_000 + i, macs=(i + 1) * 10**9, flops=2 * (i + 1) * 10**9, activation_bytes=0,
                        input_shape=(3, 224, 224), parts=()) for i, name in enumerate(names)}
    monkeypatch.setattr("vitnas.cli.arch.count_cost", lambda config: costs[config.name])
    result = _run("presets")
    assert result.exit_code == 0, result.output
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.output.splitlines()
             if line.startswith("│")]
    rows = {name: rest for name, *rest in cells}
    assert rows == {name: [f"1,000,{i:03d}", f"{i + 1}.00", f"{2 * (i + 1)}.00"] for i, name in enumerate(names)}


@pytest.mark.slow  # counts every preset at 224x224
def test_presets_counts_every_preset():
    result = _run("presets")
    assert result.exit_code == 0, result.output
    assert "poolformer_s12" in result.output and "11,915,176" in result.output


@pytest.mark.parametrize("args, message", [
    (["arch", "summary", "--preset", "nope"], "error: preset: got 'nope'; allowed:"),
    (["arch", "summary", "--preset", "deit_tiny", "--image-size", "30"],
     "error: stem.patch_size: got 16; must divide image_size 30"),
    (["arch", "summary"], "error: give exactly one of --preset NAME or a CONFIG.yaml path"),
    (["arch", "summary", "missing.yaml"], "cannot read it"),
    (["space", "show", "nope"], "error: space: got 'nope'"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    result = _run(*args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_space_show_json_and_table():
    data = json.loads(_run("space", "show", "metaformer", "--json").output)
    assert "attention" in data["dimensions"]["mixer"]
    assert "num_stages" in _run("space", "show").output


def test_space_sample_is_reproducible_yaml():
    args = ["space", "sample", "metaformer", "--n", "3", "--seed", "7", "--image-size", "8", "--in-chans", "1"]
    first = _run(*args)
    assert first.exit_code == 0, first.output
    docs = list(yaml.safe_load_all(first.output))
    assert len(docs) == 3 and all(ArchConfig.from_dict(d).image_size == 8 for d in docs)
    assert _run(*args).output == first.output


@pytest.mark.parametrize("command", [["presets"], ["arch", "summary"], ["space", "show"], ["space", "sample"]])
def test_help_has_example_and_convention(command):
    result = _run(*command, "--help")
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "Example: vitnas" in text and "FLOPs = 2 x MACs" in text
