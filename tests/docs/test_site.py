"""The documentation site builds with `mkdocs build --strict` (a broken link or anchor, a page left out
of the nav, a reference that fails to generate: all fail), its reference pages come from the code, and
it works offline: Chromium loads its pages without a single request that is not a local file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.test_html_report import browser  # noqa: F401  (the real headless Chromium fixture)

REPO = Path(__file__).resolve().parents[2]
CDN = re.compile(r"fonts\.googleapis|fonts\.gstatic|cdn\.jsdelivr|cdnjs\.")
EXTERNAL_RESOURCE = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_every_nav_page_is_built(site):
    for page in ("index", "getting-started", "suites", "recipes", "devices", "nightly", "farm", "results",
                 "troubleshooting", "methodology", "figures", "reference/cli", "reference/suite",
                 "reference/device", "reference/api"):
        assert (site / f"{page}.html").is_file(), page


def test_the_cli_reference_is_the_parser(site):
    from qbench.cli import build_parser
    from qbench.cli.reference import commands

    html = (site / "reference" / "cli.html").read_text()
    for path, parser in commands(build_parser()):
        assert f"<code>{' '.join(path)}</code>" in html
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in html, (path, flag)


def test_the_suite_reference_carries_the_schema_descriptions(site):
    from qbench.suite.schema import BenchmarkSpec

    html = (site / "reference" / "suite.html").read_text()
    for name, field in BenchmarkSpec.model_fields.items():
        assert f"<code>{name}</code>" in html
        assert field.description.split("`")[0].replace("'", "&#39;")[:30] in html, name


def test_the_api_reference_renders_the_docstrings(site):
    html = (site / "reference" / "api.html").read_text()
    assert "One row per cell" in html and "compare_runs" in html


def test_no_page_loads_anything_from_a_network(site):
    for path in site.rglob("*"):
        if path.suffix in {".html", ".css"}:
            text = path.read_text(errors="replace")
            assert not CDN.search(text), path
            assert not EXTERNAL_RESOURCE.search(text), path
            assert "url(http" not in text and "@import" not in text, path


def test_chromium_opens_the_site_offline(site, browser):  # noqa: F811
    browser.send("Network.enable")
    requested = []
    for page in ("index.html", "reference/cli.html", "getting-started.html"):
        browser.events.clear()
        browser.send("Page.navigate", url=(site / page).as_uri())
        browser.wait_for("Page.loadEventFired", timeout=60)
        requested += [e["params"]["request"]["url"] for e in browser.events
                      if e.get("method") == "Network.requestWillBeSent"]
        assert browser.evaluate("document.querySelector('h1') !== null")
    assert requested and all(u.startswith(("file://", "data:", "blob:")) for u in requested), \
        [u for u in requested if not u.startswith(("file://", "data:", "blob:"))]
