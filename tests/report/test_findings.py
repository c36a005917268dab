"""Findings in the cell (report/findings.py): a recipe that quantized nothing, QAT clearly below PTQ,
an int8 cell slower than fp32 beyond its CI — computed once, shown by the summary, `--json` and the page.

The first test is a real run: `dynamic` int8 on a conv-only model has no Linear to quantize."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qbench.cli.summary import render_markdown, render_plain
from qbench.report.findings import (QAT_BELOW_PTQ, QUANTIZED_NOTHING, SLOWER_THAN_FP32, attach_findings,
                                    findings_text)
from tests.helpers import qbench, write_suite

CONV_ONLY = '''
import torch
from torch import nn


def conv_only() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
'''

SUITE = """
name: findings
models:
  - name: conv_only
    source: python:models/conv.py:conv_only
    inputs: [{shape: [1, 3, 8, 8]}]
recipes:
  - {name: fp32, kind: fp32}
  - {name: int8-dynamic, kind: dynamic}
  - {name: int8-ptq, kind: ptq}
calibration: {kind: random, samples: 4, seed: 0}
numerics: {samples: 2}
devices: [host]
benchmark: {warmup: 2, warmup_seconds: 0, iterations: 5, min_seconds: 0, trials: 2, max_trials: 3, threads: 1,
            precision: "0.001%", timeout_seconds: 60, quiet_start: {max_wait_s: 0}}
"""  # a precision no cell can meet: every cell ends up not stable (imprecise, or disturbed on a busy host)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("findings")
    (work / "models").mkdir()
    (work / "models" / "conv.py").write_text(CONV_ONLY)
    suite = write_suite(work, SUITE)
    out = qbench("run", suite, "--json", cwd=work, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    return {"doc": doc, "cells": {c["recipe"]: c for c in doc["cells"]}, "work": work, "stderr": out.stderr}


@pytest.mark.slow
def test_every_cell_not_stable_and_one_recipe_quantized_nothing_in_one_real_run(run):
    """Issue 24's e2e: a precision that cannot be met (every cell imprecise or disturbed, after more trials
    than `trials`) and a recipe that quantized nothing, both said in the same run's summary."""
    cells = run["cells"]
    assert all(c["stability"]["verdict"] in ("imprecise", "disturbed") for c in cells.values())
    assert all(c["stability"]["trials_measured"] == 3 for c in cells.values())  # more trials than `trials: 2`, up to max_trials
    plain = render_plain(run["doc"]).splitlines()
    assert any(re.match(r"\d+ (imprecise|disturbed) cell\(s\): ", line) for line in plain)
    assert "  conv_only/int8-dynamic@host: quantized nothing: identical to fp32" in plain


@pytest.mark.slow
def test_dynamic_on_a_conv_only_model_quantized_nothing_in_json_summary_and_page(run):
    cells = run["cells"]
    assert cells["int8-dynamic"]["quantized_layers"] == 0
    assert cells["int8-ptq"]["quantized_layers"] == 2  # both convs between a q-dq pair
    assert cells["fp32"]["quantized_layers"] == 0 and cells["fp32"]["findings"] == []  # fp32 is not flagged
    assert [f["kind"] for f in cells["int8-dynamic"]["findings"]] == [QUANTIZED_NOTHING]
    assert all(f["kind"] != QUANTIZED_NOTHING for f in cells["int8-ptq"]["findings"])

    plain = render_plain(run["doc"])
    row = next(line for line in plain.splitlines() if "int8-dynamic" in line and "conv_only" in line)
    assert row.rstrip().endswith("ok ⚑")
    assert "  conv_only/int8-dynamic@host: quantized nothing: identical to fp32" in plain.splitlines()
    assert "quantized nothing: identical to fp32" in render_markdown(run["doc"])

    page = (run["work"] / "reports" / run["doc"]["run_id"] / "index.html").read_text()
    assert 'data-finding="quantized_nothing">⚑ quantized nothing: identical to fp32' in page


@pytest.mark.slow
def test_findings_reach_junit_and_summary_md(run):
    from qbench.report.junit import junit_xml
    from qbench.report.markdown import markdown_summary

    db, run_id = run["work"] / "reports" / "qbench.db", run["doc"]["run_id"]
    case = next(c for c in ET.fromstring(junit_xml(db, run_id)).iter("testcase")
                if c.get("name") == "conv_only/int8-dynamic@host")
    assert "findings: quantized nothing: identical to fp32" in case.find("system-out").text
    summary = markdown_summary(db, run_id)
    assert "### Findings (⚑)" in summary and "conv\\_only/int8-dynamic@host: quantized nothing" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| conv") and "| int8-dynamic |" in line)
    assert "ok ⚑" in row


def _view(recipe, kind, **kw) -> dict:
    return {"model": "m", "device": "host", "recipe": recipe, "recipe_kind": kind, "status": "ok",
            "quantized_layers": 3, "sqnr_db": None, "speedup_vs_fp32": None, "speedup_ci": None, **kw}


def test_qat_clearly_below_ptq_of_the_same_model_is_a_finding():
    views = attach_findings([_view("fp32", "fp32"), _view("ptq", "ptq", sqnr_db=40.0),
                             _view("qat", "qat", sqnr_db=16.0), _view("qat-ok", "qat", sqnr_db=37.0),
                             _view("qat-other", "qat", sqnr_db=10.0, device="pi5")])
    by = {v["recipe"]: v for v in views}
    assert [f["kind"] for f in by["qat"]["findings"]] == [QAT_BELOW_PTQ]
    assert findings_text(by["qat"]) == "QAT below PTQ: SQNR 16.0 dB vs 40.0 dB (ptq)"
    assert by["qat-ok"]["findings"] == []  # within 6 dB of PTQ
    assert by["qat-other"]["findings"] == []  # no PTQ cell on that device to compare with


def test_an_int8_cell_slower_than_fp32_beyond_its_ci_is_a_finding():
    views = attach_findings([_view("slow", "ptq", speedup_vs_fp32=0.8, speedup_ci=[0.75, 0.86]),
                             _view("unclear", "ptq", speedup_vs_fp32=0.95, speedup_ci=[0.9, 1.02]),
                             _view("fast", "ptq", speedup_vs_fp32=1.5, speedup_ci=[1.4, 1.6]),
                             _view("failed", "ptq", status="failed", quantized_layers=0)])
    by = {v["recipe"]: v for v in views}
    assert findings_text(by["slow"]) == "slower than fp32: speedup 0.80× [0.75–0.86]"
    assert by["unclear"]["findings"] == by["fast"]["findings"] == by["failed"]["findings"] == []


@pytest.mark.slow
def test_the_piped_summary_fits_120_columns_and_wide_shows_the_rest(run):
    work = run["work"]
    narrow = qbench("run", work / "suite.yaml", cwd=work)
    assert narrow.returncode == 0, narrow.stderr[-3000:]
    lines = narrow.stdout.splitlines()
    head = next(line for line in lines if line.startswith("model"))
    assert head.split() == ["model", "recipe", "device", "median", "ms", "stability", "speedup", "vs", "fp32",
                            ".pte", "KiB", "SQNR", "dB", "status"]
    table = lines[lines.index(head): lines.index(head) + 4]
    assert max(map(len, table)) <= 120 and not any("…" in line for line in lines)
    # one line per prepared artifact, built or from the cache, also without -v
    assert re.search(r"\[prepared\] conv_only/int8-dynamic: quantized \d+\.\d s, exported \d+\.\d s, "
                     r"0 layer\(s\) quantized, \.pte [\d.,]+ \w+$", run["stderr"], re.M)
    assert re.search(r"\[cached\] conv_only/int8-ptq: .*2 layer\(s\) quantized", narrow.stderr)
    noisy = [line for line in lines if "noisy cell(s)" in line]
    if noisy:  # the closing note is a list, a cell a line, never cut
        assert noisy[0].endswith(":") and lines[lines.index(noisy[0]) + 1].startswith("  conv_only/")
    wide = qbench("run", work / "suite.yaml", "--wide", cwd=work)
    assert wide.returncode == 0, wide.stderr[-3000:]
    wide_head = next(line for line in wide.stdout.splitlines() if line.startswith("model"))
    assert all(h in wide_head for h in ("p90 ms", "CV", "RSS MiB", "top-1", "delegated"))
