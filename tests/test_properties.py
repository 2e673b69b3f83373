"""Property-based checks of the CLI's promise (hardening issue): whatever a config file, a space file, an option value
or a small data file holds, a command ends with exit 0 and a valid result, or exit 2 and one `error:` line; never
a traceback.

Inputs are drawn near the valid ones (a valid config or space with some values replaced, by plausible values or
by any YAML value), where the checks are thinnest. Example counts are fixed and the draws derandomized, so CI runs
the same bounded set every time (EXAMPLES in total, about 5 s of CPU); set VITNAS_HYPOTHESIS=random to explore new
examples locally.
"""
import json
import os
import string

import numpy as np
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.errors import UserError
from vitnas.nas.data import load_dataset
from vitnas.search_spaces.config import BLOCKS, DOWNSAMPLES, HEADS, STEMS, ArchConfig
from vitnas.search_spaces.registry import ACTS, MIXERS, NORMS, RangeDim
from vitnas.search_spaces.space import SPACE_DIR, dimensions, load_space

runner = CliRunner()
COUNTS = {"config": 30, "space": 25, "sample_options": 20, "train_options": 20, "synthetic": 20, "npz": 20,
          "raw_bytes": 20}
EXAMPLES = sum(COUNTS.values())


def _bounded(name: str):
    return settings(max_examples=COUNTS[name], deadline=None, database=None,
                    derandomize=os.environ.get("VITNAS_HYPOTHESIS") != "random",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


def _kept_promise(result) -> bool:
    """exit 0 (True: check the result), or exit 2 with one `error:` line (False); anything else fails the test."""
    if result.exit_code == 0:
        return True
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error:") and len(lines[0]) < 600, result.stderr
    assert "Traceback" not in result.output
    return False


# ---- values --------------------------------------------------------------------------------------------------

NAMES = sorted({*MIXERS.names(), *NORMS.names(), *ACTS.names(), *BLOCKS, *HEADS, *STEMS, *DOWNSAMPLES})
NUMBERS = st.one_of(st.integers(-3, 40), st.sampled_from([0, 1, 2, 4, 8, 31, 33, 64, 4096, 10**6, 10**30]),
                    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 20))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.sampled_from(NAMES), st.text(max_size=12))
ANY_YAML = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=8)


def _replace_some(data, draw, depth: int = 0):
    """A copy of `data` (nested dicts and lists) with a few values replaced, keys dropped or added, lists resized."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            action = draw(st.sampled_from(["keep"] * 6 + ["replace", "drop", "recurse"]))
            if action == "replace":
                out[key] = draw(st.one_of(SCALARS, ANY_YAML))
            elif action == "recurse":
                out[key] = _replace_some(value, draw, depth + 1)
            elif action == "keep":
                out[key] = value
        if draw(st.integers(0, 9)) == 0:
            out[draw(st.text(max_size=8))] = draw(SCALARS)
        return out
    if isinstance(data, list) and data:
        items = [_replace_some(item, draw, depth + 1) for item in data]
        return items * draw(st.sampled_from([1, 1, 1, 2, 3])) if depth < 2 else items
    return data


def _write(tmp_path_factory, text: str | bytes, name: str):
    path = tmp_path_factory.mktemp("prop") / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# ---- config files: `vitnas arch summary` ------------------------------------------------------------------------

VALID_CONFIG = load_space("metaformer").default_config(16, 1, 3).to_dict()


@_bounded("config")
@given(data=st.data())
def test_any_config_file_is_summarised_or_refused_in_one_line(tmp_path_factory, data):
    config = _replace_some(VALID_CONFIG, data.draw)
    path = _write(tmp_path_factory, yaml.safe_dump(config, allow_unicode=True), "config.yaml")
    result = runner.invoke(app, ["arch", "summary", str(path), "--json"])
    if _kept_promise(result):
        summary = json.loads(result.stdout)
        assert summary["params"] > 0 and summary["flops"] == 2 * summary["macs"]
        assert ArchConfig.from_dict(summary["config"]).to_dict() == summary["config"]


# ---- space files: `vitnas space show` and `space sample` --------------------------------------------------------

def _dimension_values(name, dim):
    if isinstance(dim, RangeDim):
        bound = st.one_of(NUMBERS, SCALARS)
        return st.one_of(st.fixed_dictionaries({"low": bound, "high": bound}, optional={"log": st.booleans()}),
                         ANY_YAML)
    listed = st.sampled_from(list(dim.vocabulary)) if dim.vocabulary else NUMBERS
    return st.one_of(st.lists(listed, min_size=1, max_size=4), st.lists(SCALARS, max_size=3), ANY_YAML)


DIMENSIONS = dimensions()
SHIPPED_SPACE = (SPACE_DIR / "metaformer.yaml").read_text()


@st.composite
def space_files(draw):
    base = yaml.safe_load(SHIPPED_SPACE)
    chosen = draw(st.lists(st.sampled_from(sorted(DIMENSIONS)), max_size=4, unique=True))
    for name in chosen:
        base["dimensions"][name] = draw(_dimension_values(name, DIMENSIONS[name]))
    if draw(st.integers(0, 9)) == 0:
        base["dimensions"][draw(st.text(min_size=1, max_size=8))] = [1]
    if draw(st.integers(0, 9)) == 0:
        base["max_tokens"] = draw(ANY_YAML)
    return base


@_bounded("space")
@given(space=space_files())
def test_any_space_file_is_shown_and_sampled_or_refused_in_one_line(tmp_path_factory, space):
    path = _write(tmp_path_factory, yaml.safe_dump(space, allow_unicode=True), "space.yaml")
    if not _kept_promise(runner.invoke(app, ["space", "show", str(path), "--json"])):
        return
    result = runner.invoke(app, ["space", "sample", str(path), "--n", "3", "--image-size", "16", "--in-chans", "1",
                                 "--num-classes", "3"])
    if _kept_promise(result):
        configs = list(yaml.safe_load_all(result.stdout))
        assert len(configs) == 3
        for config in configs:  # every sampled config is a valid config for the data shape asked for
            arch = ArchConfig.from_dict(config)
            assert (arch.image_size, arch.in_chans, arch.num_classes) == (16, 1, 3)


# ---- option values --------------------------------------------------------------------------------------------

OPTION_TEXT = st.one_of(st.integers(-10, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                        st.text(alphabet=string.printable, max_size=10))


@_bounded("sample_options")
@given(n=st.one_of(st.integers(-2, 4).map(str), st.sampled_from(["1001", str(10**12), "2.5", "", "nan"]),
                   st.text(alphabet=string.printable, max_size=2)), seed=OPTION_TEXT, size=OPTION_TEXT)
def test_space_sample_options_give_configs_or_one_line(n, seed, size):
    result = runner.invoke(app, ["space", "sample", "--n", n, "--seed", seed, "--image-size", size,
                                 "--in-chans", "1", "--num-classes", "2"])
    if _kept_promise(result):
        assert len(list(yaml.safe_load_all(result.stdout))) == int(n)


@_bounded("train_options")
@given(option=st.sampled_from(["--seed", "--time", "--epochs", "--device", "--robustness", "--measure"]),
       value=OPTION_TEXT)
def test_train_options_are_one_line_before_anything_trains(tmp_path_factory, option, value):
    """With a data set that does not exist the command must end with exit 2 however the option is spelt: the option's
    own error, or the data set's; it never trains."""
    out = tmp_path_factory.mktemp("train")
    result = runner.invoke(app, ["train", "--dataset", str(out / "missing"), option, value, "--out", str(out / "o")])
    assert not _kept_promise(result)


# ---- small data files and specs ---------------------------------------------------------------------------------

SPEC_VALUES = st.one_of(st.integers(0, 40), st.sampled_from([-1, 0, 10**12, 10**30, 2**32]),
                        st.text(alphabet="0123456789-+e.x ", max_size=6))


@_bounded("synthetic")
@given(items=st.lists(st.tuples(st.sampled_from(["n", "size", "chans", "classes", "seed", "x", ""]), SPEC_VALUES),
                      max_size=5))
def test_any_synthetic_spec_loads_or_is_one_user_error(items):
    spec = "synthetic:" + ",".join(f"{key}={value}" for key, value in items)
    try:
        data = load_dataset(spec)
    except UserError as err:
        assert "\n" not in str(err)
        return
    assert len(data.x_train) == len(data.y_train) > 0 and data.num_classes >= 1
    assert int(data.y_train.min()) >= 0 and int(data.y_train.max()) < data.num_classes


ARRAY = hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int64, np.bool_]),
                   shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))


@st.composite
def npz_contents(draw):
    keys = draw(st.lists(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "classes", "other"]),
                         unique=True, max_size=6))
    return {key: draw(ARRAY) for key in keys}


@_bounded("npz")
@given(arrays=npz_contents())
def test_any_small_npz_loads_or_is_one_user_error(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    np.savez(path, **arrays)
    _loads_or_one_line(str(path))


@_bounded("raw_bytes")
@given(raw=st.binary(max_size=200), suffix=st.sampled_from([".npz", ".zip", ".yaml", ""]))
def test_random_bytes_as_a_data_set_or_config_are_one_line(tmp_path_factory, raw, suffix):
    path = _write(tmp_path_factory, raw, f"file{suffix}")
    _loads_or_one_line(str(path))
    _kept_promise(runner.invoke(app, ["arch", "summary", str(path)]))


def _loads_or_one_line(spec: str) -> None:
    try:
        data = load_dataset(spec, cache_dir=os.path.dirname(spec))
    except UserError as err:
        assert "\n" not in str(err)
        return
    assert len(data.x_train) == len(data.y_train) > 0 and len(data.x_test) == len(data.y_test) > 0
    assert data.x_train.dtype == torch.uint8 and data.x_train.ndim == 4
    assert int(data.y_train.min()) >= 0 and int(data.y_train.max()) < data.num_classes
