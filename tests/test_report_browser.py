"""The HTML report as a person uses it, in headless Chromium driven through the DevTools protocol.

The browser is Debian's `chromium` (no browser download), spoken to over --remote-debugging-pipe: JSON messages
ending in a NUL byte on file descriptors 3 (to the browser) and 4 (from it), so no driver package is needed.
The page must render without console errors or network requests, show its charts, show a front point's architecture
on hover and that trial's config and export command on click; the static page must show its PNGs.
Skips without Chromium unless CI is set, where a missing browser is a failure (install Debian's `chromium`).
"""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from vitnas.nas.records import Objective, StudySummary, TrialRecord
from vitnas.nas.report import write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1280
pytestmark = pytest.mark.slow


def require_chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must run `apt-get install -y chromium`")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


class Browser:
    """One headless Chromium and one page in it; `events` collects every event the page sent."""

    def __init__(self, executable: str, profile: Path, timeout: float = 60.0):
        self.timeout, self.events, self._buffer, self._next_id = timeout, [], b"", 0
        to_browser, self._writer = self._pipe()
        self._reader, from_browser = self._pipe()

        def wire_descriptors():  # in the child: the pipe ends become fds 3 and 4, as Chromium expects
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire_descriptors, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.resize(900)

    @staticmethod
    def _pipe() -> tuple[int, int]:
        """A pipe whose ends sit above fd 4, so wiring them onto 3 and 4 in the child cannot clobber either."""
        read, write = os.pipe()
        ends = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (read, write))
        os.close(read)
        os.close(write)
        return ends

    def send(self, method: str, session: bool = False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def _receive(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            if not select.select([self._reader], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._reader, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str) -> dict:
        while True:
            found = next((e for e in self.events if e.get("method") == method), None)
            if found is not None:
                return found
            self.events.append(self._receive())

    def resize(self, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", session=True, width=WIDTH, height=height,
                  deviceScaleFactor=1, mobile=False)

    def open(self, page: Path) -> None:
        self.send("Page.navigate", session=True, url=page.as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button="left",
                  clickCount=1 if kind != "mouseMoved" else 0)

    def screenshot(self, path: Path) -> None:
        """The whole page at WIDTH pixels."""
        height = self.evaluate("document.documentElement.scrollHeight")
        self.resize(height)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", session=True, format="png")["data"]))
        self.resize(900)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and log errors the page produced."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:300])
            elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(json.dumps(params.get("args"))[:300])
            elif event.get("method") == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        os.close(self._writer)
        os.close(self._reader)


@pytest.fixture
def browser(tmp_path):
    opened = Browser(require_chromium(), tmp_path / "profile")
    yield opened
    opened.close()


def arch(number: int, mixer: str, width: int) -> dict:
    """A small architecture config; the name makes each trial's config recognisable on the page."""
    return {"name": f"arch-{number}", "image_size": 8, "in_chans": 1, "num_classes": 3,
            "stem": {"kind": "patch", "patch_size": 2, "act_norm": False},
            "stages": [{"depth": 1 + number % 2, "width": width, "mixer": {"kind": mixer}}],
            "block": "metaformer", "norm": "layernorm", "act": "gelu", "mlp_ratio": 2.0, "head": "gap"}


def study() -> StudySummary:
    objectives = [Objective("accuracy", "maximize"), Objective("macs", "minimize")]
    results = [(0.9, 300.0, "attention", 64), (0.8, 100.0, "pool", 32), (0.85, 200.0, "conv", 32),
               (0.6, 250.0, "pool", 64), (0.7, 150.0, "conv", 64), (0.65, 280.0, "attention", 32)]
    trials = [TrialRecord(n, "COMPLETE", {"accuracy": a, "macs": m}, arch(n, mixer, width),
                          {"val_accuracy": a, "macs": m}, duration_s=2.0, started_at=1000.0 + 10 * n,
                          finished_at=1005.0 + 10 * n) for n, (a, m, mixer, width) in enumerate(results)]
    trials.append(TrialRecord(6, "PRUNED", {}, arch(6, "pool", 32), {"val_accuracy": 0.3, "macs": 120.0},
                              started_at=1060.0, finished_at=1062.0))
    trials.append(TrialRecord(7, "FAIL", {}, arch(7, "conv", 32), {}, error="loss became NaN",
                              started_at=1070.0, finished_at=1071.0))
    return StudySummary("browser", objectives, trials)


# The page position of one trial's point in a pair chart: plotly's own axis conversions (data to linear, which is
# log10 on a log axis, then linear to pixels) plus the plot's offset.
POINT_POSITION = """(() => {
  const plot = document.querySelector('[data-chart^="pareto-"] .js-plotly-plot');
  const trace = plot._fullData.find(t => t.customdata && t.customdata.some(c => c[0] === %d));
  const index = trace.customdata.findIndex(c => c[0] === %d);
  const xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis, box = plot.getBoundingClientRect();
  return [box.left + xa._offset + xa.l2p(xa.d2l(trace.x[index])),
          box.top + ya._offset + ya.l2p(ya.d2l(trace.y[index]))];
})()"""


def test_hover_and_click_on_a_front_point_show_that_trial(tmp_path, browser):
    page = tmp_path / "report.html"
    write_html(study(), page, study_dir=Path("runs/browser"), interactive=True)
    browser.open(page)
    assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") >= 4  # pair, parallel, HV, ...
    assert browser.evaluate("document.querySelectorAll('svg.arch').length") == len([0, 1, 2])  # the front's cards
    number = 1  # on the front: the cheapest
    browser.evaluate(f"document.querySelector('[data-chart^=\"pareto-\"]').scrollIntoView()")
    x, y = browser.evaluate(POINT_POSITION % (number, number))
    browser.mouse("mouseMoved", x, y)
    time.sleep(0.5)
    hover = browser.evaluate("[...document.querySelectorAll('.hoverlayer .hovertext')].map(e => e.textContent)"
                             ".join(' ')")
    assert f"trial {number}" in hover and "pool 32x2" in hover
    assert browser.evaluate("document.getElementById('trial-panel').hidden")
    browser.mouse("mousePressed", x, y)
    browser.mouse("mouseReleased", x, y)
    time.sleep(0.5)
    panel = browser.evaluate("(() => { const p = document.getElementById('trial-panel');"
                             " return {hidden: p.hidden, text: p.innerText}; })()")
    assert not panel["hidden"]
    assert f"Trial {number}" in panel["text"] and f'"name": "arch-{number}"' in panel["text"]
    assert f"vitnas export runs/browser --trial {number} --out exported/trial-{number}" in panel["text"]
    assert browser.errors() == []
    assert all(url.startswith(("file:", "data:")) for url in browser.requests()), browser.requests()
    browser.screenshot(tmp_path / "clicked.png")


def test_brushing_the_parallel_coordinates_fades_the_other_trials_in_the_pair_chart(tmp_path, browser):
    page = tmp_path / "report.html"
    write_html(study(), page, interactive=True)
    browser.open(page)
    # keep accuracy >= 0.82 on the parcoords' first axis, as a drag would (plotly's own restyle call)
    browser.evaluate("Plotly.restyle(document.getElementById('chart-parallel'),"
                     " {'dimensions[0].constraintrange': [[0.82, 0.95]]}).then(() => true)")
    kept = browser.evaluate("""(() => {
      const plot = document.querySelector('[data-chart^="pareto-"] .js-plotly-plot');
      return plot.data.filter(t => t.customdata).flatMap(t =>
        (t.selectedpoints || []).map(i => t.customdata[i][0])).sort();
    })()""")
    assert kept == [0, 2]  # accuracy 0.9 and 0.85
    assert browser.errors() == []


def test_static_page_shows_its_pngs_without_scripts(tmp_path, browser):
    page = tmp_path / "static.html"
    pngs = write_html(study(), page, interactive=False)
    assert "<script" not in page.read_text()
    browser.open(page)
    loaded = browser.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
    assert len(loaded) == len(pngs) and all(loaded)
    assert browser.errors() == []
