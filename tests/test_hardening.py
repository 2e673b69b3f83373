"""The hardening issue's promises: bad input is one line and exit 2 before anything trains or a study is made;
finished work is never replaced unasked; names never become paths unchecked; nothing hangs."""
import io
import json
import os
import stat
import time
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.cli.live import showing
from vitnas.errors import UserError
from vitnas.nas.files import write_text_atomic
from vitnas.nas.search.study import AVOID_ATTR
from vitnas.search_spaces.registry import MIXERS
from vitnas.search_spaces.space import SPACE_DIR, load_space, space_from_dict

DATA = "synthetic:n=64,size=8,chans=1,classes=2"
FAST = ["--dataset", DATA, "--epochs", "1", "--robustness", "none", "--measure", ""]
runner = CliRunner()


def _one_line_error(result, *fragments: str) -> str:
    """The promise for bad input: exit 2, one `error:` line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def no_training(monkeypatch):
    """Any training from here on fails the test: a refusal must come before it."""
    import vitnas.nas.trial

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the input was refused")

    monkeypatch.setattr(vitnas.nas.trial, "run_trial", refuse)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "m"
    result = runner.invoke(app, ["train", *FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _copy(checkpoint: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("config.yaml", "metrics.json", "model.pt"):
        (to / name).write_bytes((checkpoint / name).read_bytes())
    return to


# -- 1. finished work is not replaced unasked --------------------------------------------------------------------

def test_train_refuses_a_non_empty_out_unless_forced(checkpoint, tmp_path):
    out = _copy(checkpoint, tmp_path / "kept")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = runner.invoke(app, ["train", *FAST, "--seed", "1", "--out", str(out)])
    _one_line_error(result, "--out", "not empty", "--force")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    forced = runner.invoke(app, ["train", *FAST, "--seed", "1", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "metrics.json").read_text())["seed"] == 1


# -- 13. a config's name never becomes a path unsanitised ---------------------------------------------------------

def test_a_config_name_with_dots_and_slashes_stays_under_runs(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    config = yaml.safe_load(load_space("metaformer").default_config(8, 1, 2).to_yaml())
    config["name"] = "../../../escaped/x"
    (work / "evil.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(work)
    result = runner.invoke(app, ["train", "evil.yaml", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    saved = (work / json.loads(result.stdout)["checkpoint"]).resolve()
    assert saved.parent == (work / "runs").resolve() and (saved / "model.pt").is_file()
    assert not (tmp_path / "escaped").exists()


# -- 23. unwritable outputs are refused before training or measuring -----------------------------------------------

@pytest.mark.parametrize("where", ["a_file", "a_file/sub", "/proc/vitnas-out", "x" * 300])
def test_train_refuses_an_unwritable_out_before_training(tmp_path, no_training, where):
    (tmp_path / "a_file").write_text("not a folder")
    out = where if where.startswith("/") else str(tmp_path / where)
    _one_line_error(runner.invoke(app, ["train", *FAST, "--out", out]), "--out")
    assert (tmp_path / "a_file").read_text() == "not a folder"


@pytest.mark.parametrize("command", [["search", "--dataset", DATA], ["ablate", "poolformer-token-mixer"]])
def test_search_and_ablate_refuse_an_out_they_cannot_write(tmp_path, command):
    (tmp_path / "a_file").write_text("not a folder")
    _one_line_error(runner.invoke(app, [*command, "--out", str(tmp_path / "a_file")]), "--out")
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_evaluate_refuses_a_heatmap_path_that_is_a_folder_before_measuring(checkpoint, tmp_path):
    _one_line_error(runner.invoke(app, ["evaluate", str(checkpoint), "--heatmap", str(tmp_path)]), "--heatmap",
                    "folder")


@pytest.mark.parametrize("option", ["--csv", "--html"])
def test_report_outputs_that_are_folders_are_refused_before_reading(tmp_path, option):
    _one_line_error(runner.invoke(app, ["report", str(tmp_path / "no-study"), option, str(tmp_path)]), option,
                    "folder")


# -- 28. the heat map is written where it is reported; NaN weights are refused ------------------------------------

def test_the_heatmap_is_written_at_the_path_it_reports(checkpoint, tmp_path):
    heatmap = tmp_path / "fourier"  # no suffix: matplotlib alone would write fourier.png
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--robustness", "none", "--measure", "",
                                 "--heatmap", str(heatmap), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["heatmap"] == str(heatmap)
    assert heatmap.read_bytes().startswith(b"\x89PNG") and not heatmap.with_suffix(".png").exists()


def test_a_checkpoint_with_nan_weights_is_refused(checkpoint, tmp_path):
    broken = _copy(checkpoint, tmp_path / "nan")
    state = torch.load(broken / "model.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1 and "weight" in k)
    state[name][0] = float("nan")
    torch.save(state, broken / "model.pt")
    _one_line_error(runner.invoke(app, ["evaluate", str(broken)]), "NaN", name)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left behind


def test_the_live_views_last_line_ends_before_an_error(tmp_path):
    table = Table()
    table.add_column("trial")
    table.add_row("0")
    console = Console(file=io.StringIO(), force_terminal=False, width=40)
    with pytest.raises(UserError):
        with showing(Live(table, console=console)):
            raise UserError("boom")
    assert console.file.getvalue().endswith("┘\n")


# -- 9. a device that cannot be used is refused before a search or a training starts ------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["train", *FAST, "--device", "tpu"], "--device"),
    (["train", *FAST, "--device", "cudafoo"], "--device"),
    (["search", "--dataset", DATA, "--device", "tpu"], "--device"),
    (["search", "--dataset", DATA, "--device", "cuda"], "--gpus-per-trial"),
    (["evaluate", "nowhere", "--device", "cuda:x"], "--device"),
])
def test_an_unusable_device_is_refused_up_front(tmp_path, no_training, args, fragment):
    _one_line_error(runner.invoke(app, [*args, "--out", str(tmp_path / "o")] if args[0] != "evaluate" else args),
                    fragment)
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_train_on_cuda_without_a_gpu_is_refused_before_reading_data(tmp_path, no_training):
    _one_line_error(runner.invoke(app, ["train", "--dataset", "/no/such/data", "--device", "cuda:1"]), "cuda")


# -- 10. a space's values are checked against the config's own limits when the space is read ----------------------

def _space_with(**dimensions) -> dict:
    data = yaml.safe_load((SPACE_DIR / "metaformer.yaml").read_text())
    data["dimensions"].update(dimensions)
    return data


def test_space_show_refuses_a_drop_path_range_no_config_accepts(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(_space_with(drop_path={"low": 0.0, "high": 0.95})))
    _one_line_error(runner.invoke(app, ["space", "show", str(path)]), "drop_path", "0.95", "0.9")


@pytest.mark.parametrize("dimension, values, limit", [
    ("mlp_ratio", [2.0, 20.0], "16"), ("width", [32, 10000], "8192"), ("depth", [1, 65], "64"),
    ("layer_scale", [None, 11.0], "10"), ("conv_kernel", [3, 33], "31"), ("token_mlp_ratio", [0.5, 17.0], "16"),
    ("temperature", {"low": 0.5, "high": 101.0}, "100"),
])
def test_space_values_outside_the_configs_limits_are_refused(dimension, values, limit):
    with pytest.raises(UserError, match=rf"dimensions\.{dimension}: .*{limit}"):
        space_from_dict(_space_with(**{dimension: values}))


@pytest.mark.skipif("window" not in MIXERS, reason="the window mixer is not registered")
def test_a_window_larger_than_any_config_allows_is_refused():
    with pytest.raises(UserError, match="window_size: 100 .*64"):
        space_from_dict(_space_with(mixer=["window"], window_size=[4, 100]))


def test_values_that_fit_only_some_stages_are_still_accepted():
    """head_dim 24 divides only some widths: the space leaves it out where it does not fit, it is not an error."""
    space = space_from_dict(_space_with(head_dim=[16, 24], drop_path={"low": 0.0, "high": 0.9}))
    assert space.choices["head_dim"] == (16, 24) and space.ranges["drop_path"].high == 0.9


# -- 11, 13: names that become folders are plain folder names ----------------------------------------------------

@pytest.mark.parametrize("where", ["name", "arm", "profile"])
@pytest.mark.parametrize("bad", ["..", ".hidden", "a\n", "x" * 101])
def test_ablation_names_that_become_folders_are_plain(tmp_path, where, bad):
    from vitnas.nas.ablation.study import load_study, shipped_dir

    study = yaml.safe_load((shipped_dir() / "poolformer-token-mixer.yaml").read_text())
    if where == "name":
        study["name"] = bad
    elif where == "arm":
        study["arms"][bad] = study["arms"].pop("identity")
    else:
        study["profiles"][bad] = study["profiles"]["quick"]
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(UserError, match="not starting with '.'"):
        load_study(str(path))


# -- 12, 16 and 28: hostile YAML is one short line, fast --------------------------------------------------------

BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nstages: *g\n")


@pytest.mark.parametrize("command", [["arch", "summary"], ["space", "show"], ["train", *FAST]])
def test_yaml_alias_bombs_are_refused_at_once(tmp_path, no_training, command):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    started = time.monotonic()
    line = _one_line_error(runner.invoke(app, [*command, str(path)]), "aliases", "100,000")
    assert time.monotonic() - started < 10 and len(line) < 300


def test_an_ablation_study_file_with_an_alias_bomb_is_refused(tmp_path):
    from vitnas.nas.ablation.study import load_study

    path = tmp_path / "study.yaml"
    path.write_text(BOMB)
    with pytest.raises(UserError, match="aliases"):
        load_study(str(path))


def test_a_repeated_stage_written_with_an_anchor_still_loads(tmp_path):
    """yaml.safe_dump writes a repeated object once and aliases it: such a file is no bomb."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"image_size": 32, "stem": {"patch_size": 4},
                                    "stages": [{"depth": 1, "width": 8, "mixer": "pool"}] * 2}))
    assert "*id001" in path.read_text()
    result = runner.invoke(app, ["arch", "summary", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert [s["width"] for s in json.loads(result.stdout)["config"]["stages"]] == [8, 8]


@pytest.mark.parametrize("command", [["arch", "summary"], ["space", "show"]])
def test_a_file_that_is_not_utf8_is_one_line(tmp_path, command):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\nstages: []\n".encode("latin-1"))
    _one_line_error(runner.invoke(app, [*command, str(path)]), "UTF-8")


@pytest.mark.parametrize("config, fragment", [
    ({"name": "x" * 100_000, "stages": "y" * 100_000}, "stages"),
    ({"stages": [{"depth": 1, "width": 8, "mixer": "pool"}] * 5}, "got 5"),
    ({"stages": [{"depth": 1, "width": 8, "mixer": {"kind": "pool", "kernel_size": list(range(1_000))}}]},
     "kernel_size"),
])
def test_error_messages_show_a_bounded_excerpt_of_the_value(tmp_path, config, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    line = _one_line_error(runner.invoke(app, ["arch", "summary", str(path)]), fragment)
    assert len(line) < 400 and "StageConfig" not in line


def test_space_sample_refuses_a_count_that_would_run_for_hours():
    _one_line_error(runner.invoke(app, ["space", "sample", "--n", str(10**9)]), "--n")


def test_a_key_with_a_line_break_is_still_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"stages": [{"depth": 1, "width": 8, "mixer": "pool", "a\x1eb\nc": 1}]}))
    _one_line_error(runner.invoke(app, ["arch", "summary", str(path)]), "unknown key")


# -- 25, 26: a Ray address that is malformed or silent is refused at once -----------------------------------------

@pytest.mark.parametrize("address", ["garbage", "ray://", "10.0.0.1:99999", "http://x:1"])
def test_a_malformed_ray_address_is_refused(tmp_path, address):
    result = runner.invoke(app, ["search", "--dataset", DATA, "--address", address, "--out", str(tmp_path)])
    _one_line_error(result, "--address")
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_ray_address_from_the_environment_is_refused(tmp_path):
    result = runner.invoke(app, ["search", "--dataset", DATA, "--out", str(tmp_path)], env={"RAY_ADDRESS": "garbage"})
    _one_line_error(result, "garbage")
    assert list(tmp_path.iterdir()) == []


def test_an_address_where_nothing_answers_is_refused_within_seconds(tmp_path):
    started = time.monotonic()
    result = runner.invoke(app, ["search", "--dataset", DATA, "--address", "127.0.0.1:1", "--out", str(tmp_path)])
    _one_line_error(result, "127.0.0.1:1", "nothing answers")
    assert time.monotonic() - started < 15 and list(tmp_path.iterdir()) == []


# -- the study store (items 2, 6, 27) ---------------------------------------------------------------------------

def _spec(name: str = "s", **changes):
    from vitnas.nas.metrics import parse_objectives
    from vitnas.nas.search.study import StudySpec, default_storage

    fields = dict(name=name, storage=default_storage(Path(name)), space="metaformer", dataset=DATA,
                  objectives=parse_objectives("accuracy,macs"), sampler="random", seed=0)
    return StudySpec(**{**fields, **changes})


def _run_one(store, accuracy: float = 0.5) -> None:
    """What a search does with one trial, without training: ask, then record an OK result."""
    from vitnas.nas.executor import TrialResult
    from vitnas.nas.outcome import Outcome

    trial = store.ask()
    store.finish(trial, {"name": f"a{trial.number}"}, TrialResult(Outcome.OK, {"val_accuracy": accuracy,
                                                                               "macs": 10, "params": 5}))


def _trial_count(directory: Path) -> int:
    from vitnas.nas.study_reader import read_study

    return len(read_study(directory).trials)


@pytest.mark.parametrize("recorded", ["relative", "absolute (before the fix)"])
def test_a_copied_study_writes_into_its_own_database(tmp_path, recorded):
    import shutil

    from vitnas.nas.search.samplers import make_sampler
    from vitnas.nas.search.study import StudyStore

    original = tmp_path / "s"
    _run_one(StudyStore.create(original, _spec(), make_sampler("random", 0)))
    study_file = json.loads((original / "study.json").read_text())
    if recorded == "relative":
        assert study_file["storage"] == "sqlite:///study.db"
    else:  # what earlier releases wrote: the original's database by absolute path
        study_file["storage"] = f"sqlite:///{(original / 'study.db').resolve()}"
        (original / "study.json").write_text(json.dumps(study_file))
    shutil.copytree(original, tmp_path / "s_bak")
    _run_one(StudyStore.open(tmp_path / "s_bak", make_sampler("random", 1)))
    assert _trial_count(original) == 1 and _trial_count(tmp_path / "s_bak") == 2


def _hold_then_sleep(directory: Path, held) -> None:
    from vitnas.nas.search.study import hold_lock

    with hold_lock(directory):  # held until the process is killed
        held.set()
        time.sleep(60)


def test_a_study_has_one_driver_and_the_second_is_told_who(tmp_path):
    import multiprocessing

    from vitnas.nas.search.study import hold_lock

    # another process, forked rather than started afresh: it has vitnas imported already, which saves seconds
    context = multiprocessing.get_context("fork")
    held = context.Event()
    holder = context.Process(target=_hold_then_sleep, args=(tmp_path / "s", held))
    holder.start()
    try:
        assert held.wait(timeout=60)
        with pytest.raises(UserError, match=rf"pid {holder.pid} on "):
            hold_lock(tmp_path / "s")
    finally:
        holder.kill()  # kill -9: the lock goes with the process
        holder.join()
    hold_lock(tmp_path / "s").close()


def test_a_study_whose_proposals_were_all_rejected_can_be_started_afresh(tmp_path):
    from vitnas.nas.search.samplers import make_sampler
    from vitnas.nas.search.study import StudyStore

    store = StudyStore.create(tmp_path / "s", _spec(), make_sampler("random", 0))
    store.reject(store.ask(), {}, "over --max-macs")
    again = StudyStore.create(tmp_path / "s", _spec(seed=3), make_sampler("random", 3))
    assert again.spec.seed == 3 and again.study.get_trials() == []
    _run_one(again)
    with pytest.raises(UserError, match="--resume"):  # a study that ran a trial is never started afresh
        StudyStore.create(tmp_path / "s", _spec(), make_sampler("random", 0))


def test_an_architecture_stored_before_a_field_existed_is_still_a_repeat():
    from vitnas.nas.search.study import config_key
    from vitnas.search_spaces.space import load_space

    config = load_space("metaformer").default_config(image_size=8, in_chans=1, num_classes=3).to_dict()
    older = {key: value for key, value in config.items() if key not in ("mlp", "stage_norm", "downsample_norm_eps")}
    assert config_key(older) == config_key(config)
    assert config_key({**older, "mlp": "dwconv"}) != config_key(config)
    assert config_key({"name": "not an architecture"}) == '{"name": "not an architecture"}'


# -- 28. a trial killed between its files and the storage write -------------------------------------------------

def _killed_before_the_storage_write(directory: Path, monkeypatch, cut_after: str) -> None:
    """A driver that dies (pid of a finished process) after writing the trial folder up to `cut_after`."""
    import socket
    import subprocess
    import sys

    from vitnas.nas.search import study as study_module
    from vitnas.nas.search.samplers import make_sampler

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store = study_module.StudyStore.create(directory, _spec(), make_sampler("random", 0))
    written, real_write = [], study_module.write_text_atomic

    def kill(*_):
        raise KeyboardInterrupt  # nothing after this point happens

    def write_until_cut(path, text):
        if written and written[-1] == cut_after:
            kill()
        real_write(path, text)
        written.append(Path(path).name)

    monkeypatch.setattr(study_module, "write_text_atomic", write_until_cut)
    monkeypatch.setattr(study_module.StudyStore, "_tell", kill)
    trial = store.ask()
    trial.set_user_attr("driver", {"host": socket.gethostname(), "pid": int(dead.stdout)})
    with pytest.raises(KeyboardInterrupt):
        _run_one_on(store, trial)
    monkeypatch.undo()


def _run_one_on(store, trial) -> None:
    from vitnas.nas.executor import TrialResult
    from vitnas.nas.outcome import Outcome

    store.finish(trial, {"name": "a0"}, TrialResult(Outcome.OK, {"val_accuracy": 0.75, "macs": 10, "params": 5}))


def test_a_trial_killed_after_its_files_is_recorded_from_them_on_resume(tmp_path, monkeypatch):
    from vitnas.nas.search.samplers import make_sampler
    from vitnas.nas.search.study import StudyStore
    from vitnas.nas.study_reader import read_study

    _killed_before_the_storage_write(tmp_path / "s", monkeypatch, cut_after="metrics.json")
    assert read_study(tmp_path / "s").trials[0].state == "RUNNING"
    StudyStore.open(tmp_path / "s", make_sampler("random", 1)).recover_interrupted()
    (trial,) = read_study(tmp_path / "s").trials
    on_disk = json.loads((tmp_path / "s" / "trials" / "0000" / "metrics.json").read_text())
    assert (trial.state, trial.outcome, trial.values["accuracy"]) == ("COMPLETE", "ok", 0.75)
    assert on_disk["status"] == "ok" and trial.config == {"name": "a0"}


def test_a_trial_killed_while_writing_its_files_runs_again_and_claims_nothing(tmp_path, monkeypatch):
    from vitnas.nas.search.samplers import make_sampler
    from vitnas.nas.search.study import StudyStore
    from vitnas.nas.study_reader import read_study

    _killed_before_the_storage_write(tmp_path / "s", monkeypatch, cut_after="log.txt")
    StudyStore.open(tmp_path / "s", make_sampler("random", 1)).recover_interrupted()
    states = [(t.state, t.outcome) for t in read_study(tmp_path / "s").trials]
    assert states == [("FAIL", "interrupted"), ("WAITING", None)]  # failed as interrupted, its config queued again
    assert not (tmp_path / "s" / "trials" / "0000" / "metrics.json").exists()


# -- the search driver (items 4, 5, 6, 11, 27) --------------------------------------------------------------------

SEARCH_OPTIONS = {"--dataset": DATA, "--epochs": "1", "--robustness": "none", "--sampler": "random", "--trials": "3"}
SEARCH = ["search", *(item for pair in SEARCH_OPTIONS.items() for item in pair)]


@pytest.fixture
def no_trials_run(monkeypatch):
    """`vitnas search` up to its study, without Ray: the study is opened (or refused) exactly as in a real search."""
    import vitnas.nas.search.runner

    monkeypatch.setattr(vitnas.nas.search.runner, "run_search", lambda *args, **kwargs: None)


@pytest.mark.parametrize("change, option, original", [
    ({"--seed": "1"}, "--seed", "--seed 0"), ({"--robustness": "gaussian:0.1"}, "--robustness", "--robustness none"),
    ({"--time": "5", "--epochs": None}, "--epochs/--time", "--epochs 1"),
    ({"--epochs": "2"}, "--epochs/--time", "--epochs 1"), ({"--sampler": "tpe"}, "--sampler", "--sampler random"),
    ({"--measure": "latency"}, "--measure", "measurements"),
])
def test_resume_refuses_a_change_to_what_defines_the_study(tmp_path, no_trials_run, change, option, original):
    where = ["--out", str(tmp_path), "--study", "s"]
    first = runner.invoke(app, [*SEARCH, *where])
    assert first.exit_code == 130 and (tmp_path / "s" / "study.json").is_file(), first.output  # 0 of 3 trials
    changed = {k: v for k, v in {**SEARCH_OPTIONS, **change}.items() if v is not None}
    args = ["search", *(item for pair in changed.items() for item in pair), *where, "--resume"]
    _one_line_error(runner.invoke(app, args), option, original)
    same = runner.invoke(app, [*SEARCH, *where, "--resume"])
    assert same.exit_code == 130, same.output


@pytest.mark.parametrize("name", ["q?x", "a%20b", "../x", ".hidden", "a/b", "x" * 101, "a b"])
def test_study_names_are_plain_folder_names(tmp_path, no_trials_run, name):
    out = tmp_path / "runs"
    _one_line_error(runner.invoke(app, [*SEARCH, "--out", str(out), "--study", name]), "--study")
    assert not tmp_path.joinpath("x").exists() and not out.exists()


@pytest.mark.parametrize("args", [
    ["--space", "no-such-space"], ["--dataset", "/no/such/data"],
    *([["--gpus-per-trial", "1"]] if not torch.cuda.is_available() else []),
])
def test_a_failed_start_leaves_no_study(tmp_path, no_trials_run, args):
    _one_line_error(runner.invoke(app, [*SEARCH, *args, "--out", str(tmp_path), "--study", "s"]))
    assert not (tmp_path / "s").exists()


def _search_settings(tmp_path, **changes):
    from vitnas.nas.metrics import parse_objectives
    from vitnas.nas.search.runner import SearchSettings
    from vitnas.nas.trainer import TrainSettings
    from vitnas.nas.trial import TrialSettings

    fields = dict(space="metaformer", dataset=DATA, trials=12, objectives=parse_objectives("accuracy,macs"),
                  sampler="random", trial=TrialSettings(train=TrainSettings(epochs=1), robustness="none"),
                  out=tmp_path, study="s")
    return SearchSettings(**{**fields, **changes})


class _Quiet:
    def trial_started(self, number, config): pass
    def trial_progress(self, number, epoch, val_accuracy): pass
    def trial_finished(self, record): pass


def _producer(store, settings, propose=None, **kwargs):
    from vitnas.nas.search.searcher import CostLimits, OptunaProducer

    space = load_space("metaformer")
    propose = propose or (lambda trial: space.suggest(trial, image_size=8, in_chans=1, num_classes=2))
    return OptunaProducer(store, propose, lambda config: {"macs": 10, "params": 5}, CostLimits(), settings.trials,
                          settings.trial, _Quiet(), max_rejections=5, **kwargs)


def _drive(producer, n: int) -> list[dict]:
    """What the executor does with one worker: request, run, finish, in turn (every run OK)."""
    from vitnas.nas.executor import TrialResult
    from vitnas.nas.outcome import Outcome

    configs = []
    for i in range(n):
        request = producer.next_request()
        configs.append(request.arch)
        producer.on_finished(request.key, TrialResult(Outcome.OK, {"val_accuracy": 0.5, "macs": 10 + i}))
    return configs


def test_a_resumed_search_continues_the_samplers_sequence(tmp_path):
    """Even where repeats are allowed, the resumed sampler does not start over at its first proposals."""
    from vitnas.nas.search.runner import open_study

    settings = _search_settings(tmp_path)
    with open_study(settings) as store:
        first = _drive(_producer(store, settings, allow_repeats=True), 4)
    with open_study(_search_settings(tmp_path, resume=True)) as store:
        resumed = _drive(_producer(store, settings, allow_repeats=True), 4)
    assert not [c for c in resumed if c in first]


def test_an_architecture_the_study_ran_is_not_run_again_unless_asked(tmp_path):
    from vitnas.nas.search.runner import open_study
    from vitnas.search_spaces.config import ArchConfig

    settings = _search_settings(tmp_path)
    same = load_space("metaformer").default_config(8, 1, 2)
    with open_study(settings) as store:
        _drive(_producer(store, settings, lambda trial: same), 1)
        with pytest.raises(UserError, match="the architecture of trial 0"):
            _producer(store, settings, lambda trial: same).next_request()
        assert store.counted_trials() == 1  # the repeats were rejected untrained
        repeats = [t for t in store.study.get_trials() if t.user_attrs.get("outcome") == "rejected"]
        assert repeats and not any(t.user_attrs.get(AVOID_ATTR) for t in repeats)  # it was trained: not avoided
        assert _drive(_producer(store, settings, lambda trial: same, allow_repeats=True), 1) == [same.to_dict()]
    assert ArchConfig.from_dict(same.to_dict()) == same


def test_a_second_driver_on_a_study_is_refused_until_the_first_ends(tmp_path):
    from vitnas.nas.search.runner import open_study

    with open_study(_search_settings(tmp_path)) as store:
        with pytest.raises(UserError, match=rf"being run by pid {os.getpid()} on "):
            open_study(_search_settings(tmp_path, resume=True))
        assert store.lock is not None
    with open_study(_search_settings(tmp_path, resume=True)):
        pass


def test_joining_a_cluster_that_is_not_there_is_one_line(monkeypatch):
    import ray

    from vitnas.nas.executor import Resources
    from vitnas.nas.executor.run import _start_ray

    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(UserError, match="--address auto: Could not find any running Ray instance"):
        _start_ray(Resources(address="auto"))


@pytest.mark.slow
def test_two_drivers_on_one_study_the_second_is_refused(tmp_path):
    """Two `vitnas search` processes on one study: the second says who runs it and exits 2, without running."""
    import signal
    import subprocess
    import sys

    options = {**SEARCH_OPTIONS, "--epochs": "30", "--trials": "2"}  # the first runs for minutes
    args = [sys.executable, "-m", "vitnas.cli", "search", *(item for pair in options.items() for item in pair),
            "--out", str(tmp_path), "--study", "d"]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "d" / "study.json").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.5)
        second = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"being run by pid {first.pid} on " in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
