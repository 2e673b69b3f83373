"""`vitnas train` and `vitnas evaluate` through Typer's runner: the JSON contract, checkpoints, bad input."""
import json

import pytest
from typer.testing import CliRunner

from vitnas.cli.app import app

DATA = "synthetic:n=128,size=8,chans=1,classes=3"
CONTRACT = {"accuracy", "val_accuracy", "params", "macs", "flops", "latency_ms", "robustness",
            "robustness_components", "train_seconds", "images_per_second"}
runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "m"
    result = runner.invoke(app, ["train", "--dataset", DATA, "--epochs", "2", "--robustness", "gaussian:0.5;fgsm:1",
                                 "--seed", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_train_json_has_every_contract_key(trained):
    _, metrics = trained
    assert CONTRACT <= set(metrics)
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["robustness"] <= 1
    assert set(metrics["robustness_components"]) == {"gaussian_noise@0.5", "fgsm@1"}
    assert isinstance(metrics["params"], int) and metrics["flops"] == 2 * metrics["macs"]


def test_evaluate_remeasures_the_saved_model(trained, tmp_path):
    out, metrics = trained
    heatmap = tmp_path / "fourier.png"
    result = runner.invoke(app, ["evaluate", str(out), "--robustness", "gaussian:0.5;fgsm:1", "--heatmap",
                                 str(heatmap), "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])
    assert again["robustness_components"] == pytest.approx(metrics["robustness_components"])
    assert heatmap.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args, fragment", [
    (["train", "--dataset", DATA, "--epochs", "1", "--time", "5"], "--epochs and --time"),
    (["train", "--dataset", DATA, "--preset", "deit_tiny"], "patch"),
    (["train", "--dataset", DATA, "--robustness", "gaussian:banana"], "banana"),
    (["train", "--dataset", "/no/such/data"], "/no/such/data"),
    (["evaluate", "/no/such/checkpoint"], "missing"),
    (["train", "--dataset", DATA, "--measure", "latency,speed"], "--measure"),
    (["search", "--dataset", DATA, "--objectives", "test_accuracy"], "never ranks on test"),
    (["search", "--dataset", DATA, "--measure", "speed"], "--measure"),
    (["search", "--dataset", DATA, "--max-macs", "lots"], "--max-macs"),
    (["search", "--dataset", DATA, "--sampler", "annealing"], "--sampler"),
    (["search", "--dataset", DATA, "--resume"], "--study"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment, tmp_path):
    out = [] if args[0] == "evaluate" else ["--out", str(tmp_path / "o")]
    result = runner.invoke(app, args + out)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("damaged, damage, fragment", [
    ("model.pt", lambda raw: raw[:100], "corrupt"),
    ("config.yaml", lambda raw: raw.replace(b"num_classes: 3", b"num_classes: 5"), "does not match"),
])
def test_a_damaged_checkpoint_is_one_line_and_exit_2(trained, tmp_path, damaged, damage, fragment):
    out, _ = trained
    for name in ("config.yaml", "metrics.json", "model.pt"):
        raw = (out / name).read_bytes()
        (tmp_path / name).write_bytes(damage(raw) if name == damaged else raw)
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--json"])
    assert result.exit_code == 2 and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_measure_limits_train_to_the_cheap_measurements_and_those_named(tmp_path):
    result = runner.invoke(app, ["train", "--dataset", DATA, "--epochs", "1", "--measure", "latency",
                                 "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"accuracy", "val_accuracy", "macs", "train_seconds", "latency_ms"} <= set(metrics)
    assert not {"robustness", "peak_memory_mb"} & set(metrics)


def test_evaluate_on_a_data_set_of_another_shape_is_one_line(trained):
    out, _ = trained
    result = runner.invoke(app, ["evaluate", str(out), "--dataset", "synthetic:n=64,size=8,chans=3,classes=3"])
    assert result.exit_code == 2 and "3 channels" in result.stderr and len(result.stderr.strip().splitlines()) == 1
