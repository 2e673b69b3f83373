"""The HTML report in a real browser: headless Chromium screenshots it and the plots must be visible.

The plots draw the Pareto front in FRONT_COLOUR, which nothing else on the page uses, so its pixels in the screenshot
show that the inline PNGs decoded and rendered; the same page with its images removed must show none of it.
Skips without Chromium unless CI is set, where a missing browser is a failure (install Debian's `chromium`).
"""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from vitnas.nas.records import Objective, StudySummary, TrialRecord
from vitnas.nas.report import write_html
from vitnas.nas.report_plots import FRONT_COLOUR

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
COLOUR_TOLERANCE = 40  # anti-aliasing blends marker edges; the marker centres stay close to the colour
MIN_FRONT_PIXELS = 300  # a few markers and lines across two plots give thousands


def require_chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must run `apt-get install -y chromium`")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


def screenshot(browser: str, page, image, profile) -> np.ndarray:
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={image}",
                    "--window-size=1200,2000", page.as_uri()], capture_output=True, timeout=90, check=True)
    return np.asarray(Image.open(image).convert("RGB"), dtype=int)


def front_pixels(pixels: np.ndarray) -> int:
    target = np.array([int(FRONT_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels - target).max(axis=2) <= COLOUR_TOLERANCE).sum())


def test_plots_render_in_headless_chromium(tmp_path):
    browser = require_chromium()
    objectives = [Objective("accuracy", "maximize"), Objective("macs", "minimize")]
    trials = [TrialRecord(n, "COMPLETE", {"accuracy": a, "macs": m}, {"name": f"t{n}"}, {})
              for n, (a, m) in enumerate([(0.9, 300.0), (0.8, 100.0), (0.85, 200.0), (0.6, 250.0)])]
    page = tmp_path / "report.html"
    write_html(StudySummary("browser", objectives, trials), page)
    without_plots = tmp_path / "no-plots.html"
    without_plots.write_text(re.sub(r"<img [^>]*>", "", page.read_text()))

    rendered = screenshot(browser, page, tmp_path / "page.png", tmp_path / "profile")
    blank = screenshot(browser, without_plots, tmp_path / "no-plots.png", tmp_path / "profile")

    assert front_pixels(rendered) >= MIN_FRONT_PIXELS
    assert front_pixels(blank) == 0
