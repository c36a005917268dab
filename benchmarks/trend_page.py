"""Size and time to first paint of the trend page for a generated year (365 runs x 64 cells).

    PYTHONPATH=. python benchmarks/trend_page.py [--runs 365]

Prints the time to generate the store and compute the trend, the page size, and first paint /
load event measured by headless Chromium (Performance API, best of 3 loads). Goal: < 5 MB, < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.report.synthetic_year import build_year_db  # noqa: E402


def chromium(profile: Path):
    """Headless Chromium with a DevTools port; returns (process, CDP client of its page)."""
    import urllib.request

    from tests.report.test_html_report import CDP

    proc = subprocess.Popen(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    port_file = profile / "DevToolsActivePort"
    while not (port_file.exists() and port_file.read_text().strip()):
        time.sleep(0.05)
    port = int(port_file.read_text().split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
        target = next(t for t in json.load(r) if t["type"] == "page")
    cdp = CDP(target["webSocketDebuggerUrl"])
    cdp.send("Page.enable")
    cdp.send("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
    return proc, cdp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=365)
    args = ap.parse_args()
    from qbench.report.trend_page import write_trend

    with tempfile.TemporaryDirectory() as tmp:
        db, out = Path(tmp) / "year.db", Path(tmp) / "trend.html"
        t0 = time.perf_counter()
        build_year_db(db, runs=args.runs)
        t1 = time.perf_counter()
        _, df = write_trend(db, out)
        t2 = time.perf_counter()
        cells = df.groupby(["model", "recipe", "device"]).ngroups
        print(f"store: {args.runs} runs x {cells} cells generated in {t1 - t0:.1f} s")
        print(f"trend + page: {t2 - t1:.1f} s ({len(df)} cell-runs, {int(df['change_point'].sum())} change points)")
        print(f"page size: {out.stat().st_size / 1e6:.2f} MB")
        proc, cdp = chromium(Path(tmp) / "profile")
        try:
            best = None
            for _ in range(3):
                cdp.send("Page.navigate", url="about:blank")
                cdp.wait_for("Page.loadEventFired")
                cdp.send("Page.navigate", url=out.as_uri())
                cdp.wait_for("Page.loadEventFired", timeout=60)
                timing = cdp.evaluate("""new Promise((done) => new PerformanceObserver((list) => {
                    const p = list.getEntries().find((e) => e.name === 'first-contentful-paint');
                    if (p) done({fcp: p.startTime, load: performance.getEntriesByType('navigation')[0].loadEventEnd});
                  }).observe({type: 'paint', buffered: true}))""")
                if best is None or timing["fcp"] < best["fcp"]:
                    best = timing
        finally:
            cdp.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        print(f"headless Chromium: first contentful paint {best['fcp'] / 1000:.2f} s, "
              f"load event {best['load'] / 1000:.2f} s (best of 3 loads)")

if __name__ == "__main__":
    main()
