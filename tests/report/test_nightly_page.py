"""The nightly page (`qbench run --baseline`): a run's index.html that opens with what changed since
its baseline, then the winners per model × device, then the usual report. Opened in headless
Chromium at a laptop's 1366×768, on a generated baseline + nightly pair with one injected regression
(and one improvement); the first screen goes to test-artifacts/nightly.png (git-ignored)."""

from __future__ import annotations

import base64
import json
import shutil

import pytest

from qbench.report.answers import answers
from qbench.report.compare import compare_runs
from qbench.report.html import write_report
from qbench.report.winners import winners
from qbench.text import cell_label

from .synthetic import BASE, NEW, XSS_MODEL
from .synthetic_year import IMPROVED, MODELS_8, REGRESSED, build_year_db
from .test_html_report import ARTIFACTS
from .test_html_report import browser  # noqa: F401  (the module-scoped headless Chromium fixture)

WIDTH, HEIGHT = 1366, 768


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two nights of 8 models × 4 recipes × 2 devices; night 2 has REGRESSED 15% slower, IMPROVED 12% faster."""
    db = tmp_path_factory.mktemp("pair") / "qbench.db"
    base, new = build_year_db(db, runs=2, regression_at=1, improvement_at=1)["run_ids"]
    return db, base, new


@pytest.fixture(scope="module")
def nightly_page(pair, tmp_path_factory):
    db, base, new = pair
    out = tmp_path_factory.mktemp("nightly") / "index.html"
    return write_report(db, [new], out, comparison=compare_runs(db, base, new))


@pytest.fixture(scope="module")
def page(browser, nightly_page):  # noqa: F811
    browser.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    browser.events.clear()
    browser.send("Page.navigate", url=nightly_page.as_uri())
    browser.wait_for("Page.loadEventFired")
    return browser


def test_loads_offline_without_console_errors(page):
    assert page.evaluate("document.readyState") == "complete"
    assert page.errors() == []
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0


def test_first_screen_lists_the_injected_regression_first(page):
    page.evaluate("window.scrollTo(0, 0)")
    verdicts = page.evaluate("Array.from(document.querySelectorAll('#answers .verdict')).map((v) => v.textContent"
                             ".replace(/\\s+/g, ' ').trim())")
    assert verdicts[:3] == ["1 regression", "1 improvement", "62 unchanged"]
    first = page.evaluate("""(() => { const li = document.querySelector('#answers-regressions li');
        const r = li.getBoundingClientRect();
        return {text: li.textContent.replace(/\\s+/g, ' '), bottom: r.bottom, top: r.top,
                href: li.querySelector('a').getAttribute('href')}; })()""")
    assert cell_label(*REGRESSED) in first["text"] and "+1" in first["text"]  # +15% with its CI
    assert "ratio" in first["text"] and "[" in first["text"]
    assert 0 < first["top"] and first["bottom"] <= HEIGHT  # on the first screen, no scrolling
    improvement = page.evaluate("document.querySelector('#answers-improvements li').textContent")
    assert cell_label(*IMPROVED) in improvement
    # the link goes to the cell's own row in this page
    row = page.evaluate(f"""(() => {{ const tr = document.querySelector({json.dumps(first['href'])});
        return tr && [tr.closest('table').id, tr.dataset.model, tr.dataset.recipe, tr.dataset.device]; }})()""")
    assert row == ["cells-table", *REGRESSED]
    page.evaluate("document.querySelector('#answers-regressions a').click()")
    landed = page.evaluate(f"""(() => {{ const r = document.querySelector({json.dumps(first['href'])})
        .getBoundingClientRect(); const h = document.querySelector('#cells-table thead').getBoundingClientRect();
        return [location.hash, r.top, r.bottom, h.bottom, document.querySelector('nav').getBoundingClientRect().bottom];
        }})()""")
    hash_, top, bottom, header_bottom, nav_bottom = landed
    assert hash_ == first["href"] and max(header_bottom, nav_bottom) <= top and bottom <= HEIGHT  # in view, uncovered
    page.evaluate("history.replaceState(null, '', location.pathname); window.scrollTo(0, 0)")


def test_winners_per_model_and_device_say_what_accuracy_means(page):
    cards = page.evaluate("""Array.from(document.querySelectorAll('#winners .winner')).map((w) => ({
        title: w.querySelector('h3').textContent.replace(/\\s+/g, ' ').trim(),
        rows: Object.fromEntries(Array.from(w.querySelectorAll('tr')).map((tr) =>
            [tr.querySelector('th').textContent, tr.querySelector('td b').textContent])),
        basis: w.querySelector('p').textContent, fronts: w.querySelectorAll('svg path.pareto').length}))""")
    assert len(cards) == len(MODELS_8) * 2
    for card in cards:
        assert card["rows"]["fastest"] in ("ptq_int8", "qat_int8")  # 2.6× fp32 in the generator
        assert card["rows"]["smallest"] in ("ptq_int8", "qat_int8")
        assert card["rows"]["most accurate"] == "dynamic_int8"  # 36 dB, fp32 being the reference
        assert "SQNR" in card["basis"] and "no dataset" in card["basis"]
        assert card["fronts"] == 1  # one front per model and device, never across models
    assert sum(c["title"].startswith(XSS_MODEL) for c in cards) == 2


def test_hostile_model_name_stays_text(page, nightly_page):
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.querySelectorAll('script:not([type])').length") == 1
    html = nightly_page.read_text(encoding="utf-8")
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not any("dialog" in e for e in page.errors())


def _column(page, key: str) -> dict:
    return page.evaluate(f"""(() => {{ const th = document.querySelector('#cells-table th[data-key="{key}"]');
        const r = th.getBoundingClientRect(); const td = document.querySelector('#cells-table tbody tr')
            .cells[Array.prototype.indexOf.call(th.parentNode.children, th)];
        return {{shown: getComputedStyle(th).display !== 'none' && getComputedStyle(td).display !== 'none',
                 left: r.left, right: r.right}}; }})()""")


def test_cells_table_fits_a_laptop_with_accuracy_and_energy_in_view(page):
    page.evaluate("document.getElementById('cells').scrollIntoView()")
    fit = page.evaluate("""(() => { const box = document.querySelector('#cells .scroll');
        return [box.scrollWidth, box.clientWidth]; })()""")
    assert fit[0] <= fit[1], f"table {fit[0]} px wide in a {fit[1]} px box"
    for key in ("model", "median", "speedup", "pte", "energy", "accuracy", "sqnr"):
        col = _column(page, key)
        assert col["shown"] and col["right"] <= WIDTH, (key, col)
    assert not _column(page, "p90")["shown"]  # detail columns wait behind their group's toggle


def test_group_toggles_fold_and_unfold_columns(page):
    toggle = "document.querySelector('button.col-toggle[data-group=\"latency-ms\"]')"
    head = "document.querySelector('#cells-table tr.groups th[data-group=\"latency-ms\"]').colSpan"
    folded = page.evaluate(head)
    page.evaluate(f"{toggle}.click()")
    assert _column(page, "p90")["shown"] and _column(page, "cv")["shown"]
    assert page.evaluate(f"{toggle}.getAttribute('aria-expanded')") == "true"
    assert page.evaluate(head) == folded + 7  # the folded latency columns, p95 among them
    page.evaluate(f"{toggle}.click()")  # click -> hidden again
    assert not _column(page, "p90")["shown"] and not _column(page, "cv")["shown"]
    assert _column(page, "median")["shown"] and page.evaluate(head) == folded
    # a group whose columns are all detail disappears when folded, header included
    startup = "document.querySelector('#cells-table tr.groups th[data-group=\"startup-ms\"]')"
    assert page.evaluate(f"{startup}.hidden") and not _column(page, "load")["shown"]
    page.evaluate("document.querySelector('button.col-toggle[data-group=\"startup-ms\"]').click()")
    assert not page.evaluate(f"{startup}.hidden") and _column(page, "load")["shown"]
    page.evaluate("document.querySelector('button.col-toggle[data-group=\"startup-ms\"]').click()")
    assert not _column(page, "load")["shown"]
    assert page.errors() == []


def test_headers_stay_in_view_while_the_table_scrolls(page):
    page.evaluate("document.getElementById('cells').scrollIntoView()")
    tops = page.evaluate("""(() => { const box = document.querySelector('#cells .scroll');
        box.scrollTop = 600; const th = document.querySelector('#cells-table th[data-key="median"]');
        const out = [box.getBoundingClientRect().top, th.getBoundingClientRect().top, box.scrollTop];
        box.scrollTop = 0; return out; })()""")
    assert tops[2] > 0 and 0 <= tops[1] - tops[0] < 40  # the column header sticks under the group row


def test_screenshot_artifact(page, nightly_page):
    page.evaluate("window.scrollTo(0, 0)")
    shot = page.send("Page.captureScreenshot", format="png",
                     clip={"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1})
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "nightly.png").write_bytes(png)
    shutil.copyfile(nightly_page, ARTIFACTS / "nightly.html")


def test_a_two_run_report_fits_too(page, nightly_db, tmp_path):
    """`qbench report BASE NEW` adds a run column (the runs named by their ids' last part, full id on hover)."""
    report = write_report(nightly_db, [BASE, NEW], tmp_path / "report.html")
    page.events.clear()
    page.send("Page.navigate", url=report.as_uri())
    page.wait_for("Page.loadEventFired")
    page.evaluate("document.getElementById('cells').scrollIntoView()")
    fit = page.evaluate("""(() => { const box = document.querySelector('#cells .scroll');
        return [box.scrollWidth, box.clientWidth]; })()""")
    assert fit[0] <= fit[1], f"table {fit[0]} px wide in a {fit[1]} px box"
    assert _column(page, "energy")["right"] <= WIDTH and _column(page, "accuracy")["right"] <= WIDTH
    run = page.evaluate("(() => { const td = document.querySelector('#cells-table tbody td'); "
                        "return [td.textContent, td.title]; })()")
    assert run == ["…base", BASE]
    assert page.evaluate("document.querySelector('#answers-regressions li a b').textContent") == \
        "resnet18/dynamic_int8@host"  # the newly failed cell first
    assert page.errors() == []


# --------------------------------------------------------------------------- without a browser


def test_worst_first_failure_then_latency_then_accuracy(nightly_db):
    """tests/report/synthetic.py: a newly failed cell, a 10% slower one and an SQNR drop."""
    out = answers(compare_runs(nightly_db, BASE, NEW), [])
    assert [(r["model"], r["recipe"], r["device"]) for r in out["regressions"]] == [
        ("resnet18", "dynamic_int8", "host"), ("resnet18", "ptq_int8", "pixel8"),
        ("mobilenet_v3_small", "ptq_int8", "pixel8")]
    assert out["regressions"][0]["headline"].startswith("failed: export: <script>")  # escaped by the template
    assert out["regressions"][2]["headline"].startswith("SQNR 30.0 dB → 26.5 dB")
    assert [r["href"] for r in out["regressions"]] == ["#compare"] * 3  # no cells given: the table instead


def test_task_accuracy_is_the_basis_when_a_dataset_scored_the_model():
    def cell(recipe, kind, median, top1, size):
        return {"model": "m", "recipe": recipe, "recipe_kind": kind, "device": "d", "status": "ok",
                "latency_ms": {"median": median}, "pte_bytes": size, "accuracy_top1": top1, "sqnr_db": 30.0}

    cells = [cell("fp32", "fp32", 10.0, 0.80, 4000), cell("int8", "ptq", 4.0, 0.78, 1000),
             cell("int4", "int4", 5.0, 0.70, 900)]
    (card,) = winners(cells, {"fp32": "#111", "int8": "#222", "int4": "#333"}, {"m": "circle"})
    assert {r["what"]: r["recipe"] for r in card["rows"]} == {"fastest": "int8", "smallest": "int4",
                                                              "most accurate": "fp32"}
    assert card["basis"] == "top-1 accuracy on the eval split"
    assert card["pareto"] is not None and 'class="pareto"' in str(card["pareto"])
