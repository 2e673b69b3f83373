"""The CIFAR-10-C corruptions against an independent computation of the generator's steps (Pillow, scipy,
matplotlib's HSV) on real CIFAR-10 images, and the random ones against the statistics of their noise models.

The references follow what CIFAR-10-C's generator does for each corruption: scikit-image's Gaussian (scipy's
gaussian_filter, edge mode 'nearest', truncated at 4 sigma), Pillow's BOX resize down and up for pixelate,
Pillow's JPEG encoder and decoder at default settings (4:2:0), HSV value shift for brightness.
"""
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image
from scipy import ndimage

from vitnas.nas.robustness.corruptions import FOG_CUTOFF, SEVERITY_PARAMETERS, corrupt, fog
from vitnas.nas.robustness.jpeg import jpeg_compress
from vitnas.nas.robustness.noise import impulse_noise, shot_noise

CIFAR10_ZIP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpg.zip"
IMAGES_PER_CLASS = 5
TOLERANCE = 0.5  # grey levels (0..255) of mean absolute difference, per image


@pytest.fixture(scope="module")
def cifar_images() -> np.ndarray:
    """(50, 32, 32, 3) uint8: the first five test images of every class (a few hundred kilobytes of the zip)."""
    if not CIFAR10_ZIP.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CIFAR10_ZIP} is missing, and CI needs it")
        pytest.skip(f"{CIFAR10_ZIP} is not here (outside CI)")
    with zipfile.ZipFile(CIFAR10_ZIP) as archive:
        names = sorted(name for name in archive.namelist() if name.startswith("test/") and name.endswith(".jpg"))
        classes = sorted({name.split("/")[1] for name in names})
        chosen: list[str] = []
        for label in classes:
            chosen += [name for name in names if name.split("/")[1] == label][:IMAGES_PER_CLASS]
        return np.stack([np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("RGB")) for name in chosen])


def reference(name: str, parameter: float, image: np.ndarray) -> np.ndarray:
    """One uint8 HxWx3 image corrupted as CIFAR-10-C's generator does, as floats on the 0..255 scale."""
    pixels = image / 255.0
    if name == "gaussian_blur":
        blurred = ndimage.gaussian_filter(pixels, sigma=(parameter, parameter, 0), mode="nearest", truncate=4.0)
        return np.clip(blurred, 0, 1) * 255
    if name == "contrast":
        means = pixels.mean(axis=(0, 1), keepdims=True)
        return np.clip((pixels - means) * parameter + means, 0, 1) * 255
    if name == "brightness":
        hsv = rgb_to_hsv(pixels)
        hsv[..., 2] = np.clip(hsv[..., 2] + parameter, 0, 1)
        return np.clip(hsv_to_rgb(hsv), 0, 1) * 255
    if name == "pixelate":
        side = int(image.shape[0] * parameter)
        small = Image.fromarray(image).resize((side, side), Image.Resampling.BOX)
        return np.asarray(small.resize(image.shape[1::-1], Image.Resampling.BOX), dtype=np.float64)
    if name == "jpeg":
        return pillow_jpeg(image, int(parameter)).astype(np.float64)
    raise ValueError(name)


def pillow_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def corrupted(images: np.ndarray, name: str, severity: int) -> np.ndarray:
    """The torch implementation on a uint8 NHWC batch, back as NHWC floats on the 0..255 scale."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    result = corrupt(x, name, severity, torch.Generator().manual_seed(0))
    return result.permute(0, 2, 3, 1).double().numpy() * 255


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("name", ["gaussian_blur", "contrast", "brightness", "pixelate", "jpeg"])
def test_deterministic_corruptions_match_the_reference_on_real_images(cifar_images, name, severity):
    expected = np.stack([reference(name, SEVERITY_PARAMETERS[name][severity - 1], image) for image in cifar_images])
    difference = np.abs(corrupted(cifar_images, name, severity) - expected).mean(axis=(1, 2, 3))
    print(f"{name}@{severity}: max per-image mean abs difference {difference.max():.4f} grey levels")
    assert difference.max() < TOLERANCE


@pytest.mark.parametrize(("height", "width"), [(32, 32), (8, 8), (12, 12), (1, 1), (29, 30), (33, 17)])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_matches_pillow_at_every_size_and_quality_on_noise(height, width, channels):
    """Random pixels are the hardest case (every coefficient used, extremes clipped); odd sizes exercise the
    encoder's edge padding, 4:2:0 the chroma averaging and upsampling."""
    rng = np.random.default_rng(height * 100 + width)
    images = rng.integers(0, 256, (3, height, width, channels), dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    for quality in (1, 10, 40, 58, 75, 95, 100):
        ours = jpeg_compress(x, quality).permute(0, 2, 3, 1).numpy() * 255
        pillow = np.stack([pillow_jpeg(image.squeeze(-1) if channels == 1 else image, quality) for image in images])
        assert np.abs(ours - pillow.reshape(ours.shape)).mean() < TOLERANCE, quality


def flat(level: float, channels: int = 3, side: int = 64) -> torch.Tensor:
    return torch.full((4, channels, side, side), level)


@pytest.mark.parametrize("level", [0.1, 0.4, 0.8])
def test_shot_noise_is_poisson_photon_counting(level):
    photons = SEVERITY_PARAMETERS["shot_noise"][2]
    noisy = shot_noise(flat(level), photons, torch.Generator().manual_seed(1))
    counts = noisy * photons
    assert torch.allclose(counts, counts.round(), atol=1e-3)  # whole photons
    # Poisson(level * photons) / photons: mean level, variance level / photons (clipping at 1 is negligible here).
    assert noisy.mean().item() == pytest.approx(level, rel=0.01)
    assert noisy.var().item() == pytest.approx(level / photons, rel=0.05)


def test_impulse_noise_hits_each_value_independently_with_even_salt_and_pepper():
    amount = SEVERITY_PARAMETERS["impulse_noise"][4]
    x = flat(0.5)
    noisy = impulse_noise(x, amount, torch.Generator().manual_seed(2))
    hit = noisy != x
    assert set(noisy[hit].unique().tolist()) == {0.0, 1.0}
    n = hit.numel()
    assert hit.float().mean().item() == pytest.approx(amount, abs=4 * (amount * (1 - amount) / n) ** 0.5)
    assert (noisy[hit] == 1.0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    both = (hit[:, 0] & hit[:, 1]).float().mean().item()  # channels are hit independently
    assert both == pytest.approx(amount**2, rel=0.2)


@pytest.mark.parametrize("severity", [1, 5])
def test_fog_blends_a_unit_range_smooth_field_and_keeps_the_peak(severity):
    """On a flat image at level v, fog gives (v + s * field) * v / (v + s), as CIFAR-10-C's formula: the field can
    be read back, spans exactly [0, 1] per image, and is smooth (no power above the cutoff beyond its DC term)."""
    strength, level = SEVERITY_PARAMETERS["fog"][severity - 1], 0.6
    foggy = fog(flat(level, channels=1, side=32), strength, torch.Generator().manual_seed(3))
    field = (foggy * (level + strength) / level - level) / strength
    assert torch.allclose(field.amin(dim=(1, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(field.amax(dim=(1, 2, 3)), torch.ones(4), atol=1e-5)
    assert torch.allclose(foggy.amax(dim=(1, 2, 3)), torch.full((4,), level), atol=1e-6)
    power = torch.fft.rfft2(field).abs().pow(2)
    fy = torch.fft.fftfreq(32)[:, None] / 0.5
    fx = torch.fft.rfftfreq(32)[None, :] / 0.5
    above_cutoff = (fy**2 + fx**2).sqrt() > FOG_CUTOFF
    assert power[..., above_cutoff].sum() < 1e-6 * power.sum()
