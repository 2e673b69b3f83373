"""bf16 autocast on CPUs with native bf16: detection, the auto|bf16|fp32 choice, and that training and every
evaluation inside a trial really run in the precision chosen."""
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.errors import UserError
from vitnas.nas import inference
from vitnas.nas.data import load_dataset
from vitnas.nas.inference import cpuinfo_has_bf16, evaluate_accuracy, resolve_precision, use_precision
from vitnas.nas.robustness import evaluate_robustness, parse_suite
from vitnas.nas.trainer import TrainSettings, train
from vitnas.nas.trial import TrialSettings, build_trial_model, run_trial
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=96,size=8,chans=1,classes=3"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ZEN3 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nbugs\t\t: avx512_bf16_imaginary\n"


data = pytest.fixture(scope="module")(lambda: load_dataset(DATA, seed=0))
arch = pytest.fixture(scope="module")(lambda: load_space("metaformer").default_config(8, 1, 3))


def test_cpuinfo_flags_tell_native_bf16():
    assert cpuinfo_has_bf16(SAPPHIRE_RAPIDS)
    assert cpuinfo_has_bf16("flags\t: sse2 amx_bf16\n")
    assert not cpuinfo_has_bf16(ZEN3)  # only the flags line counts
    assert not cpuinfo_has_bf16("")


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_on_a_gpu_and_on_cpus_with_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(inference, "native_bf16_cpu", lambda: native)
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_an_unknown_precision_is_a_usage_error():
    with pytest.raises(UserError, match="--precision"):
        TrainSettings(precision="fp16")
    result = CliRunner().invoke(app, ["search", "--dataset", DATA, "--precision", "half"])
    assert result.exit_code == 2 and "--precision" in result.stderr


def _linear_dtypes(model: nn.Module) -> list[torch.dtype]:
    """Records the output dtype of every linear layer the model runs from now on."""
    seen: list[torch.dtype] = []
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_training_and_validation_run_in_the_precision_chosen(data, arch, precision, dtype):
    model = build_trial_model(arch, data)
    seen = _linear_dtypes(model)
    result = train(model, data, TrainSettings(epochs=1, batch_size=64, device="cpu", precision=precision))
    assert seen and set(seen) == {dtype}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights and optimiser stay float32
    assert 0 <= result.val_accuracy <= 1


def test_every_evaluation_inside_use_precision_follows_it(data, arch):
    model = build_trial_model(arch, data)
    seen = _linear_dtypes(model)
    with use_precision("bf16"):
        evaluate_accuracy(model, data.x_val, data.y_val)
        evaluate_robustness(model, data.x_val, data.y_val, parse_suite("gaussian:0.1"), device="cpu")
    assert set(seen) == {torch.bfloat16}
    seen.clear()
    evaluate_accuracy(model, data.x_val, data.y_val)  # outside: auto, which is fp32 on a CPU without native bf16
    assert set(seen) == {torch.bfloat16 if inference.native_bf16_cpu() else torch.float32}


def test_a_bf16_trial_s_validation_and_robustness_clean_accuracy_are_one_number(data, arch):
    settings = TrialSettings(train=TrainSettings(epochs=1, batch_size=64, lr=1e-5, device="cpu", precision="bf16"),
                             measurements=frozenset({"robustness"}), robustness="none")
    outcome = run_trial(arch, data, settings)
    assert outcome.history[-1]["val_accuracy"] == outcome.metrics["val_accuracy"] == outcome.metrics[
        "robustness_clean"]
