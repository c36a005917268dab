"""Non-finite outputs are a finding, not a number (issue 23, item 2), on a real run of tiny models:
NaN/inf in fp32, NaN/inf only after quantization, an empty output, an output whose shape changes
between calls. Every JSON qbench writes parses as strict JSON; the run page and `qbench report`
render whatever the store holds (also -inf and NaN left by older versions)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import qbench, write_suite

HERE = Path(__file__).parent

SUITE = """
name: nonfinite
models:
  - {name: nan_out, source: "python:models/nonfinite_models.py:nan_out", inputs: [{shape: [1, 64]}]}
  - {name: quant_nan, source: "python:models/nonfinite_models.py:quant_nan", inputs: [{shape: [1, 64]}]}
  - {name: empty, source: "python:models/nonfinite_models.py:empty", inputs: [{shape: [1, 64]}]}
  - {name: shifting, source: "python:models/nonfinite_models.py:shifting", inputs: [{shape: [1, 64]}]}
calibration: {kind: random, samples: 8}
recipes:
  - {name: fp32, kind: fp32}
  - {name: int8, kind: ptq}
devices: [host]
benchmark: {warmup: 1, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: 1, threads: 1,
            timeout_seconds: 60, quiet_start: {max_wait_s: 0}}
"""


def strict_loads(text: str):
    """json.loads that refuses NaN/Infinity, as JSON.parse and jq do."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nonfinite")
    (folder / "models").mkdir()
    shutil.copy(HERE / "nonfinite_models.py", folder / "models" / "nonfinite_models.py")
    suite = write_suite(folder, SUITE)
    proc = qbench("run", suite, "--db", "r.db", "--json", cwd=folder)
    assert "Traceback" not in proc.stderr, proc.stderr
    doc = strict_loads(proc.stdout)
    return folder, doc, proc


def _cell(doc, model, recipe):
    return next(c for c in doc["cells"] if (c["model"], c["recipe"]) == (model, recipe))


def test_nan_in_fp32_is_a_finding_on_the_cell_not_a_number(run):
    _, doc, proc = run
    cell = _cell(doc, "nan_out", "fp32")
    assert cell["status"] == "ok"
    assert [cell[k] for k in ("sqnr_db", "max_abs_error", "cosine_similarity", "top1_agreement")] == [None] * 4
    assert cell["nonfinite"] == [{"output": "output", "values": 80, "fp32": 16, "program": 16}]
    assert cell["numerics_reason"] == "NaN/inf in 16 of 80 values in fp32 (the model itself)"
    dn = cell["device_numerics"]
    assert dn["agrees_with_host"] is None and dn["sqnr_db"] is None  # never "agrees" on NaN
    assert "not compared" in dn["reason"]
    # its int8 recipe cannot calibrate: said in one line about the model, not torch.histc's text
    failed = _cell(doc, "nan_out", "int8")
    assert failed["status"] == "failed" and "histc" not in failed["error"]
    assert failed["error"].startswith("quantize: the fp32 model itself outputs NaN/inf (2 of 10 values)")


def test_nan_only_after_quantization_is_named_as_such(run):
    _, doc, _ = run
    cell = _cell(doc, "quant_nan", "int8")
    assert cell["status"] == "ok" and cell["sqnr_db"] is None and cell["top1_agreement"] is None
    (finding,) = cell["nonfinite"]
    assert finding["fp32"] == 0 and finding["program"] > 0
    assert "only in the quantized program (fp32 has none)" in cell["numerics_reason"]
    assert cell["device_numerics"]["agrees_with_host"] is not True
    assert _cell(doc, "quant_nan", "fp32")["sqnr_db"] > 60 and _cell(doc, "quant_nan", "fp32")["nonfinite"] is None


def test_empty_and_shape_changing_outputs_get_one_clear_line(run):
    _, doc, _ = run
    empty = _cell(doc, "empty", "fp32")
    assert empty["status"] == "ok" and empty["sqnr_db"] is None
    assert empty["numerics_reason"] == "empty output (shape [1, 0]): nothing to compare"
    assert empty["device_numerics"]["agrees_with_host"] is None
    shifting = _cell(doc, "shifting", "fp32")
    assert shifting["status"] == "failed"
    assert re.fullmatch(r"numerics: the fp32 model's output changes shape between calls \(\[1, \d+\] then \[1, \d+\]"
                        r".*\): numerics need an output whose shape depends only on the input's", shifting["error"])
    for cell in doc["cells"]:
        assert "array" not in (cell.get("error") or ""), cell["error"]  # no numpy text


def test_the_finding_is_said_where_the_number_is_shown(run):
    from qbench.cli.summary import render_markdown, render_plain

    _, doc, _ = run
    plain = render_plain(doc)
    row = next(line for line in plain.splitlines() if line.startswith("nan_out ") and " fp32 " in line)
    assert "NaN/inf" in row  # in the SQNR column itself
    assert "nan_out/fp32@host: NaN/inf in 16 of 80 values in fp32 (the model itself)" in plain
    assert "quant_nan/int8@host: NaN/inf in" in plain and "empty/fp32@host: empty output" in plain
    assert "NaN/inf" in render_markdown(doc)


def test_run_page_and_report_render_and_their_data_is_strict_json(run, tmp_path):
    folder, doc, _ = run
    page = (folder / "reports" / doc["run_id"] / "index.html").read_text()
    assert "full report failed" not in page and "⚠ NaN/inf" in page
    _assert_strict_data_block(page)
    proc = qbench("report", doc["run_id"], "--db", "r.db", "-o", tmp_path / "rep.html", cwd=folder)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    _assert_strict_data_block((tmp_path / "rep.html").read_text())


def test_pages_and_json_survive_nan_and_inf_left_in_a_store(run, tmp_path):
    """A store written before these fixes holds -inf SQNR, NaN device numerics, NaN figures per leaf:
    every view still renders, and every JSON still parses strictly."""
    folder, doc, _ = run
    db = tmp_path / "old.db"
    shutil.copy(folder / "r.db", db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE cells SET sqnr_db = ?, max_abs_error = ?, cosine_similarity = ?, top1_agreement = 1.0, "
                    "latency_p99_ms = ? WHERE status = 'ok'", (float("-inf"), float("inf"), float("-inf"), float("inf")))
        extra = ('{"device_numerics": {"sqnr_db": 999.0, "max_abs_error": NaN, "cosine_similarity": NaN, '
                 '"agrees_with_host": true, "samples": 8}, "output": "a", '
                 '"outputs": {"a": {"sqnr_db": -Infinity, "max_abs_error": NaN}, "b": {"sqnr_db": NaN}}}')
        con.execute("UPDATE cells SET extra = ? WHERE status = 'ok'", (extra,))
    proc = qbench("report", doc["run_id"], "--db", db, "-o", tmp_path / "rep.html", cwd=folder)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    page = (tmp_path / "rep.html").read_text()
    _assert_strict_data_block(page)
    assert "nan" not in re.findall(r'(?:x|y|width|height|cx|cy)="([^"]*)"', page)
    for args in (("results", "--run", doc["run_id"], "--db", db, "--format", "json"),
                 ("compare", doc["run_id"], doc["run_id"], "--db", db, "--json"),
                 ("trend", "--db", db, "-o", tmp_path / "trend.html", "--json")):
        out = qbench(*args, cwd=folder)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        strict_loads(out.stdout)


def _assert_strict_data_block(page: str) -> None:
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert block
    strict_loads(block.group(1))
