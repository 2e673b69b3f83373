"""`vitnas train --precision`: the search's option, with the same meaning, on one training run."""
import pytest
import torch
from typer.testing import CliRunner

from vitnas.cli.app import app

DATA = "synthetic:n=192,size=8,chans=1,classes=3"


def test_train_precision_fp32_turns_bf16_off_where_auto_would_use_it(tmp_path, monkeypatch):
    monkeypatch.setattr("vitnas.nas.inference.native_bf16_cpu", lambda: True)  # auto: bf16, on any CPU
    autocasts = []
    original = torch.autocast

    def recording(device_type, *args, **kwargs):
        autocasts.append(kwargs.get("enabled", True))
        return original(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", recording)
    result = CliRunner().invoke(app, ["train", "--dataset", DATA, "--epochs", "1", "--measure", "accuracy",
                                      "--robustness", "none", "--device", "cpu", "--precision", "fp32",
                                      "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    assert autocasts and not any(autocasts)  # training and every evaluation in float32
    assert (tmp_path / "m" / "model.pt").is_file()


def test_an_unknown_precision_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["train", "--dataset", DATA, "--precision", "foo", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "--precision" in result.stderr
    assert not (tmp_path / "m").exists()  # refused before anything was written
