"""Pages that answer honestly, on a laptop (1366×768) and a phone (390×844), in headless Chromium.

Every page (the nightly page, a two-run report, a run on a busy host where every cell is noisy and
one model failed, the trend page, the sensitivity page) must not scroll sideways (a wide table may
scroll inside its own box), and must say what can be trusted (noisy and failed cells, why) before it
crowns any winner. Screenshots of the first screens go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from qbench.report.compare import compare_runs
from qbench.report.html import write_report
from qbench.report.trend_page import write_trend
from qbench.results.store import ResultsStore

from .synthetic import BASE, NEW, add_cell, add_run, trial_samples
from .synthetic_year import RECIPES_4, build_year_db
from .test_html_report import ARTIFACTS
from .test_html_report import browser  # noqa: F401  (the module-scoped headless Chromium fixture)

SIZES = {"laptop": (1366, 768), "phone": (390, 844)}
LONG_CAUSE = ("RuntimeError: XNNPACK delegate rejected node aten.convolution.default (groups=3, "
              "kernel 7x7, dilation 2): no kernel for this configuration; partition 4 of 9 left to the portable "
              "kernels, which then failed to allocate 1,234,567,890 bytes for the im2col scratch buffer\n"
              "  at executorch/backends/xnnpack/partition.py:412")
NOISY_WHY = "3 of 3 trials disturbed (host load 1.9 on 2 cores)"


def _noisy(store, run, model, recipe, median, ci, rng):
    add_cell(store, run, model, recipe, "host", samples=trial_samples(rng, median), pte_bytes=int(4e6 / median),
             sqnr_db=30.0 + median, stability_verdict="noisy", stability_reason=NOISY_WHY,
             median_ci_low_ms=ci[0], median_ci_high_ms=ci[1], trials_used=3, trials_replaced=0)


@pytest.fixture(scope="module")
def busy_db(tmp_path_factory):
    """A mobile-like run on a busy host: every measured cell `noisy`; `tiny` ptq and qat overlap, `wide`
    ptq is clearly fastest (but noisy); every recipe of `broken` failed with a long cause."""
    path = tmp_path_factory.mktemp("busy") / "qbench.db"
    rng = np.random.default_rng(3)
    store = ResultsStore(path)
    add_run(store, "busy")
    for model, cells in {"tiny": {"fp32": (10.0, (9.5, 10.6)), "ptq_int8": (4.0, (3.8, 4.3)),
                                  "qat_int8": (4.1, (3.9, 4.4))},
                         "wide": {"fp32": (30.0, (29.0, 31.0)), "ptq_int8": (11.0, (10.6, 11.4)),
                                  "qat_int8": (14.0, (13.5, 14.6))}}.items():
        for recipe, (median, ci) in cells.items():
            _noisy(store, "busy", model, recipe, median, ci, rng)
    for recipe in ("fp32", "ptq_int8"):
        add_cell(store, "busy", "broken", recipe, "host", stage="export", error=LONG_CAUSE)
    store.finish_run("busy", "complete", "2025-11-27T03:41:00+00:00")
    store.close()
    return path


@pytest.fixture(scope="module")
def sensitivity_db(tmp_path_factory):
    """`qbench sensitivity` without --measure: a run with per-layer rows and no cell."""
    path = tmp_path_factory.mktemp("sens") / "qbench.db"
    store = ResultsStore(path)
    add_run(store, "sens", suite="smoke")
    sqnr = [38.0, 31.5, 12.4, 29.0, 35.2, 8.7, 27.5, 33.0]
    long_name = "classifier.head.proj_out_with_a_long_name"
    rows = [{"position": i, "module": f"features.{i}.block.conv" if i != 5 else long_name,
             "op": "conv2d", "sqnr_db": v, "cosine": 0.99, "target": "sqnr>=30", "metric_name": "sqnr_db",
             "metric_if_fp32": 30.0 + v / 10, "method": "fp32-one", "sensitivity_rank": i + 1,
             "kept_fp32": int(v < 13)} for i, v in enumerate(sqnr)]
    store.replace_layers("sens", "mobilenet_v3_small", "ptq_int8", rows)
    store.finish_run("sens", "complete", "2025-11-27T03:10:00+00:00")
    store.close()
    return path


@pytest.fixture(scope="module")
def pages(busy_db, nightly_db, sensitivity_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    year = out / "year.db"
    base, new = build_year_db(year, runs=6, models=["mobilenet_v3_small", "resnet18"], regression_at=3,
                              improvement_at=2)["run_ids"][-2:]
    (out / base).mkdir()
    (out / base / "index.html").write_text("<!doctype html><title>run page</title>")  # as `qbench run` leaves it
    return {
        "busy": write_report(busy_db, ["busy"], out / "busy.html"),
        "nightly": write_report(year, [new], out / "nightly.html", comparison=compare_runs(year, base, new)),
        "two-run": write_report(nightly_db, [BASE, NEW], out / "two-run.html"),
        "trend": write_trend(year, out / "trend.html")[0],
        "sensitivity": write_report(sensitivity_db, ["sens"], out / "sens" / "index.html"),
    }


def _open(browser, path, size):  # noqa: F811
    width, height = SIZES[size]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                 mobile=size == "phone")
    browser.events.clear()
    browser.send("Page.navigate", url=path.as_uri())
    browser.wait_for("Page.loadEventFired", timeout=60)
    browser.evaluate("window.scrollTo(0, 0)")
    return width, height


def _sideways(browser, width: int) -> dict:  # noqa: F811
    """How wide the page is, and the outermost elements that stick out (not inside a box that scrolls)."""
    return browser.evaluate(f"""(() => {{ const W = {width}, out = [];
        for (const e of document.querySelectorAll('body *')) {{
            const r = e.getBoundingClientRect(); if (r.right <= W + 1 || r.width === 0) continue;
            let p = e.parentElement, boxed = false;
            for (; p; p = p.parentElement) {{ const o = getComputedStyle(p).overflowX;
                if ((o === 'auto' || o === 'scroll' || o === 'hidden') && p.getBoundingClientRect().right <= W + 1)
                {{ boxed = true; break; }} }}
            if (!boxed) out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + Math.round(r.right));
        }}
        return {{page: document.documentElement.scrollWidth, stick_out: out.slice(0, 8)}}; }})()""")


def _shoot(browser, name: str, width: int, height: int) -> None:  # noqa: F811
    shot = browser.send("Page.captureScreenshot", format="png",
                        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", ["busy", "nightly", "two-run", "trend", "sensitivity"])
def test_no_page_level_horizontal_scroll(browser, pages, name, size):  # noqa: F811
    width, height = _open(browser, pages[name], size)
    _shoot(browser, f"{name}-{size}", width, height)
    got = _sideways(browser, width)
    assert got["page"] <= width and not got["stick_out"], got
    assert browser.errors() == []


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", ["busy", "nightly", "two-run", "trend", "sensitivity"])
def test_trust_line_on_the_first_screen_above_the_winners(browser, pages, name, size):  # noqa: F811
    width, height = _open(browser, pages[name], size)
    box = browser.evaluate("""(() => { const t = document.querySelector('#trust .trust-line').getBoundingClientRect();
        const w = document.getElementById('winners'); const a = document.getElementById('answers');
        return {top: t.top, bottom: t.bottom, winners: w ? w.getBoundingClientRect().top : null,
                answers: a ? a.getBoundingClientRect().top : null}; })()""")
    assert 0 < box["top"] and box["bottom"] <= height, box  # on the first screen
    if name in ("busy", "nightly", "two-run"):  # the trend and sensitivity pages crown nothing
        assert box["winners"] is not None and box["bottom"] <= box["winners"], box
    if box["answers"] is not None:
        assert box["bottom"] <= box["answers"], box


def test_busy_run_says_noisy_and_failed_first_with_the_full_cause(browser, pages):  # noqa: F811
    _open(browser, pages["busy"], "laptop")
    line = browser.evaluate("document.querySelector('#trust .trust-line').textContent.replace(/\\s+/g, ' ')")
    assert "6 measured" in line and "6 noisy" in line and "2 failed" in line, line
    reasons = browser.evaluate("Array.from(document.querySelectorAll('#trust-unsure li')).map((li) => li.textContent)")
    assert len(reasons) == 6 and all(NOISY_WHY in r for r in reasons)
    failed = browser.evaluate("""Array.from(document.querySelectorAll('#trust-failed li')).map((li) => ({
        name: li.querySelector('a').textContent, href: li.querySelector('a').getAttribute('href'),
        stage: li.querySelector('.badge').textContent, cause: li.querySelector('pre').textContent}))""")
    assert [f["name"] for f in failed] == ["broken/fp32@host", "broken/ptq_int8@host"]
    assert all(f["stage"] == "export" and f["cause"] == LONG_CAUSE for f in failed)  # whole, not cut at 80
    assert browser.evaluate(f"!!document.querySelector({failed[0]['href']!r} + '.st-failed')")  # links its row
    cards = browser.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('#summary .card')).map("
                             "(c) => [c.querySelector('.label').textContent, c.className]))")
    assert "noisy" in cards and "good" not in cards["ok"]  # "6 OK" is not green when all six are noisy


def test_winners_from_noisy_cells_are_marked_or_not_crowned(browser, pages):  # noqa: F811
    _open(browser, pages["busy"], "laptop")
    cards = browser.evaluate("""Object.fromEntries(Array.from(document.querySelectorAll('#winners .winner')).map((w) =>
        [w.querySelector('h3').textContent.trim().split(' ')[0], w.innerText.replace(/\\s+/g, ' ')]))""")
    assert "fastest no clear winner" in cards["tiny"] and "the fastest two overlap" in cards["tiny"]
    assert "fastest ptq_int8 noisy" in cards["wide"] and "may be off" in cards["wide"]
    assert "no winner: every recipe failed" in cards["broken"]


@pytest.mark.parametrize("size", list(SIZES))
def test_sensitivity_page_leads_with_the_per_layer_result_and_the_skip(browser, pages, size):  # noqa: F811
    width, height = _open(browser, pages["sensitivity"], size)
    got = browser.evaluate(r"""(() => { const s = document.getElementById('sensitivity');
        const skip = s.querySelector('pre.skip').getBoundingClientRect();
        const panels = Array.from(document.querySelectorAll('main > section')).map((e) => e.id);
        return {order: panels, skip: s.querySelector('pre.skip').textContent, skip_bottom: skip.bottom,
                chart: s.querySelectorAll('svg.chart').length,
                trust: document.querySelector('#trust .trust-line').textContent.replace(/\s+/g, ' '),
                cards: document.querySelectorAll('#summary .card').length}; })()""")
    assert got["order"][:2] == ["trust", "sensitivity"], got["order"]
    assert got["skip"] == 'skip: {modules: [features.2.block.conv, classifier.head.proj_out_with_a_long_name]}'
    assert got["skip_bottom"] <= height and got["chart"] == 1  # the answer on the first screen, then the chart
    assert "nothing was timed" in got["trust"] and got["cards"] == 0  # no "0 cells / 0 OK / 0 failed"


def test_trend_page_marks_every_run_links_its_page_and_filters_offline(browser, pages):  # noqa: F811
    _open(browser, pages["trend"], "laptop")
    dots = browser.evaluate("Array.from(document.querySelectorAll('#cells path.runs')).map("
                            "(p) => (p.getAttribute('d').match(/h0/g) || []).length)")
    assert dots and set(dots) == {6}  # a marker per run in every cell chart
    ticks = browser.evaluate("Array.from(document.querySelectorAll('#cells g.xticks')[0].querySelectorAll('text'))"
                             ".map((t) => t.textContent)")
    assert len(ticks) >= 3 and all(re.fullmatch(r"(\d\d-\d\d )?\d\d:\d\d", t) for t in ticks), ticks
    runs = browser.evaluate("JSON.parse(document.getElementById('trend-data').textContent).runs")
    assert [bool(r["href"]) for r in runs] == [False] * 4 + [True, False]  # only run 5 has a page beside
    # a click on run 5's point opens its page
    browser.evaluate("document.getElementById('cells').scrollIntoView()")
    x, y = browser.evaluate("""(() => { const r = document.querySelector('#cells svg.plot').getBoundingClientRect();
        return [r.left + r.width * 4 / 5, r.top + r.height / 2]; })()""")
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
    browser.wait_for("Page.loadEventFired", timeout=30)
    assert browser.evaluate("location.pathname").endswith(f"/{runs[4]['id']}/index.html")
    _open(browser, pages["trend"], "laptop")
    shown = ("Array.from(document.querySelectorAll('#cells figure.cell')).filter((f) => !f.hidden)"
             ".map((f) => f.dataset.model + '/' + f.dataset.recipe + '@' + f.dataset.device)")
    total = len(browser.evaluate(shown))
    browser.evaluate("""(() => { for (const [k, v] of [['model', 'resnet18'], ['device', 'pixel8']]) {
        const s = document.getElementById('filter-' + k); s.value = v; s.dispatchEvent(new Event('change')); } })()""")
    picked = browser.evaluate(shown)
    assert total == 16 and sorted(picked) == [f"resnet18/{r}@pixel8" for r in sorted(RECIPES_4)]
    assert browser.evaluate("document.querySelectorAll('#speedup figure.cell:not([hidden])').length") == 1
    assert browser.errors() == []


def test_trend_notes_name_a_run_without_a_sha_without_a_dangling_comma(tmp_path):
    rng = np.random.default_rng(9)
    store = ResultsStore(tmp_path / "q.db")
    for i in range(5):
        add_run(store, f"r{i}", started_at=f"2026-01-01T0{i}:00:00+00:00", git_sha=None)  # several runs a day
        add_cell(store, f"r{i}", "m", "fp32", "host", samples=trial_samples(rng, 2.0 * (1.3 if i >= 3 else 1.0)))
        store.finish_run(f"r{i}", "complete", f"2026-01-01T0{i}:30:00+00:00")
    store.close()
    html = write_trend(tmp_path / "q.db", tmp_path / "trend.html")[0].read_text(encoding="utf-8")
    assert "from <b>2026-01-01 03:00</b> (r3)</li>" in html and ", )" not in html


# --------------------------------------------------------------------------- without a browser


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start:html.index("</section>", start)]


def test_each_model_has_its_own_pareto_front(nightly_db):
    import re

    from qbench.report.gather import gather
    from qbench.report.plots import model_shapes, tradeoff_panels
    from qbench.report.svg import colours_for

    cells = [c for c in gather(nightly_db, [NEW]).cells]
    colours = colours_for([c["recipe"] for c in cells])
    panels = tradeoff_panels(cells, colours, model_shapes(list(dict.fromkeys(c["model"] for c in cells))))
    for svg in map(str, panels):
        fronts = re.findall(r'<path class="pareto" data-group="([^"]*)"', svg)
        assert len(fronts) == len(set(fronts)) >= 2, fronts  # one staircase per model, never one across models


def test_size_chart_labels_use_the_axis_unit():
    import re

    from qbench.report.plots import size_memory_panels

    cells = [{"model": "m", "recipe": r, "device": "host", "pte_bytes": b, "peak_rss_bytes": None}
             for r, b in (("fp32", 3_000_000), ("int8", 800_000))]
    (svg,) = map(str, size_memory_panels(cells, {"fp32": "#111", "int8": "#222"}))
    labels = re.findall(r">([\d.,]+) (B|KiB|MiB|GiB)<", svg)
    assert labels == [("2.9", "MiB"), ("0.8", "MiB")]  # 800 kB reads 0.8 MiB on a MiB axis, not 781.2 KiB
    assert ">MiB<" in svg


def test_box_labels_fit_inside_the_plot():
    import re

    from qbench.report.svg import Box, box_panel

    box = Box("resnet18", "#333", q1=1200.0, median=1234.5, q3=1250.0, lo=1150.0, hi=1300.0, n=5000, above=652)
    svg = str(box_panel("t", [box], width=640))
    x = float(re.search(r'<text x="([\d.]+)"[^>]*>1,234  \+652›<', svg).group(1))
    assert x + 6.6 * len("1,234  +652›") <= 640


def test_two_run_report_warns_about_noise_once_and_shows_no_p_value(busy_db, tmp_path):
    import shutil

    rng = np.random.default_rng(5)
    db = shutil.copyfile(busy_db, tmp_path / "two.db")
    store = ResultsStore(db)
    add_run(store, "busy-2", started_at="2025-11-28T03:00:00+00:00")
    for recipe, median in (("fp32", 10.0), ("ptq_int8", 4.0), ("qat_int8", 4.1)):
        _noisy(store, "busy-2", "tiny", recipe, median, (median * 0.95, median * 1.05), rng)
    store.finish_run("busy-2", "complete", "2025-11-28T03:41:00+00:00")
    store.close()
    html = write_report(db, ["busy", "busy-2"], tmp_path / "r.html").read_text(encoding="utf-8")
    shown = html[:html.index('<script type="application/json"')]  # the JSON block keeps the warnings for tools
    assert shown.count("not stable in one of the runs") == 1
    compare = _section(html, "compare")
    assert 'data-key="p"' not in compare and "Mann-Whitney" not in compare and "&lt;0.001" not in compare


def test_sections_without_data_take_one_line(busy_db, tmp_path):
    html = write_report(busy_db, ["busy"], tmp_path / "r.html").read_text(encoding="utf-8")
    nodata = _section(html, "nodata")
    assert "Energy per inference" in nodata and "Top operators" in nodata
    assert 'href="#plot-energy-section"' not in html  # not offered in the navigation either
    assert 'id="plot-latency-section"' in html and 'class="panel" id="plot-latency-section"' in html


def test_fallback_summary_page_says_what_to_trust_too(busy_db, tmp_path):
    from qbench.report.summary_page import write_summary_page
    from qbench.report.views import run_document

    store = ResultsStore(busy_db)
    try:
        doc = run_document(store, "busy")
    finally:
        store.close()
    html = write_summary_page(doc, tmp_path).read_text(encoding="utf-8")
    trust_at, table_at = html.index('id="trust"'), html.index('<table id="cells">')
    assert trust_at < table_at and "6 noisy" in html[trust_at:table_at] and "2 failed" in html[trust_at:table_at]
    assert "failed at export: " + LONG_CAUSE.splitlines()[0] in html


def test_a_regression_from_a_noisy_cell_carries_the_word(nightly_db):
    from qbench.report.answers import answers
    from qbench.report.gather import gather

    cells = gather(nightly_db, [BASE, NEW]).cells
    for c in cells:
        if c["run_id"] == NEW and (c["model"], c["recipe"], c["device"]) == ("resnet18", "ptq_int8", "pixel8"):
            c["stability"] = {"verdict": "noisy", "reason": NOISY_WHY}
    found = answers(compare_runs(nightly_db, BASE, NEW), cells)["regressions"]
    rows = {(r["model"], r["recipe"]): r["mark"] for r in found}
    assert rows[("resnet18", "ptq_int8")] == "noisy"
    assert rows[("resnet18", "dynamic_int8")] == ""  # a failure is a fact, not noise


def test_a_ci_never_breaks_inside_its_brackets_on_a_phone(browser, pages):  # noqa: F811
    _open(browser, pages["two-run"], "phone")
    split = browser.evaluate("""Array.from(document.querySelectorAll('#answers .nw, #winners .nw')).filter(
        (e) => e.textContent.includes('[') && e.getClientRects().length > 1).map((e) => e.textContent)""")
    assert browser.evaluate("document.querySelectorAll('#answers .nw').length") >= 3 and split == []
