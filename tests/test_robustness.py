"""Robustness suite on a classifier with known weights: every part, identities, real damage, bands, JPEG, heat map."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from vitnas.nas.robustness import evaluate_robustness, fourier_heatmap, parse_suite, save_heatmap_png
from vitnas.nas.robustness.attacks import fgsm, pgd
from vitnas.nas.inference import predict
from vitnas.nas.robustness.corruptions import CORRUPTIONS, brightness, contrast, corrupt, fog, gaussian_blur, pixelate
from vitnas.nas.robustness.frequency import band_limited_noise, radial_frequency
from vitnas.nas.robustness.jpeg import jpeg_compress
from vitnas.nas.robustness.noise import frequency_noise, gaussian_noise, impulse_noise
from vitnas.nas.robustness.patch import apply_patch
from vitnas.nas.robustness.perturbations import build_perturbation
from vitnas.errors import UserError

GRID = 8
SIGNAL = 0.05  # template amplitude: clean images are perfectly separable, strong noise or attacks are not


def stripe_templates() -> torch.Tensor:
    """(2, 8, 8): +-1 horizontal stripes (period 4 rows) for class 0, the transpose for class 1."""
    rows = torch.tensor([1.0, 1.0, -1.0, -1.0] * (GRID // 4))
    horizontal = rows[:, None].expand(GRID, GRID)
    return torch.stack([horizontal, horizontal.T])


def opposite_cosines(cycles: int) -> torch.Tensor:
    """(2, 8, 8): a diagonal cosine with `cycles` periods per 8 pixels for class 0, its negative for class 1."""
    index = torch.arange(GRID, dtype=torch.float32)
    wave = torch.cos(2 * torch.pi * cycles * (index[:, None] + index[None, :]) / GRID)
    return torch.stack([wave, -wave])


class TemplateClassifier(nn.Module):
    """Known weights: the logit of a class is the channel-mean image, pooled to 8x8 and centred, dotted with its
    template. Works for any channel count and any size that is a multiple of 8."""

    def __init__(self, templates: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(templates.flatten(1))
        self.dropout = nn.Dropout(0.5)  # only there to show that evaluation runs in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = F.adaptive_avg_pool2d(x.mean(dim=1, keepdim=True), GRID) - 0.5
        return self.dropout(grey.flatten(1)) @ self.weight.T


def stripe_images(
    n: int, channels: int, side: int, seed: int = 0, templates: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images: grey 0.5 plus the label's template (upscaled) plus faint noise."""
    templates = stripe_templates() if templates is None else templates
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(templates), (n,), generator=generator)
    pattern = F.interpolate(templates[labels][:, None], size=(side, side), mode="nearest")
    images = 0.5 + SIGNAL * pattern + 0.01 * torch.randn((n, channels, side, side), generator=generator)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels


@pytest.fixture(scope="module")
def model() -> TemplateClassifier:
    return TemplateClassifier(stripe_templates()).eval()


def fast(suite):
    """Fewer attack steps: the tests check plumbing and direction, not attack strength."""
    return dataclasses.replace(suite, pgd_steps=3, patch_steps=5)


def test_clean_accuracy_of_the_known_model_is_perfect(model):
    x, y = stripe_images(64, 3, 16)
    assert evaluate_robustness(model, x, y, parse_suite("none")).clean == 1.0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("side", [8, 12])
def test_every_part_of_the_full_suite_stays_in_range(model, channels, side):
    suite = fast(parse_suite("full"))
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((6, channels, side, side), generator=generator)
    y = torch.randint(0, 2, (6,), generator=generator)
    for part in suite.parts:
        perturbed = build_perturbation(part, suite, model, x, y, generator)(x, y)
        assert perturbed.shape == x.shape and perturbed.dtype == x.dtype, part.name
        assert 0.0 <= perturbed.min() and perturbed.max() <= 1.0, part.name


@pytest.mark.parametrize("channels", [1, 3])
def test_evaluate_reports_every_part_in_unit_range(model, channels):
    x, y = stripe_images(40, channels, 16)
    result = evaluate_robustness(model, x, y, fast(parse_suite("full")), batch_size=16)
    suite_names = [part.name for part in parse_suite("full").parts]
    assert list(result.components) == suite_names and list(result.relative) == suite_names
    values = [result.clean, result.score, *result.components.values()]
    assert all(0.0 <= value <= 1.0 for value in values)
    assert result.score == pytest.approx(np.mean(list(result.components.values())))
    assert 0.0 <= result.details["patch@0.1"]["fooling_rate"] <= 1.0
    json.dumps(result.to_dict(), allow_nan=False)


def test_zero_strength_perturbations_change_nothing(model):
    x, y = stripe_images(32, 3, 16)
    images = x.float() / 255
    generator = torch.Generator().manual_seed(0)
    identities = {
        "gaussian": gaussian_noise(images, 0.0, generator),
        "low band": frequency_noise(images, "low", 0.0, 0.5, generator),
        "high band": frequency_noise(images, "high", 0.0, 0.5, generator),
        "impulse": impulse_noise(images, 0.0, generator),
        "blur": gaussian_blur(images, 0.0),
        "contrast": contrast(images, 1.0),
        "brightness": brightness(images, 0.0),
        "pixelate": pixelate(images, 1.0),
        "fog": fog(images, 0.0, generator),
        "fgsm": fgsm(model, images, y, 0.0),
        "pgd": pgd(model, images, y, 0.0, steps=3, step_size=0.1, generator=generator),
        **{name: corrupt(images, name, 0, generator) for name in CORRUPTIONS},
    }
    clean = predict(model, images)
    for name, perturbed in identities.items():
        assert torch.equal(predict(model, perturbed), clean), name
        assert torch.allclose(perturbed, images, atol=1e-6), name
    result = evaluate_robustness(model, x, y, parse_suite("gaussian:0;lowfreq:0;highfreq:0;fgsm:0;pgd:0"))
    assert set(result.components.values()) == {result.clean}


def test_real_perturbations_lower_accuracy(model):
    x, y = stripe_images(200, 1, 8)
    result = evaluate_robustness(model, x, y, fast(parse_suite("gaussian:0.5;fgsm:16;pgd:16;patch:0.25")))
    assert result.clean == 1.0
    assert result.components["gaussian_noise@0.5"] < 0.9
    assert result.components["fgsm@16"] < 0.2
    assert result.components["pgd@16"] < 0.2
    assert result.details["patch@0.25"]["fooling_rate"] > 0.2
    assert result.relative["pgd@16"] == result.components["pgd@16"]


def test_same_seed_same_numbers_other_seed_other_noise(model):
    x, y = stripe_images(64, 3, 8)
    suite = fast(parse_suite("gaussian:0.3;highfreq:0.3;shot:5;impulse:5;fog:5;pgd:4;patch:0.1"))
    runs = [evaluate_robustness(model, x, y, suite, seed=seed, batch_size=16).to_dict() for seed in (1, 1)]
    for run in runs:
        del run["seconds"]
    assert runs[0] == runs[1]
    draws = [gaussian_noise(x.float() / 255, 0.3, torch.Generator().manual_seed(seed)) for seed in (1, 1, 2)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_model_flags_and_parameter_gradients_are_left_alone():
    x, y = stripe_images(16, 3, 8)
    model = TemplateClassifier(stripe_templates()).train()
    evaluate_robustness(model, x, y, fast(parse_suite("fgsm:2;pgd:2;patch:0.1")))
    assert model.training and model.dropout.training
    assert model.weight.grad is None


def test_uint8_and_float_inputs_agree_and_max_images_subsets(model):
    x, y = stripe_images(50, 3, 8)
    suite = parse_suite("gaussian:0.2;jpeg:5")
    as_uint8 = evaluate_robustness(model, x, y, suite).to_dict()
    as_float = evaluate_robustness(model, x.float() / 255, y, suite).to_dict()
    assert as_uint8["components"] == as_float["components"]
    assert evaluate_robustness(model, x, y, suite, max_images=20).n_images == 20


@pytest.mark.parametrize("band", ["low", "high"])
def test_band_limited_noise_lies_in_its_band_with_the_requested_energy(band):
    std, cutoff = 0.1, 0.5
    noise = band_limited_noise((4, 3, 16, 12), band, std, cutoff=cutoff, generator=torch.Generator().manual_seed(0))
    power = torch.fft.rfft2(noise).abs().pow(2)
    radius = radial_frequency(16, 12)
    in_band = (radius > 0) & (radius <= cutoff) if band == "low" else radius > cutoff
    assert power[..., ~in_band].sum() < 1e-8 * power.sum()
    assert torch.allclose(noise.pow(2).mean(dim=(1, 2, 3)).sqrt(), torch.full((4,), std), rtol=1e-4)
    assert noise.flatten(1).norm(dim=1).tolist() == pytest.approx([std * (3 * 16 * 12) ** 0.5] * 4, rel=1e-4)


@pytest.mark.parametrize(("cycles", "fragile_band"), [(1, "low_freq_noise@0.3"), (3, "high_freq_noise@0.3")])
def test_low_and_high_frequency_noise_tell_apart_which_band_a_model_relies_on(cycles, fragile_band):
    """Park & Kim's contrast in miniature: noise of equal energy hurts most in the band the model's features use."""
    templates = opposite_cosines(cycles)
    x, y = stripe_images(300, 1, 8, templates=templates)
    result = evaluate_robustness(TemplateClassifier(templates), x, y, parse_suite("lowfreq:0.3;highfreq:0.3"))
    robust_band = ({"low_freq_noise@0.3", "high_freq_noise@0.3"} - {fragile_band}).pop()
    assert result.components[fragile_band] < result.components[robust_band] - 0.1


def test_jpeg_is_near_identity_at_high_quality_and_blocky_at_low():
    """Pixel-for-pixel agreement with Pillow is in test_corruptions_reference.py; here what JPEG does to images."""
    generator = torch.Generator().manual_seed(0)
    smooth = F.avg_pool2d(torch.rand((1, 1, 32, 32), generator=generator), 5, 1, 2, count_include_pad=False)
    smooth = (smooth * 255).round() / 255
    colourless = smooth.expand(-1, 3, -1, -1)  # no chroma, so 4:2:0 subsampling loses nothing
    for image in (smooth, colourless):
        assert (jpeg_compress(image, 100) - image).abs().max() <= 2 / 255
    blocky = jpeg_compress(smooth, 5)[0, 0]
    steps = (blocky[:, 1:] - blocky[:, :-1]).abs()  # steps[:, j] lies between columns j and j+1
    at_block_edges = steps[:, 7::8].mean()
    inside_blocks = steps[:, [j for j in range(31) if j % 8 != 7]].mean()
    assert at_block_edges > 3 * inside_blocks


def test_jpeg_subsamples_colour_but_keeps_luma_detail():
    """4:2:0 keeps a one-pixel checkerboard in brightness but averages the same checkerboard in colour away."""
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    grey = checker.float().expand(1, 3, 16, 16) * 0.5 + 0.25
    red_green = torch.stack([checker, 1 - checker, torch.zeros_like(checker)]).float()[None] * 0.5 + 0.25
    assert (jpeg_compress(grey, 95) - grey).abs().mean() < 0.02
    decoded = jpeg_compress(red_green, 95)
    assert (decoded[:, 0] - decoded[:, 1]).abs().mean() < 0.1 < (red_green[:, 0] - red_green[:, 1]).abs().mean()


def test_patch_covers_a_square_of_the_requested_side():
    x = torch.zeros((5, 3, 16, 16))
    pasted = apply_patch(x, torch.ones((3, 4, 4)), torch.Generator().manual_seed(0))
    assert torch.equal(pasted.sum(dim=(1, 2, 3)), torch.full((5,), 3 * 16.0))


def test_fourier_heatmap_has_image_shape_and_is_saved_as_png(model, tmp_path):
    x, y = stripe_images(16, 3, 8)
    heatmap = fourier_heatmap(model, x, y, n_images=8)
    assert heatmap.shape == (8, 8) and 0.0 <= heatmap.min() and heatmap.max() <= 1.0
    assert heatmap.max() > 0  # a basis vector at the stripes' frequency flips this model
    inner = heatmap[1:, 1:]  # without the Nyquist row and column, frequency f and -f mirror about the centre
    assert np.array_equal(inner, inner[::-1, ::-1])
    path = save_heatmap_png(heatmap, tmp_path / "maps" / "fourier.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_named_and_explicit_suites_parse():
    default = parse_suite("default")
    assert [part.name for part in default.parts] == [
        "gaussian_noise@0.04", "gaussian_noise@0.08", "low_freq_noise@0.08", "high_freq_noise@0.08",
        "gaussian_blur@3", "contrast@3", "jpeg@3", "fgsm@1",
    ]
    assert parse_suite("none").parts == ()
    explicit = parse_suite(" gaussian:0.04,0.08; fgsm:1,2; pgd:2; jpeg:3; patch:0.1; gaussian_noise:0.04 ")
    assert [part.name for part in explicit.parts] == [
        "gaussian_noise@0.04", "gaussian_noise@0.08", "fgsm@1", "fgsm@2", "pgd@2", "jpeg@3", "patch@0.1",
    ]
    assert len(parse_suite("corruptions:1,5").parts) == 2 * len(CORRUPTIONS)
    assert [part.name for part in parse_suite("pgd").parts] == ["pgd@2"]
    full = parse_suite("full")
    assert {part.kind for part in full.parts} >= set(CORRUPTIONS) | {"fgsm", "pgd", "patch"}


def test_none_suite_scores_clean_accuracy(model):
    x, y = stripe_images(20, 1, 8)
    result = evaluate_robustness(model, x, y, parse_suite("none"))
    assert result.score == result.clean and result.components == {}


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("gausian:0.1", "'gausian'"),
        ("gaussian:abc", "'abc'"),
        ("gaussian:", "''"),
        ("jpeg:7", "'7'"),
        ("jpeg:2.5", "'2.5'"),
        ("patch:0", "'0'"),
        ("fgsm:-1", "'-1'"),
        ("default;fgsm:1", "'default'"),
        ("", "empty"),
    ],
)
def test_bad_suite_specs_raise_one_line_user_errors(spec, named):
    with pytest.raises(UserError) as raised:
        parse_suite(spec)
    message = str(raised.value)
    assert named in message and "\n" not in message
