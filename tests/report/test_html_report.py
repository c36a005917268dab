"""The HTML report, opened in a real headless Chromium driven over the DevTools protocol (CDP).

One browser serves the whole module (starting it is the slow part). The page is loaded from a
file:// URL, as someone opening a CI artifact would; the report's Content-Security-Policy forbids
any network load, so a stray external reference shows up as a console error here.
A full-page screenshot lands in test-artifacts/report.png (git-ignored) for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from qbench.errors import UsageError
from qbench.report.html import write_report
from qbench.results.store import ResultsStore

from .synthetic import BASE, NEW, XSS_MODEL, add_cell, add_run, trial_samples

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PLOT_IDS = ["plot-latency", "plot-speedup", "plot-tradeoff", "plot-size-memory", "plot-energy", "plot-ops",
            "plot-compare"]


# --------------------------------------------------------------------------- a tiny CDP client


class CDP:
    """Just enough of the DevTools protocol: commands by id, events kept in arrival order."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        # no Origin header: Chromium only accepts DevTools websockets from allowed origins
        self.ws = websocket.create_connection(ws_url, timeout=15, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0

    def send(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events:
                if ev.get("method") == method:
                    self.events.remove(ev)
                    return ev
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions, and browser log errors (CSP violations, failed loads)."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                out.append(f"exception: {details.get('text')} {details.get('exception', {}).get('description')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Page.javascriptDialogOpening":
                out.append(f"dialog: {p.get('message')}")
        return out

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (Debian package `chromium`)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit {proc.poll()})")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        cdp = CDP(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            cdp.send(f"{domain}.enable")
        cdp.send("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        yield cdp
        cdp.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own session: the browser and its helpers only
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def report(nightly_db, tmp_path_factory) -> Path:
    return write_report(nightly_db, [BASE, NEW], tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture(scope="module")
def page(browser, report):
    """The report loaded once; tests that change it (sorting, filters) restore what they touch."""
    browser.events.clear()
    browser.send("Page.navigate", url=report.as_uri())
    browser.wait_for("Page.loadEventFired")
    return browser


# --------------------------------------------------------------------------- in the browser


def test_loads_without_console_errors_or_network(page):
    assert page.evaluate("document.readyState") == "complete"
    assert page.errors() == []
    # nothing fetched: no CDN, no fonts, no images from anywhere
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0
    assert page.evaluate("document.title").startswith("qbench · mobile")


def test_every_plot_is_drawn(page):
    for plot_id in PLOT_IDS:
        n = page.evaluate(f"document.querySelectorAll('#{plot_id} svg.chart').length")
        assert n > 0, f"{plot_id} has no chart"
    # a box per (run, cell with samples), bars for speedup, a Pareto staircase, the forest rows
    assert page.evaluate("document.querySelectorAll('#plot-latency svg.chart').length") == 6  # 3 models x 2 devices
    assert page.evaluate("document.querySelectorAll('#plot-tradeoff path.pareto').length") >= 2
    # an SVG that rendered has a size (a broken one would collapse to 0x0)
    assert page.evaluate("document.querySelector('#plot-compare svg').getBoundingClientRect().width") > 300


def _column(page, key: str) -> list[str]:
    return page.evaluate(f"""(() => {{
        const ths = Array.from(document.querySelectorAll('#cells-table thead tr:last-child th'));
        const i = ths.findIndex((th) => th.dataset.key === '{key}');
        return Array.from(document.querySelectorAll('#cells-table tbody tr')).map((r) => r.cells[i].dataset.v);
    }})()""")


def test_clicking_a_header_sorts_the_table(page):
    click = "document.querySelector('#cells-table th[data-key=\"median\"]').click()"
    page.evaluate(click)
    values = _column(page, "median")
    numbers = [float(v) for v in values if v != ""]
    assert numbers == sorted(numbers) and len(numbers) == 35
    assert values[-1] == ""  # the failed cell (no latency) sorts last, whichever the direction
    sorted_by = "document.querySelector('#cells-table th[data-key=\"median\"]').getAttribute('aria-sort')"
    assert page.evaluate(sorted_by) == "ascending"

    page.evaluate(click)
    values = _column(page, "median")
    numbers = [float(v) for v in values if v != ""]
    assert numbers == sorted(numbers, reverse=True) and values[-1] == ""

    page.evaluate("document.querySelector('#cells-table th[data-key=\"model\"]').click()")
    models = _column(page, "model")
    assert models == sorted(models)
    assert page.errors() == []


def test_filters_narrow_the_table(page):
    count = "document.querySelectorAll('#cells-table tbody tr:not([hidden])').length"
    assert page.evaluate(count) == 36
    page.evaluate("""(() => { const s = document.getElementById('filter-status');
        s.value = 'failed'; s.dispatchEvent(new Event('change')); })()""")
    assert page.evaluate(count) == 1
    assert page.evaluate("document.getElementById('filter-count').textContent") == "1 of 36 cells"
    page.evaluate("""(() => { const s = document.getElementById('filter-status');
        s.value = ''; s.dispatchEvent(new Event('change'));
        const t = document.getElementById('filter-text'); t.value = 'pixel8 ptq';
        t.dispatchEvent(new Event('input')); })()""")
    assert page.evaluate(count) == 6  # 3 models x 2 runs
    page.evaluate("""(() => { const t = document.getElementById('filter-text'); t.value = '';
        t.dispatchEvent(new Event('input')); })()""")
    assert page.evaluate(count) == 36


def test_hostile_model_name_is_shown_as_text(page):
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    scripts = "document.querySelectorAll('script:not([type]), script[type=\"text/javascript\"]').length"
    assert page.evaluate(scripts) == 1  # ours only, nothing injected
    visible = page.evaluate(f"""(() => {{
        const cells = Array.from(document.querySelectorAll('#cells-table tbody td'))
            .filter((td) => td.textContent === {json.dumps(XSS_MODEL)});
        const box = cells.length ? cells[0].getBoundingClientRect() : null;
        return {{count: cells.length, width: box ? box.width : 0, height: box ? box.height : 0}};
    }})()""")
    assert visible["count"] == 11 and visible["width"] > 50 and visible["height"] > 5
    # the filter options are built by script from the JSON block, with textContent
    options = page.evaluate("Array.from(document.querySelectorAll('#filter-model option')).map((o) => o.textContent)")
    assert XSS_MODEL in options
    # the error text with a <script> in it is text inside <details>
    assert page.evaluate("document.querySelector('details.error pre').textContent").startswith("export: <script>")
    assert not any("dialog" in e for e in page.errors())


def test_screenshot_artifact(page, report):
    ARTIFACTS.mkdir(exist_ok=True)
    height = page.evaluate("Math.ceil(document.documentElement.scrollHeight)")
    shot = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                     clip={"x": 0, "y": 0, "width": 1400, "height": height, "scale": 1})
    import base64

    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    (ARTIFACTS / "report.png").write_bytes(png)
    shutil.copyfile(report, ARTIFACTS / "report.html")


# --------------------------------------------------------------------------- the file itself


def test_file_is_self_contained_and_escaped(report):
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)  # no CDN, no remote anything
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in html
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    assert "</" not in block and "<" not in block
    data = json.loads(block)
    assert XSS_MODEL in data["filters"]["model"]
    assert data["runs"] == [BASE, NEW]
    assert data["comparisons"][0]["counts"]["regressions"] == 3


def test_header_lists_versions_devices_and_settings(report):
    html = report.read_text(encoding="utf-8")
    for text in ("torch 2.14.1", "executorch 1.5.1", "3f2c1e9a7b5d", "Pixel 8", "Google Tensor G3",
                 "Android 14 (API 34)", "ThinkPad X1 Carbon", "cooldown.max_temp_c", "2025-11-27 03:00:00 UTC"):
        assert text in html, text


def test_unmeasured_energy_reads_not_measured_never_zero(report):
    html = report.read_text(encoding="utf-8")
    host_rows = re.findall(r'<tr class="st-ok"[^>]*data-device="host".*?</tr>', html, re.S)
    assert host_rows and all("not measured" in r for r in host_rows)
    assert all(">0.00<" not in r for r in host_rows)
    assert "RAPL counters not readable" in html  # the reason travels with it


def test_single_run_report_and_degenerate_cells(tmp_path):
    """One run: no comparison section; a pending cell and a failed cell without samples still render."""
    db = tmp_path / "qbench.db"
    store = ResultsStore(db)
    add_run(store, "solo", suite="smoke")
    import numpy as np

    add_cell(store, "solo", "tiny", "fp32", "host", samples=trial_samples(np.random.default_rng(1), 1.0),
             pte_bytes=1000)
    add_cell(store, "solo", "tiny", "ptq_int8", "host", stage="deploy", error="device went away")
    store.ensure_cell("solo", "tiny", "dynamic_int8", "dynamic", "host")  # never measured
    store.close()
    html = write_report(db, ["solo"], tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert 'id="compare"' not in html
    assert "not measured" in html and "device went away" in html
    assert "Energy was not measured in this run." in html
    assert "No cell was profiled" in html


def test_unknown_run_and_missing_store_are_usage_errors(nightly_db, tmp_path):
    with pytest.raises(UsageError, match="no run 'nope'"):
        write_report(nightly_db, [BASE, "nope"], tmp_path / "r.html")
    with pytest.raises(UsageError, match="no results store"):
        write_report(tmp_path / "missing.db", [BASE], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
