"""`vitnas export`: the exported model equals the vitnas model, runs where vitnas cannot be imported, trains with
train.py, survives hostile names, and bad sources are one line with exit 2."""
import ast
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.nas.checkpoint import save_checkpoint
from vitnas.nas.export.check import load_source
from vitnas.nas.export.model_file import ModelFacts, render_model_file
from vitnas.nas.trial import normalized_model
from vitnas.search_spaces.config import ACTS, BLOCKS, HEADS, MIXERS, NORMS, STEMS, ArchConfig
from vitnas.search_spaces.presets import load_preset, preset_names

runner = CliRunner()
MEAN, STD = [0.3], [0.2]
STANDARD_LIBRARY = set(sys.stdlib_module_names)


def arch(**overrides) -> ArchConfig:
    """A tiny 8x8 single-channel, 3-class architecture; `stages` entries may name just a mixer."""
    data = {"name": "tiny", "image_size": 8, "in_chans": 1, "num_classes": 3,
            "stem": {"kind": "patch", "patch_size": 2}, "stages": [{"depth": 1, "width": 8, "mixer": "pool"}],
            **overrides}
    return ArchConfig.from_dict(data)


def stage(mixer, width=8, depth=1) -> dict:
    return {"depth": depth, "width": width, "mixer": mixer}


# Each kind of every part appears at least once (test_cases_cover_every_kind checks it against the registries).
CASES = {
    "attention-cls-posembed-layerscale": arch(stages=[stage({"kind": "attention", "head_dim": 4}, depth=2)],
                                              head="cls", pos_embed=True, layer_scale=1e-2, drop_path=0.1),
    "attention-heads-nobias-temperature": arch(stages=[stage({"kind": "attention", "heads": 2, "qkv_bias": False,
                                                              "temperature": 2.0})], pos_embed=True, norm="rmsnorm"),
    "pool-overlap-groupnorm-relu": arch(stem={"kind": "overlap", "patch_size": 2}, norm="groupnorm", act="relu",
                                        stages=[stage({"kind": "pool", "kernel_size": 3}), stage("pool", width=16)]),
    "mlp-convstem-silu": arch(stem={"kind": "conv", "patch_size": 4}, act="silu",
                              stages=[stage({"kind": "mlp", "token_mlp_ratio": 2.0})]),
    "conv-convmixer-batchnorm-actnorm": arch(stem={"kind": "patch", "patch_size": 2, "act_norm": True},
                                             block="convmixer", norm="batchnorm",
                                             stages=[stage({"kind": "conv", "kernel_size": 3}, depth=2)]),
    "identity-no-norm": arch(norm="none", final_norm=False, stages=[stage("identity"), stage("conv", width=12)]),
    "window-patchmerging-stemnorm-squaredrelu": arch(
        image_size=16, stem={"kind": "patch", "patch_size": 2, "norm": True}, downsample="patch_merging",
        act="squared_relu", norm="layernorm_nobias", stages=[stage({"kind": "window", "heads": 2, "window_size": 4}, depth=2),
                                    stage({"kind": "window", "head_dim": 4, "window_size": 2}, width=16, depth=2)]),
    "convnext-normpatch-pooled": arch(image_size=16, stem={"kind": "patch", "patch_size": 2, "norm": True},
                                      block="convnext", downsample="norm_patch", head="pooled", layer_scale=1e-6,
                                      stages=[stage({"kind": "conv", "kernel_size": 7}), stage("conv", width=16)]),
    "sepconv-attention-random-nobias-starrelu-mlphead": arch(
        image_size=16, stem={"kind": "overlap", "patch_size": 2, "norm": True}, downsample="norm_conv",
        norm="groupnorm_nobias", downsample_norm="layernorm_nobias", head_norm="layernorm", act="starrelu",
        mlp_bias=False, head="pooled", head_mlp_ratio=2.0,
        stages=[stage({"kind": "sepconv", "kernel_size": 3}),
                {**stage({"kind": "attention", "head_dim": 8, "qkv_bias": False, "proj_bias": False}, width=16,
                         depth=2), "res_scale": 1.0, "pos_embed": True},
                stage("random", width=16)]),
    "sr-attention-conv-and-pool": arch(stages=[stage({"kind": "sr_attention", "heads": 2, "sr_ratio": 2}),
                                               stage({"kind": "sr_attention", "head_dim": 4, "sr_ratio": 2,
                                                      "reduction": "pool"}, width=16)]),
}


def randomized(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter and buffer moved off its initial value at random (BatchNorm statistics, norm gains, zero
    biases included), so that equal outputs mean equal code; Normalize's statistics are kept."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not name.startswith("0."):
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))
                if name.endswith("running_var"):
                    tensor.abs_()
    return model.eval()


def exported_model(model: torch.nn.Sequential, config: ArchConfig) -> torch.nn.Module:
    """Render model.py for `model` and build its model in a fresh namespace, with `model`'s weights."""
    statistics = [tuple(model[0].mean.flatten().tolist()), tuple(model[0].std.flatten().tolist())]
    facts = ModelFacts(config.to_dict(), {"kind": "config", "file": "x.yaml"}, {}, 0, 0, *statistics)
    twin = load_source(render_model_file(model, facts), "model").build_model()
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin.eval()


def macs(model: torch.nn.Module, images: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(images)
    return counter.get_total_flops() // 2


def assert_equal_models(config: ArchConfig) -> None:
    model = randomized(normalized_model(config, [0.3] * config.in_chans, [0.2] * config.in_chans))
    twin = exported_model(model, config)
    images = torch.rand(3, config.in_chans, config.image_size, config.image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (twin(images) - model(images)).abs().max().item() <= 1e-5
        assert macs(twin, images[:1]) == macs(model, images[:1])
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(CASES))
def test_exported_model_equals_the_vitnas_model(name):
    assert_equal_models(CASES[name])


def test_cases_cover_every_kind():
    configs = [c.to_dict() for c in CASES.values()]
    seen = {
        "mixer": {s["mixer"]["kind"] for c in configs for s in c["stages"]}, "norm": {c["norm"] for c in configs},
        "act": {c["act"] for c in configs}, "stem": {c["stem"]["kind"] for c in configs},
        "block": {c["block"] for c in configs}, "head": {c["head"] for c in configs},
    }
    kinds = {"mixer": MIXERS, "norm": NORMS, "act": ACTS, "stem": STEMS, "block": BLOCKS, "head": HEADS}
    assert seen == {part: set(k.names() if hasattr(k, "names") else k) for part, k in kinds.items()}


def small(config: ArchConfig) -> ArchConfig:
    """The preset at the smallest image size it accepts, for 10 classes."""
    for size in range(config.stem.patch_size, 8 * config.stem.patch_size + 1, config.stem.patch_size):
        try:
            return config.with_data(image_size=size, num_classes=10)
        except Exception:  # a size the stages cannot halve: try the next
            continue
    return config.with_data(num_classes=10)  # Swin-T: 7x7 windows and 2x2 merging fit no grid below 56x56


@pytest.mark.slow
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_exports_equal(name):
    assert_equal_models(small(load_preset(name)))


# ---- the command, end to end -------------------------------------------------------------------------------


def write_image_folder(root: Path, per_class: int = 12) -> Path:
    """8x8 grayscale PNGs, 3 classes told apart by brightness."""
    for split, count in (("train", per_class), ("test", 4)):
        for label in range(3):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("L", (8, 8), color=40 + 80 * label + (i % 5)).save(folder / f"{i}.png")
    return root


def checkpoint(directory: Path, config: ArchConfig) -> torch.nn.Module:
    model = randomized(normalized_model(config, MEAN, STD))
    save_checkpoint(directory, config, model, {"dataset": "synthetic", "seed": 3, "metrics": {"val_accuracy": 0.5}})
    return model


def run_without_vitnas(args: list[str], cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`python ARGS` in a process where `import vitnas` fails (only torch, PIL and the standard library work)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "vitnas.py").write_text("raise ImportError('vitnas must not be needed by an export')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    return {name.split(".")[0] for name in names}


def export(*args: str):
    return runner.invoke(app, ["export", *args])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A trained-looking checkpoint (random weights), exported; the checkpoint model and the export folder."""
    root = tmp_path_factory.mktemp("export")
    model = checkpoint(root / "ckpt", CASES["attention-cls-posembed-layerscale"])
    result = export(str(root / "ckpt"), "--out", str(root / "out"))
    assert result.exit_code == 0, result.output
    return model, root / "out"


def test_export_writes_every_file_and_imports_only_torch(exported):
    _, out = exported
    assert {p.name for p in out.iterdir()} == {"model.py", "weights.pt", "train.py", "config.yaml", "metrics.json",
                                                "README.md"}
    assert imported_packages(out / "model.py") <= {"__future__", "torch", "math"}
    assert imported_packages(out / "train.py") <= STANDARD_LIBRARY | {"torch", "PIL", "model"}
    assert ArchConfig.from_yaml(out / "config.yaml") == CASES["attention-cls-posembed-layerscale"]
    assert json.loads((out / "metrics.json").read_text())["metrics"] == {"val_accuracy": 0.5}


@pytest.mark.slow  # a fresh interpreter; in process, test_exported_model_equals_the_vitnas_model loads model.py
def test_model_and_weights_load_strictly_without_vitnas(exported, tmp_path):
    model, out = exported
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    torch.save(images, tmp_path / "images.pt")
    script = ("import sys, torch\nfrom model import build_model\nmodel = build_model().eval()\n"
              "model.load_state_dict(torch.load('weights.pt', weights_only=True), strict=True)\n"
              f"torch.save(model(torch.load({str(tmp_path / 'images.pt')!r})).detach(), {str(tmp_path / 'out.pt')!r})\n"
              "assert not any(name.startswith('vitnas') for name in sys.modules)\n")
    result = run_without_vitnas(["-c", script], out, tmp_path)
    assert result.returncode == 0, result.stderr
    with torch.no_grad():
        assert (torch.load(tmp_path / "out.pt") - model(images)).abs().max().item() <= 1e-5


@pytest.mark.slow  # trains in a fresh interpreter
def test_train_py_trains_an_epoch_without_vitnas(exported, tmp_path):
    _, out = exported
    data = write_image_folder(tmp_path / "folder")
    result = run_without_vitnas(["train.py", "--data", str(data), "--epochs", "1", "--device", "cpu",
                                 "--save", str(tmp_path / "trained.pt")], out, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout and "val accuracy" in result.stdout and "test accuracy" in result.stdout
    trained = torch.load(tmp_path / "trained.pt", weights_only=True)
    assert set(trained) == set(torch.load(out / "weights.pt", weights_only=True))


HOSTILE = 'x"""; import os; os.system("touch PWNED")  # \'\'\' \\ \n"""'


def test_hostile_names_stay_string_literals(tmp_path):
    config = ArchConfig.from_dict({**CASES["identity-no-norm"].to_dict(), "name": HOSTILE})
    folder = tmp_path / 'ck"""pt \'\'\''
    checkpoint(folder, config)
    result = export(str(folder), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "model.py").read_text()
    compile(text, "model.py", "exec")
    namespace = load_source(text, "hostile")
    assert namespace.CONFIG["name"] == HOSTILE and namespace.SOURCE["folder"] == str(folder)
    compile((tmp_path / "out" / "train.py").read_text(), "train.py", "exec")
    assert not (tmp_path / "out" / "PWNED").exists() and not Path("PWNED").exists()


def test_preset_without_weights_exports_code_only(tmp_path):
    result = export("--preset", "deit_tiny", "--dataset", "synthetic:n=64,size=16,chans=3,classes=4",
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "out" / "weights.pt").exists()
    exported_config = ArchConfig.from_yaml(tmp_path / "out" / "config.yaml")
    assert (exported_config.image_size, exported_config.num_classes) == (16, 4)


@pytest.mark.slow  # torch.onnx's dynamo export and ONNX Runtime: seconds
def test_onnx_matches_pytorch(exported, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, _ = exported
    checkpoint(tmp_path / "ckpt", CASES["conv-convmixer-batchnorm-actnorm"])
    result = export(str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"), "--onnx")
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    saved = torch.load(tmp_path / "ckpt" / "model.pt", weights_only=True)
    pytorch = normalized_model(CASES["conv-convmixer-batchnorm-actnorm"], MEAN, STD)
    pytorch.load_state_dict(saved)
    with torch.no_grad():
        want = pytorch.eval()(images)
    (got,) = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    assert (torch.from_numpy(got) - want).abs().max().item() <= 1e-4


# ---- studies and bad sources ---------------------------------------------------------------------------------


def make_study(directory: Path, outcomes: list[tuple]) -> Path:
    """A study whose trials end as `outcomes`: (Outcome, accuracy, macs, weights?) each, without training."""
    from vitnas.nas.executor import TrialResult
    from vitnas.nas.outcome import Outcome
    from vitnas.nas.records import Objective
    from vitnas.nas.search.samplers import make_sampler
    from vitnas.nas.search.study import StudySpec, StudyStore, default_storage

    config = CASES["identity-no-norm"]
    spec = StudySpec(name="s", storage=default_storage(directory), space="metaformer", dataset="synthetic", seed=7,
                     objectives=[Objective("accuracy", "maximize"), Objective("macs", "minimize")],
                     sampler="random")
    store = StudyStore.create(directory, spec, make_sampler("random", 0))
    for outcome, accuracy, cost, with_weights in outcomes:
        trial = store.ask()
        weights = None
        if with_weights:
            buffer = io.BytesIO()
            torch.save(randomized(normalized_model(config, MEAN, STD)).state_dict(), buffer)
            weights = buffer.getvalue()
        store.finish(trial, config.to_dict(), TrialResult(Outcome(outcome), {"val_accuracy": accuracy, "macs": cost},
                                                          error=None if outcome == "ok" else "it broke",
                                                          weights=weights))
    return directory


def tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_study_exports_its_knee_and_is_left_unchanged(tmp_path):
    # (accuracy, MACs): trial 1 is the balanced one between a cheap-bad and an accurate-costly trial; 3 is dominated
    study = make_study(tmp_path / "study", [("ok", 0.50, 100, True), ("ok", 0.85, 150, True),
                                            ("ok", 0.90, 1000, True), ("ok", 0.40, 2000, True)])
    before = tree_digest(study)
    result = export(str(study), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    exported_from = json.loads((tmp_path / "out" / "metrics.json").read_text())["source"]
    assert (exported_from["trial"], exported_from["chosen"]) == (1, "knee")
    assert (tmp_path / "out" / "weights.pt").is_file()
    assert tree_digest(study) == before


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("studies") / "s", [("ok", 0.5, 100, True), ("failed", 0.0, 0, False)])


@pytest.mark.parametrize("args, fragment", [
    (["--trial", "9"], "no trial 9"),
    (["--trial", "1"], "FAIL"),
    (["--preset", "deit_tiny"], "one source"),
])
def test_bad_study_requests_are_one_line_and_exit_2(study, tmp_path, args, fragment):
    result = export(str(study), *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and fragment in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_study_without_completed_trial_is_refused(tmp_path):
    study = make_study(tmp_path / "study", [("failed", 0.0, 0, False)])
    result = export(str(study), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "no completed trial" in result.stderr, result.output


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    checkpoint(tmp_path / "ckpt", CASES["identity-no-norm"])
    (tmp_path / "ckpt" / "config.yaml").write_text(CASES["pool-overlap-groupnorm-relu"].to_yaml())
    result = export(str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "does not match" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_non_empty_out_needs_force_and_force_drops_stale_files(tmp_path):
    checkpoint(tmp_path / "ckpt", CASES["identity-no-norm"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.onnx").write_text("stale")
    refused = export(str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"))
    assert refused.exit_code == 2 and "--force" in refused.stderr
    forced = export(str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"), "--force")
    assert forced.exit_code == 0, forced.output
    assert not (tmp_path / "out" / "model.onnx").exists() and (tmp_path / "out" / "model.py").is_file()


def test_out_may_not_be_the_source(tmp_path):
    checkpoint(tmp_path / "ckpt", CASES["identity-no-norm"])
    result = export(str(tmp_path / "ckpt"), "--out", str(tmp_path / "ckpt"), "--force")
    assert result.exit_code == 2 and "source" in result.stderr, result.output
