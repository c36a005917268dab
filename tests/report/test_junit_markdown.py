"""Nightly outputs: JUnit XML (parsed back with ElementTree) and the Markdown summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from qbench.report.compare import compare_runs
from qbench.report.junit import junit_xml
from qbench.report.markdown import markdown_summary
from qbench.report.nightly import nightly_outputs

from .synthetic import BASE, NEW, XSS_MODEL, add_cell, add_run, trial_samples


def _cases(xml_text: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml_text.encode("utf-8"))
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def test_junit_one_testcase_per_cell_with_failures_and_regressions(nightly_db):
    result = compare_runs(nightly_db, BASE, NEW)
    text = junit_xml(nightly_db, NEW, result)
    root = ET.fromstring(text.encode("utf-8"))
    suite = root.find("testsuite")
    assert suite.get("tests") == "18" and suite.get("failures") == "3" and suite.get("skipped") == "0"
    cases = _cases(text)
    assert len(cases) == 18

    slow = cases["qbench.mobile::resnet18/ptq_int8@pixel8"].find("failure")
    assert slow.get("type") == "Regression" and "latency 1.0" in slow.get("message")
    sqnr = cases["qbench.mobile::mobilenet_v3_small/ptq_int8@pixel8"].find("failure")
    assert "SQNR 30.0 dB → 26.5 dB" in sqnr.get("message")
    failed = cases["qbench.mobile::resnet18/dynamic_int8@host"].find("failure")
    assert failed.get("type") == "CellFailed" and "(was ok in the base run)" in failed.get("message")
    assert "\x1b" not in failed.text and "Traceback" in failed.text  # colour codes stripped, text kept
    assert failed.get("message").startswith("export: <script>")  # escaped in XML, text again once parsed
    assert cases[f"qbench.mobile::{XSS_MODEL}/fp32@host"].find("failure") is None
    assert cases["qbench.mobile::mobilenet_v3_small/dynamic_int8@host"].find("failure") is None  # faster: passes
    assert "only in base" in suite.find("system-out").text


def test_junit_without_a_baseline_fails_only_failed_cells(nightly_db):
    root = ET.fromstring(junit_xml(nightly_db, NEW).encode("utf-8"))
    assert root.get("tests") == "18" and root.get("failures") == "1"


def test_junit_survives_control_bytes_and_skips_unmeasured(empty_store):
    add_run(empty_store, "r", suite="smoke")
    add_cell(empty_store, "r", "m\x00odel", "fp32", "host", stage="run", error="bad byte \x07 \x1b[1mbold\x1b[0m")
    add_cell(empty_store, "r", "ok", "fp32", "host", samples=trial_samples(np.random.default_rng(0), 1.0))
    empty_store.ensure_cell("r", "later", "fp32", "fp32", "host")
    root = ET.fromstring(junit_xml(empty_store.path, "r").encode("utf-8"))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    failure = next(root.iter("failure"))
    assert failure.get("message") == "run: bad byte \ufffd bold"


def test_junit_says_each_cells_stability_with_its_trial_counts(empty_store):
    add_run(empty_store, "r", suite="smoke")
    for name, verdict in (("a", "imprecise"), ("b", "disturbed"), ("c", "noisy")):  # noisy: an older store
        cid = add_cell(empty_store, "r", name, "fp32", "host", samples=trial_samples(np.random.default_rng(0), 1.0))
        counts = {"trials_measured": 9, "trials_clean": 9 if verdict == "imprecise" else 0, "trials_replaced": 0,
                  "trials_not_judged": 2} if verdict != "noisy" else {}
        empty_store.update_cell(cid, stability_verdict=verdict, stability_reason="why", **counts)
    root = ET.fromstring(junit_xml(empty_store.path, "r").encode("utf-8"))
    out = {case.get("name"): case.find("system-out").text for case in root.iter("testcase")}
    assert "stability: imprecise, 9 trials (9 clean, 2 not judged): why" in out["a/fp32@host"]
    assert "stability: disturbed, 9 trials, all disturbed: why" in out["b/fp32@host"]
    assert "stability: noisy: why" in out["c/fp32@host"]


def test_markdown_summary_has_the_table_and_regressions(nightly_db):
    result = compare_runs(nightly_db, BASE, NEW)
    text = markdown_summary(nightly_db, NEW, result, report_link="report.html")
    lines = text.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("| model | recipe | device | status"))
    table = [ln for ln in lines[header:] if ln.startswith("|")]
    assert len(table) == 2 + 18  # header, alignment, one row per cell
    assert len({ln.count(" | ") for ln in table[2:]}) == 1  # escaping kept every row's columns aligned
    assert "### Regressions" in text and text.count("- ❌") == 3
    assert "❌ **slower**" in text and "✅ faster" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "<img" not in text and "<script" not in text
    assert "mobilenet\\_v3\\_small/qat\\_int8@host" in text  # only in this run, listed
    assert "**18 cells: 17 ok, 1 failed**" in text and "Full report: report.html" in text


def test_markdown_escapes_pipes_and_newlines(empty_store):
    add_run(empty_store, "r", suite="smoke")
    add_cell(empty_store, "r", "a|b\nc", "fp32", "host", samples=trial_samples(np.random.default_rng(0), 1.0))
    text = markdown_summary(empty_store.path, "r")
    row = next(ln for ln in text.splitlines() if ln.startswith("| a"))
    assert row.startswith("| a\\|b\\\\nc | fp32 | host | ok |")  # the newline shown as \\n (escaped for Markdown)


def test_nightly_outputs_writes_both_files(nightly_db, tmp_path):
    result, junit, md = nightly_outputs(nightly_db, BASE, NEW, 0.05, tmp_path / "nightly")
    assert junit.name == "junit.xml" and md.name == "summary.md"
    assert len(result.regressions) == 3
    assert ET.parse(junit).getroot().get("failures") == "3"
    assert "| model | recipe | device |" in md.read_text(encoding="utf-8")

    first, junit, md = nightly_outputs(nightly_db, None, NEW, 0.05, tmp_path / "first-night", html=True)
    assert first is None and (tmp_path / "first-night" / "report.html").is_file()
    assert ET.parse(junit).getroot().get("failures") == "1"
