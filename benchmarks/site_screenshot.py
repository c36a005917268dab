"""Screenshots for the docs, taken with headless Chromium at 1366×768 (a laptop's first screen):

    PYTHONPATH=. python benchmarks/site_screenshot.py [--report reports/RUN_ID/index.html]

site.png: the documentation site's front page, built here with `mkdocs build --strict` into a temporary
folder and opened from file:// (it must work offline). With --report, first-run.png: that run's page
(the README's "first run" screenshot: `qbench run suites/smoke.yaml --device host`).
Prints each file's size and every URL the browser requested that was not a local file (none expected).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from docs_screenshots import shoot  # noqa: E402
from trend_page import chromium  # noqa: E402


def build_site(out: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=REPO,
                   env=env, check=True)
    return out / "index.html"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    ap.add_argument("--report", type=Path, help="a run's index.html: also shoot it as first-run.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pages = {"site.png": build_site(Path(tmp) / "site")}
        if args.report:
            pages["first-run.png"] = args.report.resolve()
        proc, cdp = chromium(Path(tmp) / "profile")
        try:
            cdp.send("Network.enable")
            sizes = {name: shoot(cdp, page, args.out / name, 1366, 768) for name, page in pages.items()}
            remote = [e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"
                      and not e["params"]["request"]["url"].startswith(("file:", "data:", "blob:"))]
        finally:
            cdp.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    for name, size in sizes.items():
        print(f"{args.out / name}: {size / 1000:.0f} KB")
    print(f"requests that were not local files: {remote or 'none'}")


if __name__ == "__main__":
    main()
