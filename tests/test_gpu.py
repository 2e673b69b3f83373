"""The GPU path (data on the device, bf16 autocast, channels-last, fractional GPUs in a search); skipped without CUDA."""
import json

import pytest
import torch
from typer.testing import CliRunner

from vitnas.cli.app import app

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DATA = "synthetic:n=512,size=16,chans=3,classes=4"
runner = CliRunner()


def test_train_on_gpu_learns_and_reports_gpu_memory(tmp_path):
    result = runner.invoke(app, ["train", "--dataset", DATA, "--epochs", "3", "--device", "cuda",
                                 "--robustness", "gaussian:0.05;fgsm:1", "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["accuracy"] > 0.5 and metrics["peak_memory_mb"] > 0
    again = runner.invoke(app, ["evaluate", str(tmp_path / "m"), "--device", "cpu", "--robustness", "none", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["accuracy"] == pytest.approx(metrics["accuracy"], abs=0.02)  # bf16 vs fp32


def test_search_packs_fractional_gpu_trials(tmp_path):
    result = runner.invoke(app, ["search", "--dataset", DATA, "--trials", "4", "--epochs", "1", "--workers", "4",
                                 "--gpus-per-trial", "0.25", "--robustness", "none", "--out", str(tmp_path),
                                 "--study", "g"])
    assert result.exit_code == 0, result.output
    report = json.loads(runner.invoke(app, ["report", str(tmp_path / "g"), "--json"]).stdout)
    assert sum(t["state"] == "COMPLETE" for t in report["trials"]) == 4
