"""The gate's words without a real run (the real ones are in test_ci_logs.py and test_mlflow_gate.py):
every verdict's line, the `vs base` text, `qbench compare`'s annotations on stderr, the exit-code table."""

from __future__ import annotations


import pytest

from qbench.errors import EXIT_CODE_MEANINGS, ExitCode
from qbench.report.compare import compare_runs
from qbench.report.gate import FAIL, NOT_ENFORCED, PASS, gate_line, verdict, vs_base, vs_base_text
from tests.report.synthetic import BASE, NEW, build_nightly_db
from tests.helpers import qbench


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("gate") / "qbench.db"
    build_nightly_db(path)
    return path


@pytest.fixture(scope="module")
def result(db):
    return compare_runs(db, BASE, NEW, threshold="5%")


def _gate(result, nothing=None, enforced=True) -> dict:
    return {"run_id": BASE if result else None, "threshold": 0.05, "verdict": verdict(result, nothing, enforced),
            "counts": result.counts() if result else None, "nothing_compared": nothing,
            "junit": "out/junit.xml", "summary": "out/summary.md"}


def test_each_verdict_is_one_line_with_counts_base_threshold_and_paths(result):
    n = result.counts()
    assert n["regressions"] >= 2
    assert gate_line(_gate(result)) == (
        f"gate: FAIL — {n['regressions']} regression(s) in {n['matched']} compared cell(s) ({n['slower']} slower, "
        f"{n['faster']} faster, {n['no_change']} no significant change, {n['not_compared']} not compared) "
        f"vs run {BASE}, threshold 5%; junit out/junit.xml, summary out/summary.md")
    assert gate_line(_gate(result, enforced=False)).startswith("gate: not enforced — ")
    assert gate_line(_gate(None)) == ("gate: pass — no baseline yet (the first run of this suite in the store): "
                                      "nothing to compare; junit out/junit.xml, summary out/summary.md")
    nothing = _gate(None, nothing="no earlier complete run of suite 'mobile'")
    assert nothing["verdict"] == FAIL
    assert gate_line(nothing).startswith("gate: FAIL — nothing compared: no earlier complete run of suite 'mobile';")
    assert all("\n" not in gate_line(g) for g in (_gate(result), _gate(None), nothing))
    assert (verdict(None, None, True), verdict(result, None, False)) == (PASS, NOT_ENFORCED)


def test_vs_base_says_which_way_is_better(result):
    slower = result.cell("resnet18", "ptq_int8", "pixel8")
    faster = result.cell("mobilenet_v3_small", "dynamic_int8", "host")
    accuracy = result.cell("mobilenet_v3_small", "ptq_int8", "pixel8")  # SQNR dropped, latency unchanged
    failed = result.cell("resnet18", "dynamic_int8", "host")
    assert vs_base_text(vs_base(slower)).startswith("+") and vs_base_text(vs_base(slower)).endswith(" slower")
    assert vs_base_text(vs_base(faster)).startswith("−") and vs_base_text(vs_base(faster)).endswith(" faster")
    assert vs_base_text(vs_base(accuracy)).endswith(" regressed")
    assert vs_base_text(vs_base(failed)) == "regressed"
    assert vs_base_text(None) == "new cell"
    v = vs_base(slower)
    assert v["ci"][0] <= v["ratio"] <= v["ci"][1] and v["regression"] and v["reasons"]


def test_compare_annotations_go_to_stderr_also_without_json(db):
    out = qbench("compare", BASE, NEW, "--db", db, "--fail-on-regression", env={"GITHUB_ACTIONS": "true"}, timeout=300)
    assert out.returncode == ExitCode.REGRESSION
    assert "::error" not in out.stdout and out.stdout.startswith(f"base {BASE}")
    assert sum(line.startswith("::error title=qbench regression") for line in out.stderr.splitlines()) >= 2


def test_one_exit_code_table_and_help_prints_it():
    assert set(EXIT_CODE_MEANINGS) == set(ExitCode)
    codes = [int(c) for c in ExitCode]
    assert len(codes) == len(set(codes)) and ExitCode.INTERNAL_ERROR not in (ExitCode.CELLS_FAILED, ExitCode.REGRESSION)
    text = qbench("--help", timeout=120).stdout
    for code, meaning in EXIT_CODE_MEANINGS.items():
        assert f"{int(code):>3}  {meaning}" in text
