"""The metric registry, which measurements a trial takes, the one evaluation path and the strict-JSON helper."""
import importlib
import json
import math

import numpy as np
import pytest
import torch

from vitnas.errors import UserError
from vitnas.nas.data import load_dataset
from vitnas.nas.files import json_safe, json_text
from vitnas.nas.metrics import (ALL, MEASUREMENTS, METRICS, measure_help, measurements_for, objective_values,
                                objectives_help, parse_measurements, parse_objectives)
from vitnas.nas.outcome import Outcome
from vitnas.nas.records import Objective
from vitnas.nas.robustness import evaluate_robustness, parse_suite
from vitnas.nas.trainer import TrainSettings
from vitnas.nas.trial import TrialSettings, run_trial
from vitnas.search_spaces.space import load_space

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic:n=192,size=8,chans=1,classes=3")


@pytest.fixture(scope="module")
def arch(data):
    return load_space("metaformer").default_config(data.image_size, data.in_chans, data.num_classes)


def test_every_metric_names_a_registered_measurement_whose_function_exists():
    for metric in METRICS.values():
        assert metric.measurement in MEASUREMENTS, metric.name
    for measurement in MEASUREMENTS.values():
        if measurement.function is not None:
            module, _, name = measurement.function.partition(":")
            assert callable(getattr(importlib.import_module(module), name)), measurement.name


def test_the_help_texts_list_every_objective_and_every_optional_measurement():
    text = objectives_help()
    assert all(f"{name} (" in text for name in ("accuracy", "macs", "robustness", "latency_ms", "peak_memory_mb"))
    assert "test_accuracy" not in text  # reported, never an objective
    assert all(name in measure_help() for name in ("latency", "memory", "robustness"))


def test_objectives_take_the_metric_direction_unless_overridden():
    assert parse_objectives("accuracy, macs:max,latency_ms") == [
        Objective("accuracy", "maximize"), Objective("macs", "maximize"), Objective("latency_ms", "minimize")]


@pytest.mark.parametrize("spec, fragment", [
    ("test_accuracy", "never ranks on test"), ("banana", "unknown objective 'banana'"),
    ("macs,macs", "named twice"), ("macs:up", "max or min"), (" , ", "at least one")])
def test_bad_objectives_are_one_line_user_errors(spec, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_objectives(spec)


def test_a_search_measures_its_objectives_plus_the_cheap_ones_plus_what_is_asked():
    cheap = {"cost", "accuracy", "training"}
    assert measurements_for(parse_objectives("accuracy,macs")) == cheap
    assert measurements_for(parse_objectives("accuracy,robustness")) == cheap | {"robustness"}
    assert measurements_for(parse_objectives("latency_ms"), parse_measurements("memory")) == cheap | {"latency",
                                                                                                     "memory"}
    assert parse_measurements("all") == ALL and parse_measurements("") == frozenset()
    with pytest.raises(UserError, match="'speed'"):
        parse_measurements("latency,speed")


def test_objective_values_read_the_declared_keys():
    objectives = parse_objectives("accuracy,macs")
    assert objective_values(objectives, {"val_accuracy": 0.75, "accuracy": 0.5, "macs": 1000}) == {
        "accuracy": 0.75, "macs": 1000.0}
    assert math.isnan(objective_values(objectives, {"val_accuracy": None, "macs": 1})["accuracy"])
    with pytest.raises(KeyError):
        objective_values(objectives, {"val_accuracy": 0.75})


def test_trial_settings_always_add_the_cheap_measurements_and_refuse_unknown_ones():
    assert TrialSettings().measurements == ALL
    assert TrialSettings(measurements=frozenset({"latency"})).measurements == {"cost", "accuracy", "training",
                                                                                "latency"}
    with pytest.raises(UserError, match="'speed'"):
        TrialSettings(measurements=frozenset({"speed"}))


def test_a_trial_takes_only_the_measurements_it_is_asked_for(data, arch):
    settings = TrialSettings(train=TrainSettings(epochs=1, batch_size=64),
                             measurements=measurements_for(parse_objectives("accuracy,macs")))
    outcome = run_trial(arch, data, settings)
    assert outcome.status is Outcome.OK
    assert {"val_accuracy", "macs", "params", "flops", "train_seconds", "images_per_second",
            "epochs"} <= set(outcome.metrics)
    assert not {"test_accuracy", "accuracy", "latency_ms", "peak_memory_mb", "robustness"} & set(outcome.metrics)


def test_a_diverged_trial_still_gets_the_measurements_that_need_no_training(data, arch):
    # AdamW moves every weight by about lr per step whatever the gradient: 1e30 overflows to inf, then NaN
    settings = TrialSettings(train=TrainSettings(epochs=2, batch_size=64, lr=1e30),
                             measurements=frozenset({"latency"}))
    outcome = run_trial(arch, data, settings)
    assert outcome.status is Outcome.DIVERGED and "diverged" in outcome.error
    assert {"macs", "params", "latency_ms", "train_seconds"} <= set(outcome.metrics)
    assert not {"val_accuracy", "test_accuracy"} & set(outcome.metrics)


@pytest.mark.parametrize("device", DEVICES)
def test_trainer_validation_and_robustness_clean_accuracy_are_one_number(data, arch, device):
    """Both go through nas.inference: same conversion, memory format and autocast (bf16 on a GPU)."""
    # barely trained (tiny learning rate), so that it answers some images right and some wrong
    settings = TrialSettings(train=TrainSettings(epochs=1, batch_size=64, lr=1e-5, device=device),
                             measurements=frozenset(), robustness="none")
    outcome = run_trial(arch, data, settings)
    clean = evaluate_robustness(outcome.model, data.x_val, data.y_val, parse_suite("none"), device=device).clean
    assert outcome.history[-1]["val_accuracy"] == clean == outcome.metrics["val_accuracy"]
    assert 0 < clean < 1  # a real number of right and wrong answers, not a degenerate agreement


def test_json_safe_makes_strict_json_of_nan_inf_numpy_and_torch_values():
    value = {"nan": float("nan"), "inf": -math.inf, "np": np.float32(0.5), "np_int": np.int64(3),
             "tensor": torch.tensor(2.5), "array": np.array([1.0, np.nan]), "tuple": (1, float("inf")), 4: "key"}
    expected = {"nan": None, "inf": None, "np": 0.5, "np_int": 3, "tensor": 2.5, "array": [1.0, None],
                "tuple": [1, None], "4": "key"}
    assert json_safe(value) == expected
    assert json.loads(json_text(value)) == expected
    assert type(json_safe(np.int64(3))) is int and "NaN" not in json_text({"x": float("nan")})
