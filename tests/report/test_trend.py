"""`qbench trend` and qbench.results.trend on a generated history with known injected changes; the page
in headless Chromium (offline, no console errors, marks at the right run, zoom, hostile names as text)."""

from __future__ import annotations

import json
import re

import pytest

import qbench.results
from qbench.report.trend_page import write_trend

from .synthetic import XSS_MODEL
from .synthetic_year import IMPROVED, MODELS_8, REGRESSED, build_year_db, run_id
from .test_html_report import browser  # noqa: F401  (the module-scoped headless Chromium fixture)
from tests.helpers import qbench as qbench_cli

RUNS, REGRESSION_AT, IMPROVEMENT_AT = 40, 26, 12


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    db = tmp_path_factory.mktemp("trend") / "qbench.db"
    build_year_db(db, runs=RUNS, models=["mobilenet_v3_small", "resnet18", XSS_MODEL],
                  regression_at=REGRESSION_AT, improvement_at=IMPROVEMENT_AT)
    return db


@pytest.fixture(scope="module")
def trend_frame(history):
    return qbench.results.trend(history)


def test_frame_names_the_injected_changes_at_the_right_runs(trend_frame):
    df = trend_frame
    assert len(df) == RUNS * 3 * 4 * 2
    moved = df[df["change_point"]]
    got = {(r.model, r.recipe, r.device): (r.run_id, r.verdict) for r in moved.itertuples()}
    assert got == {REGRESSED: (run_id(REGRESSION_AT), "slower"), IMPROVED: (run_id(IMPROVEMENT_AT), "faster")}
    hit = moved.set_index(["model", "recipe", "device"]).loc[REGRESSED]
    assert hit["ratio_low"] > 1.05 and 1.10 < hit["ratio"] < 1.20  # injected +15%
    cell = df[(df.model == "resnet18") & (df.recipe == "ptq_int8") & (df.device == "pixel8")]
    assert (cell["ci_low_ms"] <= cell["median_ms"]).all() and (cell["median_ms"] <= cell["ci_high_ms"]).all()
    fp32 = df[df.recipe == "fp32"]
    assert (fp32["speedup_vs_fp32"] == 1.0).all()
    ptq = df[(df.recipe == "ptq_int8") & (df.run_index < REGRESSION_AT)]
    assert ptq["speedup_vs_fp32"].between(2.3, 2.9).all()  # synthetic ptq is 2.6x faster than fp32


def test_window_last_and_since(history):
    assert qbench.results.trend(history, last=5)["run_id"].nunique() == 5
    since = qbench.results.trend(history, since="2026-02-01")
    assert since["run_id"].min() == run_id(31)


@pytest.fixture(scope="module")
def trend_page(history, tmp_path_factory):
    out, _ = write_trend(history, tmp_path_factory.mktemp("page") / "trend.html")
    return out


@pytest.fixture(scope="module")
def page(browser, trend_page):  # noqa: F811
    browser.events.clear()
    browser.send("Page.navigate", url=trend_page.as_uri())
    browser.wait_for("Page.loadEventFired")
    return browser


def test_page_loads_offline_without_errors(page):
    assert page.evaluate("document.readyState") == "complete"
    assert page.errors() == []
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0
    assert page.evaluate("document.querySelectorAll('svg.plot').length") == 24 + 2  # cells + speedup per device


def test_injected_regression_is_marked_at_its_run(page):
    marks = page.evaluate("""Array.from(document.querySelectorAll('path.cp')).map((p) => ({
        cls: p.getAttribute('class'), run: p.dataset.run, index: +p.dataset.index,
        cell: p.closest('figure').querySelector('figcaption').textContent}))""")
    assert {(m["cell"], m["cls"], m["run"], m["index"]) for m in marks} == {
        (" · ".join(REGRESSED), "cp slower", run_id(REGRESSION_AT), REGRESSION_AT),
        (" · ".join(IMPROVED), "cp faster", run_id(IMPROVEMENT_AT), IMPROVEMENT_AT)}
    first = page.evaluate("document.querySelector('#moved tbody tr').textContent")
    assert "resnet18 · ptq_int8 · pixel8" in first and run_id(REGRESSION_AT) in first  # regressions first


def test_drag_zooms_every_chart_and_double_click_resets(page):
    page.evaluate("document.querySelectorAll('svg.plot')[5].scrollIntoView()")
    box = page.evaluate("""(() => { const r = document.querySelectorAll('svg.plot')[5].getBoundingClientRect();
        return [r.left, r.top, r.width, r.height]; })()""")
    x0, y, w = box[0] + box[2] * 0.25, box[1] + box[3] / 2, box[2]
    for kind, x in (("mousePressed", x0), ("mouseMoved", x0 + w * 0.25), ("mouseReleased", x0 + w * 0.25)):
        page.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
    boxes = set(page.evaluate("Array.from(document.querySelectorAll('svg.plot')).map((p) => p.getAttribute('viewBox'))"))
    assert len(boxes) == 1
    a, _, span, _ = map(float, boxes.pop().split())
    assert 7 <= a <= 12 and 8 <= span <= 12  # runs ~10 to ~20 of 40
    assert page.evaluate("document.getElementById('range').textContent").strip().startswith("showing runs")
    page.send("Input.dispatchMouseEvent", type="mouseMoved", x=x0, y=y)
    assert "git " in page.evaluate("document.getElementById('tip').textContent")  # hover: sha and versions
    page.evaluate("document.querySelectorAll('svg.plot')[5].dispatchEvent(new MouseEvent('dblclick'))")
    assert page.evaluate("document.querySelector('svg.plot').getAttribute('viewBox')") == f"0 0 {RUNS - 1} 100"
    assert page.errors() == []


def test_hostile_model_name_stays_text(page, trend_page):
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    captions = page.evaluate("Array.from(document.querySelectorAll('figcaption')).map((f) => f.textContent)")
    assert sum(c.startswith(XSS_MODEL) for c in captions) == 8
    html = trend_page.read_text(encoding="utf-8")
    assert "<img" not in html and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    block = re.search(r'<script type="application/json" id="trend-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block and XSS_MODEL in json.dumps(json.loads(block), ensure_ascii=False)
    assert not any("dialog" in e for e in page.errors())


def test_cli_writes_the_page_and_reports_bad_input_in_one_line(history, tmp_path):
    out = tmp_path / "t.html"
    ok = qbench_cli("trend", "--db", history, "--last", "20", "-o", out, "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["runs"] == 20 and doc["cells"] == 24 and out.exists()
    assert [c["run_id"] for c in doc["change_points"]] == [run_id(REGRESSION_AT)]
    bad = qbench_cli("trend", "nosuchsuite", "--db", history)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nightly" in bad.stderr
    assert MODELS_8  # the year benchmark uses all eight models


def test_screenshot_artifact(page, trend_page):
    import base64
    import shutil

    from .test_html_report import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    shot = page.send("Page.captureScreenshot", format="png", clip={"x": 0, "y": 0, "width": 1400, "height": 1000,
                                                                   "scale": 1})
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (ARTIFACTS / "trend.png").write_bytes(png)
    shutil.copyfile(trend_page, ARTIFACTS / "trend.html")


def test_cli_reads_a_postgresql_store_by_url_and_by_qbench_db(pg_url, tmp_path):
    import os

    build_year_db(pg_url, runs=6, models=["resnet18"], recipes=["fp32", "ptq_int8"], devices=["pixel8"],
                  samples=5, regression_at=4, improvement_at=2)
    by_flag = qbench_cli("trend", "--db", pg_url, "-o", tmp_path / "a.html", "--json", cwd=tmp_path)
    assert by_flag.returncode == 0, by_flag.stderr
    assert json.loads(by_flag.stdout)["runs"] == 6 and (tmp_path / "a.html").exists()
    by_env = qbench_cli("trend", "--json", cwd=tmp_path, env={"QBENCH_DB": pg_url})
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(by_env.stdout)["page"] == "reports/trend.html"  # a server has no folder: the reports one
    assert (tmp_path / "reports" / "trend.html").exists()
