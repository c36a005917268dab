"""The README's screenshots, from generated stores (no model runs): the nightly page and the trend page.

    PYTHONPATH=. python benchmarks/docs_screenshots.py [--out docs/img]

nightly.png: the page `qbench run --baseline` writes (here: the two-run store of
tests/report/synthetic.py, written as `qbench run` does), first screen at 1366×768, a laptop.
trend.png: `qbench trend` over 60 generated nights with one injected regression and one
improvement (tests/report/synthetic_year.py), top of the page at 1366×900.
nightly-phone.png, trend-phone.png: the same pages' first screens at 390×844, a phone (docs/pages.md).
Prints each file's size; they are committed as documentation, so each must stay < 300 KB.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.report.synthetic import BASE, NEW, build_nightly_db  # noqa: E402
from tests.report.synthetic_year import build_year_db  # noqa: E402

LIMIT = 300_000


def shoot(cdp, page: Path, out: Path, width: int, height: int) -> int:
    cdp.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
             mobile=width < 500)
    cdp.send("Page.navigate", url=page.as_uri())
    cdp.wait_for("Page.loadEventFired", timeout=60)
    shot = cdp.send("Page.captureScreenshot", format="png",
                    clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
    png = base64.b64decode(shot["data"])
    out.write_bytes(png)
    return len(png)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "benchmarks"))
    from trend_page import chromium

    from qbench.report.compare import compare_runs
    from qbench.report.html import write_report
    from qbench.report.trend_page import write_trend

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_nightly_db(tmp / "nightly.db")
        nightly = write_report(tmp / "nightly.db", [NEW], tmp / "index.html",
                               comparison=compare_runs(tmp / "nightly.db", BASE, NEW))
        build_year_db(tmp / "year.db", runs=60, models=["mobilenet_v3_small", "resnet18", "efficientnet_b0"])
        trend, _ = write_trend(tmp / "year.db", tmp / "trend.html")
        proc, cdp = chromium(tmp / "profile")
        try:
            sizes = {"nightly.png": shoot(cdp, nightly, args.out / "nightly.png", 1366, 768),
                     "trend.png": shoot(cdp, trend, args.out / "trend.png", 1366, 900),
                     "nightly-phone.png": shoot(cdp, nightly, args.out / "nightly-phone.png", 390, 844),
                     "trend-phone.png": shoot(cdp, trend, args.out / "trend-phone.png", 390, 844)}
        finally:
            cdp.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    for name, size in sizes.items():
        print(f"{args.out / name}: {size / 1000:.0f} KB" + ("" if size < LIMIT else "  (over the 300 KB budget)"))


if __name__ == "__main__":
    main()
