"""The trainer on a tiny model and synthetic data: it learns, is deterministic for a seed, and stops as promised."""
import pytest
import torch
from torch import nn

from vitnas.nas.data import Normalize, load_dataset
from vitnas.nas.inference import correct_predictions, evaluate_accuracy
from vitnas.nas.outcome import Outcome
from vitnas.nas.trainer import TrainSettings, augment, resolve_device, train
from vitnas.errors import UserError


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic:n=512,size=8,chans=3,classes=4", val_fraction=0.25)


def _model(data, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(Normalize(data.mean, data.std), nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.GELU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, data.num_classes))


def _settings(**changes) -> TrainSettings:
    return TrainSettings(**{"epochs": 3, "batch_size": 64, "lr": 1e-2, "flip": True, **changes})


def test_tiny_model_learns(data):
    model = _model(data)
    result = train(model, data, _settings())
    assert result.status is Outcome.OK and result.epochs == 3 and len(result.history) == 3
    assert result.val_accuracy >= 0.9 and result.history[-1].train_loss < result.history[0].train_loss
    assert result.images_per_second > 0 and result.train_seconds > 0
    assert evaluate_accuracy(model, data.x_test, data.y_test) >= 0.9
    assert correct_predictions(model, data.x_test[:5], data.y_test[:5], batch_size=2).shape == (5,)


def test_same_seed_same_numbers_other_seed_differs(data):
    def run(seed):
        model = _model(data)
        history = train(model, data, _settings(seed=seed)).history
        return [(m.train_loss, m.train_accuracy, m.val_accuracy) for m in history], model.state_dict()

    first, weights = run(seed=1)
    again, weights_again = run(seed=1)
    other, _ = run(seed=2)
    assert first == again and all(torch.equal(weights[k], weights_again[k]) for k in weights)
    assert first != other


def test_nan_loss_stops_at_once(data):
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x.flatten(1)[:, :4] * self.scale * float("nan")

    model = Exploding()
    result = train(model, data, _settings(epochs=5))
    assert result.status is Outcome.DIVERGED and result.history == [] and model.calls == 1
    assert result.val_accuracy == 0.0


def test_time_budget_stops_and_still_validates(data):
    seen = []
    result = train(_model(data), data, _settings(epochs=None, seconds=0.05, batch_size=8), on_epoch=seen.append)
    assert result.status is Outcome.OK and result.epochs == 1 and len(seen) == 1
    assert result.train_seconds < 2.0 and 0.0 <= seen[0].val_accuracy <= 1.0


def test_on_epoch_gets_val_accuracy_and_its_exception_propagates(data):
    class Pruned(Exception):
        pass

    seen = []

    def prune_after_two(metrics):
        seen.append(metrics)
        if metrics.epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        train(_model(data), data, _settings(epochs=5), on_epoch=prune_after_two)
    assert [m.epoch for m in seen] == [1, 2]
    assert all(0.0 <= m.val_accuracy <= 1.0 and m.seconds > 0 for m in seen)


def test_settings_validate_the_budget():
    assert TrainSettings().epochs == 10 and TrainSettings(seconds=5).epochs is None
    with pytest.raises(UserError, match="not both"):
        TrainSettings(epochs=3, seconds=5)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_augment_translates_and_flips_without_changing_values():
    generator = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 2 * 4 * 4, dtype=torch.uint8).view(2, 2, 4, 4)
    assert torch.equal(augment(x, 0, False, generator), x)
    flipped = augment(x, 0, True, torch.Generator().manual_seed(3))
    assert all(torch.equal(f, x[i]) or torch.equal(f, x[i].flip(2)) for i, f in enumerate(flipped))
    shifted = augment(x, 1, True, generator)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    crops = [padded[:, :, r:r + 4, c:c + 4] for r in range(3) for c in range(3)]
    for i, image in enumerate(shifted):  # each output is one crop of its padded image, maybe mirrored
        assert any(torch.equal(image, crop[i]) or torch.equal(image, crop[i].flip(2)) for crop in crops)
