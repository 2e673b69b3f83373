"""The front measured in full at the end of a search (nas/search/final.py), without Ray: a study is made by hand
with trials whose models predict one class whatever the image, so their test accuracy and robustness are known from
the labels alone."""
import json
from dataclasses import replace

import optuna
import pytest
import torch
from rich.console import Console
from torch import nn

from vitnas.nas.data import load_dataset
from vitnas.nas.executor import TrialResult
from vitnas.nas.executor.worker import weights_bytes
from vitnas.nas.outcome import Outcome
from vitnas.nas.records import Objective
from vitnas.nas.report import print_report
from vitnas.nas.search.final import measure_front
from vitnas.nas.search.study import StudySpec, StudyStore, default_storage
from vitnas.nas.study_reader import read_study
from vitnas.nas.trainer import TrainSettings
from vitnas.nas.trial import TrialSettings, normalized_model
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=192,size=8,chans=1,classes=3"
OBJECTIVES = [Objective("accuracy", "maximize"), Objective("macs", "minimize")]
# (validation accuracy, MACs, the class the model always predicts): trials 0 and 2 are the front, 1 is dominated
TRIALS = [(0.9, 100, 0), (0.5, 200, 1), (0.4, 50, 2)]
SPACE = load_space("metaformer")  # read once: parsing the space file costs more than using it


@pytest.fixture(scope="module")
def data():
    """The synthetic set with its test labels made unequal in share (1/2, 1/3, 1/6), so that models predicting
    different classes score differently; a model that ignores its input does not mind that they fit no image."""
    loaded = load_dataset(DATA, seed=0)
    n = len(loaded.y_test)
    labels = torch.tensor([0] * (n // 2) + [1] * (n // 3) + [2] * (n - n // 2 - n // 3))
    return replace(loaded, y_test=labels[torch.randperm(n, generator=torch.Generator().manual_seed(0))])


def constant_model(data, label: int) -> nn.Module:
    """A trial's model (Normalize + the space's default architecture) whose logits are one-hot at `label`."""
    arch = SPACE.default_config(data.image_size, data.in_chans, data.num_classes)
    model = normalized_model(arch, data.mean, data.std)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        head = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
        head.bias[label] = 1.0
    return model, arch


def make_study(directory, data, robustness: str) -> StudyStore:
    spec = StudySpec(name="final", storage=default_storage(directory), space="metaformer", dataset=DATA,
                     objectives=OBJECTIVES, sampler="random", seed=0, robustness=robustness)
    store = StudyStore.create(directory, spec, optuna.samplers.RandomSampler(seed=0))
    for accuracy, macs, label in TRIALS:
        model, arch = constant_model(data, label)
        result = TrialResult(Outcome.OK, {"val_accuracy": accuracy, "macs": macs}, history=[{"epoch": 1}],
                             weights=weights_bytes(model))
        store.finish(store.ask(), arch.to_dict(), result)
    return store


def settings(precision: str = "fp32") -> TrialSettings:
    # every test image (no bound), so a constant model's accuracy is its class's share of the whole test split
    return TrialSettings(train=TrainSettings(epochs=1, device="cpu", precision=precision), test_images=None)


def share(data, label: int) -> float:
    return (data.y_test == label).float().mean().item()


def test_front_members_get_test_accuracy_and_robustness_in_storage_and_files(tmp_path, data):
    store = make_study(tmp_path / "s", data, robustness="gaussian:0.04")
    said = []
    assert measure_front(store, data, settings(), said.append) == [0, 2]
    trials = {t.number: t for t in read_study(store.directory).trials}  # the report's read-only path
    for number in (0, 2):
        final = trials[number].final_metrics
        # a model that ignores its input scores its class's share on clean and perturbed images alike
        assert final["test_accuracy"] == pytest.approx(share(data, TRIALS[number][2]))
        assert final["robustness"] == pytest.approx(share(data, TRIALS[number][2]))
        assert final["test_images"] == len(data.y_test) and final["robustness_split"] == "test"
        kept = json.loads((store.trial_dir(number) / "metrics.json").read_text())
        assert kept["final_metrics"] == final and kept["history"] == [{"epoch": 1}]  # what was there is kept
        assert kept["metrics"]["val_accuracy"] == TRIALS[number][0]
    assert trials[1].final_metrics == {}  # off the front: not measured
    assert "final_metrics" not in json.loads((store.trial_dir(1) / "metrics.json").read_text())
    assert any("trial 0: test accuracy" in line for line in said)


def test_a_second_call_measures_nothing_again(tmp_path, data, monkeypatch):
    store = make_study(tmp_path / "s", data, robustness="none")
    assert measure_front(store, data, settings()) == [0, 2]
    before = {n: (store.trial_dir(n) / "metrics.json").read_text() for n in (0, 2)}
    monkeypatch.setattr("vitnas.nas.search.final.final_metrics", lambda *args: pytest.fail("measured again"))
    reopened = StudyStore.open(store.directory)  # as --resume of the finished study opens it
    assert measure_front(reopened, data, settings()) == []
    assert {n: (store.trial_dir(n) / "metrics.json").read_text() for n in (0, 2)} == before


def test_suite_none_measures_test_accuracy_only(tmp_path, data):
    store = make_study(tmp_path / "s", data, robustness="none")
    measure_front(store, data, settings())
    final = store.summary().trials[0].final_metrics
    assert final["test_accuracy"] == pytest.approx(share(data, 0))
    assert "robustness" not in final


def test_a_member_without_weights_is_named_and_skipped(tmp_path, data):
    store = make_study(tmp_path / "s", data, robustness="none")
    store.weights_path(2).unlink()  # as --keep-weights none leaves it
    said = []
    assert measure_front(store, data, settings(), said.append) == [0]
    assert [line for line in said if line.startswith("trial 2")] == [
        f"trial 2: not measured: its weights were not kept ({store.weights_path(2)} is missing: the search ran "
        "with --keep-weights none, or the file was removed)"]
    assert store.summary().trials[2].final_metrics == {}


def test_the_front_table_shows_the_final_columns(tmp_path, data):
    store = make_study(tmp_path / "s", data, robustness="gaussian:0.04")
    console = Console(record=True, width=200)
    print_report(read_study(store.directory), console)
    assert "test acc" not in console.export_text()  # nothing measured yet: no empty columns
    measure_front(store, data, settings())
    console = Console(record=True, width=200)
    print_report(read_study(store.directory), console)
    text = console.export_text()
    assert "test acc" in text and "test robustness" in text
    assert share(data, 2) == pytest.approx(1 / 6) and f"{share(data, 2):.4g}" in text


@pytest.mark.parametrize("trials, measured", [(3, True), (4, False)])
def test_run_search_measures_the_front_only_once_the_search_has_all_its_trials(trials, measured, tmp_path, data,
                                                                               monkeypatch):
    from vitnas.nas.search.runner import SearchInputs, SearchSettings, run_search

    store = make_study(tmp_path / "s", data, robustness="none")
    # the executor's part: a study one trial short stays short, as after Ctrl-C
    monkeypatch.setattr("vitnas.nas.search.runner._run_trials", lambda *args: None)
    search = SearchSettings(space="metaformer", dataset=DATA, trials=trials, objectives=OBJECTIVES, sampler="random",
                            trial=settings(), out=tmp_path, study="s")
    run_search(search, store, listener=None, inputs=SearchInputs(SPACE, data))
    assert bool(store.summary().trials[0].final_metrics) is measured
