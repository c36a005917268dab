"""One definition of each figure, whatever prints it: the stability interval, CV as a percentage, CI
notation `[a–b]`, the direction of each ratio said, and no p-value beside the verdict."""

from __future__ import annotations

import json
import re

import pytest

from qbench.cli.summary import render_plain
from qbench.pipeline.adaptive import half_width
from qbench.report import table
from qbench.report.compare import compare_runs
from qbench.report.junit import junit_xml
from qbench.report.markdown import markdown_summary
from tests.report.synthetic import BASE, NEW, build_nightly_db

OLD_CI = re.compile(r"\[\d+\.\d+, \d+\.\d+\]")  # the notation '[a, b]' that is gone
NEW_CI = re.compile(r"\[\d+\.\d+–\d+\.\d+\]")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("figures") / "qbench.db"
    build_nightly_db(path)
    return path


@pytest.fixture(scope="module")
def result(db):
    return compare_runs(db, BASE, NEW, threshold="5%")


def _cell(median=10.0, ci=(9.0, 13.0), cv=0.034) -> dict:
    return {"model": "m", "recipe": "int8", "recipe_kind": "ptq", "device": "host", "status": "ok",
            "latency_ms": {"median": median, "p90": 11.0, "cv": cv},
            "stability": {"verdict": "noisy", "reason": "median CI ±30.0% wider than ±5%", "median_ci_ms": list(ci)},
            "speedup_vs_fp32": 1.5, "speedup_ci": [1.4, 1.6], "findings": []}


def test_the_stability_column_uses_the_closing_lines_formula():
    cell = _cell()
    text = table.texts(cell, table.pick(["stability"]), plain=True)[0]
    # the worse side around the median (30%), not the half-width around the CI's midpoint (18.2%)
    assert text == f"noisy ±{half_width(10.0, 9.0, 13.0):.1%}" == "noisy ±30.0%"
    assert "±30.0%" in cell["stability"]["reason"]


def test_cv_is_a_percentage_in_the_table_markdown_and_junit(db):
    assert table.texts(_cell(), table.pick(["cv"]), plain=True) == ["3.4%"]
    doc = {"suite": "s", "run_id": "r", "cells": [_cell()]}
    head, row = render_plain(doc, wide=True).splitlines()[1:3]
    assert "CV" in head and " 3.4% " in row
    md = markdown_summary(db, NEW)
    rows = [[c.strip() for c in line.split("|")] for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    at = rows[0].index("CV")  # the cells table's header row comes first
    cv_cells = [r[at] for r in rows if len(r) == len(rows[0])]
    assert cv_cells[0] == "CV" and all(re.fullmatch(r"(\d+\.\d%)?", c) for c in cv_cells[1:])
    assert re.search(r"CV \d+\.\d%", junit_xml(db, NEW))


def test_every_ci_is_printed_a_dash_b(db, result):
    texts = [result.to_text(), markdown_summary(db, NEW, result).replace("\\[", "[").replace("\\]", "]")]
    for text in texts:
        assert NEW_CI.search(text) and not OLD_CI.search(text)
    assert "1.50× [1.40–1.60]" in render_plain({"suite": "s", "run_id": "r", "cells": [_cell()]})


def test_each_ratio_says_which_way_is_better(result):
    head = render_plain({"suite": "s", "run_id": "r", "cells": [_cell()]}).splitlines()[1]
    assert "speedup vs fp32" in head
    assert "speedup" in table.pick(["speedup"])[0].hint and "higher is faster" in table.pick(["speedup"])[0].hint
    text = result.to_text()
    assert "new/base (above 1: slower, below 1: faster)" in text and "latency new/base [CI]" in text


def test_the_json_has_no_p_value_to_contradict_the_verdict(result):
    doc = json.loads(json.dumps(result.to_dict(), default=str))
    lat = [c["latency"] for c in doc["cells"] if c.get("latency")]
    assert lat and all("p_value" not in x for x in lat)
    assert all({"ratio", "low", "high", "verdict", "significant", "ci_excludes_one"} <= set(x) for x in lat)
    # no key contradicts the verdict: `significant` is true exactly when the verdict names a change
    assert all(x["significant"] == (x["verdict"] != "no significant change") for x in lat)


def test_a_ratios_ci_is_never_lopsided_around_its_estimate():
    import numpy as np

    from qbench.stats import log_symmetric, ratio_of_medians

    lo, hi = log_symmetric(1.97, 1.97, 2.39)  # the estimate on the percentile interval's edge
    assert lo < 1.97 < hi and np.isclose(1.97 / lo, hi / 1.97) and (lo, hi) != (1.97, 2.39)
    assert lo <= 1.97 and hi >= 2.39  # never narrower than the percentile interval
    rng = np.random.default_rng(3)
    for seed in range(5):  # two lumpy trials a side: the percentile CI is skewed
        base = np.concatenate([rng.lognormal(0, 0.05, 200) * f for f in (1.0, 1.08)])
        new = np.concatenate([rng.lognormal(0, 0.05, 200) * f for f in (0.5, 0.62)])
        labels = np.repeat([0, 1], 200)
        est = ratio_of_medians(base, new, trials_base=labels, trials_new=labels, n_boot=400, seed=seed)
        assert est.low < est.ratio < est.high
        assert np.isclose(est.ratio / est.low, est.high / est.ratio)


def test_the_default_summary_fits_120_columns_and_names_never_fold(db):
    from rich.console import Console

    from qbench.cli.summary import rich_table
    from qbench.report.views import run_document
    from qbench.results.store import ResultsStore

    doc = run_document(ResultsStore(db), NEW)
    doc["cells"] = [c for c in doc["cells"] if c["model"] in ("mobilenet_v3_small", "resnet18")]
    for c in doc["cells"]:  # the widest texts these columns print
        c["stability"] = {"verdict": "noisy", "reason": "", "median_ci_ms": [0.75 * c["latency_ms"]["median"],
                                                                           1.25 * c["latency_ms"]["median"]]} \
            if c.get("latency_ms") else None
        c["speedup_ci"] = [0.9, 1.1] if c["recipe"] == "dynamic_int8" else c.get("speedup_ci")
    plain = render_plain(doc).splitlines()
    table_lines = plain[1: 2 + len(doc["cells"])]
    assert "no clear difference" in "\n".join(table_lines) and "noisy ±25.0%" in "\n".join(table_lines)
    assert 80 < max(map(len, table_lines)) <= 120
    assert max(map(len, render_plain(doc, wide=True).splitlines()[1:])) > 120
    out = Console(width=120, record=True, file=open("/dev/null", "w"))
    out.print(rich_table(doc))
    text = out.export_text()
    assert "mobilenet_v3_small " in text and "dynamic_int8 " in text  # whole names, not folded
