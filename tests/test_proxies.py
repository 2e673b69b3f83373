"""Zero-cost proxies against hand-computed values on tiny networks, as a trial's measurement and an objective, and
--prefilter keeping the best fraction of a batch of proposals."""
import math

import pytest
import torch
from torch import nn

from vitnas.errors import UserError
from vitnas.nas.data import load_dataset
from vitnas.nas.executor import TrialResult
from vitnas.nas.metrics import measurements_for, parse_objectives
from vitnas.nas.outcome import Outcome
from vitnas.nas.proxies import meco, naswot, proxy_scores, synflow
from vitnas.nas.search.prefilter import Prefilter, PrefilterSpec
from vitnas.nas.search.searcher import CostLimits, OptunaProducer
from vitnas.nas.search.study import AVOID_ATTR
from vitnas.nas.trainer import TrainSettings
from vitnas.nas.trial import TrialSettings, run_trial
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.registry import ACTS
from vitnas.search_spaces.space import load_space

DATA = "synthetic:n=192,size=8,chans=1,classes=3"


@pytest.fixture(scope="module")
def data():
    return load_dataset(DATA, seed=0)


@pytest.fixture(scope="module")
def arch():
    # the space's default model: a sampled one may be degenerate at 8x8 (one token: MeCo 0, synflow -inf)
    return load_space("metaformer").default_config(8, 1, 3)


def _linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False)
    layer.weight.data = torch.tensor(weight, dtype=torch.float32)
    return layer


def test_naswot_by_hand():
    """Two images that fall on opposite sides of zero on both units: K = [[2, 0], [0, 2]], log det = log 4."""
    model = nn.Sequential(_linear([[1, 0], [0, 1]]), nn.ReLU())
    assert naswot(model, torch.tensor([[1.0, -1.0], [-1.0, 1.0]])) == pytest.approx(math.log(4))
    # identical codes make K singular: log |det| = -inf
    assert naswot(model, torch.tensor([[1.0, 2.0], [3.0, 4.0]])) == -math.inf


def test_synflow_by_hand():
    """|W| = [[1, 1], [2, 0]], |v| = [1, 3], x = 1: R = v.W.1 = 8; a two-layer linear net's flow is 2R = 16."""
    model = nn.Sequential(_linear([[1, -1], [2, 0]]), _linear([[1, -3]]))
    assert synflow(model, torch.zeros(5, 2)) == pytest.approx(math.log(16))
    assert model[0].weight.data.tolist() == [[1, -1], [2, 0]]  # scored on a copy
    # activations are linearised: a squared ReLU between the layers changes nothing, and is still there afterwards
    squared = nn.Sequential(_linear([[1, -1], [2, 0]]), ACTS["squared_relu"](), _linear([[1, -3]]))
    assert synflow(squared, torch.zeros(5, 2)) == pytest.approx(math.log(16))
    assert isinstance(squared[1], ACTS["squared_relu"])


def test_synflow_is_finite_where_squared_relus_would_overflow():
    """Six convmixer blocks with squared ReLUs square the all-ones signal twelve times: 10^300 after three blocks."""
    arch = ArchConfig.from_dict({**load_space("metaformer").default_config(32, 3, 10).to_dict(), "act": "squared_relu",
                                 "block": "convmixer"})
    torch.manual_seed(0)
    assert math.isfinite(synflow(build_model(arch), torch.rand(2, 3, 32, 32)))


def test_meco_by_hand():
    """Four tokens of two channels: uncorrelated channels give the identity (smallest eigenvalue 1), channels
    that move together give [[1, 1], [1, 1]] (smallest eigenvalue 0)."""
    identity = _linear([[1, 0], [0, 1]])
    uncorrelated = torch.tensor([[[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]])
    together = torch.tensor([[[1.0, 2.0], [-1.0, -2.0], [2.0, 4.0], [0.0, 0.0]]])
    assert meco(identity, uncorrelated) == pytest.approx(1.0)
    assert meco(identity, together) == pytest.approx(0.0, abs=1e-9)
    assert meco(_linear([[1, 1]]), uncorrelated) == 0.0  # one channel: no correlation, the layer adds nothing


def test_proxies_of_a_space_model_are_finite_and_seeded(data, arch):
    scores = proxy_scores(arch, data, seed=0)  # their time is benchmarks/bench_proxies.py's to measure
    assert set(scores) == {"naswot", "synflow", "meco"} and all(math.isfinite(v) for v in scores.values())
    assert proxy_scores(arch, data, seed=0) == scores
    assert proxy_scores(arch, data, seed=1) != scores


def test_a_trial_measures_the_proxies_of_its_untrained_model_and_they_can_be_objectives(data, arch):
    objectives = parse_objectives("accuracy,naswot,synflow:min")
    assert [o.direction for o in objectives] == ["maximize", "maximize", "minimize"]
    settings = TrialSettings(train=TrainSettings(epochs=1, batch_size=64), measurements=measurements_for(objectives))
    outcome = run_trial(arch, data, settings)
    untrained = proxy_scores(arch, data, seed=settings.train.seed)
    assert {k: outcome.metrics[k] for k in untrained} == pytest.approx(untrained)


@pytest.mark.parametrize("text, expected", [
    ("naswot", PrefilterSpec("naswot", 0.25, 16)),
    ("synflow:keep=0.5", PrefilterSpec("synflow", 0.5, 16)),
    ("meco:keep=0.1,batch=20", PrefilterSpec("meco", 0.1, 20)),
])
def test_prefilter_specs_parse(text, expected):
    assert PrefilterSpec.parse(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("zen", "unknown proxy"), ("naswot:keep=0", "fraction"), ("naswot:keep=x", "not a number"),
    ("naswot:top=3", "unknown option"), ("naswot:batch=1", "at least 2"),
])
def test_bad_prefilter_specs_are_usage_errors(text, fragment):
    with pytest.raises(UserError, match=fragment):
        PrefilterSpec.parse(text)


def _prefilter(keep: float, batch: int = 4) -> Prefilter:
    return Prefilter(PrefilterSpec("naswot", keep, batch), lambda config: config["score"],
                     parse_objectives("accuracy,macs"))


def test_the_prefilter_keeps_the_best_fraction_by_proxy_and_cost_together():
    same_cost = [({"score": s}, {"macs": 100}) for s in (1.0, 4.0, 2.0, 3.0)]
    kept, skipped = _prefilter(0.5).split(same_cost, needed=10)
    assert kept == [1, 3] and sorted(skipped) == [0, 2]
    assert _prefilter(0.5).split(same_cost, needed=1)[0] == [1]  # never more than the study needs
    # the lowest score but by far the cheapest: non-dominated, so it is kept along with the best score
    trade_off = [({"score": 1.0}, {"macs": 1}), ({"score": 4.0}, {"macs": 100}), ({"score": 2.0}, {"macs": 200}),
                 ({"score": -math.inf}, {"macs": 300})]
    kept, skipped = _prefilter(0.5).split(trade_off, needed=10)
    assert sorted(kept) == [0, 1] and sorted(skipped) == [2, 3] and "prefiltered by naswot" in skipped[3]


def test_a_prefiltering_search_tells_the_sampler_what_it_skipped_and_does_not_count_it(memory_store):
    store = memory_store(sampler="random")
    space = load_space("metaformer")
    scores = iter([3.0, 1.0, 4.0, 2.0, 9.0, 8.0, 7.0, 6.0])
    prefilter = Prefilter(PrefilterSpec("naswot", 0.5, 4), lambda config: next(scores), store.spec.objectives)
    producer = OptunaProducer(store, lambda t: space.suggest(t, image_size=8, in_chans=1, num_classes=3),
                              lambda config: {"macs": 100, "params": 10}, CostLimits(), 3, TrialSettings(),
                              _Quiet(), prefilter=prefilter)
    first, second = producer.next_request(), producer.next_request()
    assert (first.key, second.key) == ("2", "0")  # scores 4 and 3 of the first batch, best first
    for request in (first, second):
        producer.on_finished(request.key, TrialResult(Outcome.OK, {"val_accuracy": 0.5, "macs": 100}))
    third = producer.next_request()  # the study needs one more: one of the next batch, the best (score 9)
    assert third.key == "4" and producer.next_request() is None
    trials = store.study.get_trials()
    rejected = [t.number for t in trials if t.user_attrs.get("outcome") == "rejected"]
    assert rejected == [1, 3, 5, 6, 7] and store.counted_trials() == 2
    assert all("prefiltered" in trials[n].user_attrs["error"] and trials[n].user_attrs[AVOID_ATTR] for n in rejected)


class _Quiet:
    def trial_started(self, number, config): pass
    def trial_progress(self, number, epoch, val_accuracy): pass
    def trial_finished(self, record): pass
