"""qbench as a nightly CI job sees it: stdout to a pipe, a suite from `qbench init`, run as is.

One module-scoped run (default verbosity, narrow $COLUMNS, a GitHub step summary file), then a gated
run against it with a slowed-down baseline (-v, GitHub annotations, Markdown summary), then -q on a
resume of the finished first run (nothing left to measure: only the summary).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, halve_samples, qbench

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = tmp_path_factory.mktemp("first")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    init = qbench("init", "--model", "python:models/tiny.py:tiny_mlp", "--input-shape", "1,64", cwd=root)
    assert init.returncode == 0, init.stderr
    step = root / "step-summary.md"
    proc = qbench("run", "suite.yaml", cwd=root, env={"COLUMNS": "40", "GITHUB_STEP_SUMMARY": str(step)})
    run_id = re.search(r"^tiny_mlp — (\S+)$", proc.stdout, re.M)
    rows = qbench("results", "--format", "json", cwd=root)
    return {"root": root, "init": init, "proc": proc, "step": step, "run_id": run_id and run_id.group(1),
            "rows": json.loads(rows.stdout or "[]")}


def test_init_output_runs_as_is(first):
    assert "wrote suite.yaml" in first["init"].stdout
    assert (first["root"] / "device_profiles" / "host.yaml").is_file()
    assert first["proc"].returncode == 0, first["proc"].stderr[-3000:]
    assert {r["recipe"] for r in first["rows"]} == {"fp32", "int8-ptq", "int8-dynamic"}
    assert all(r["status"] == "ok" for r in first["rows"])


def _close(token: str, value: float) -> bool:
    """The printed figure is the stored value to the precision printed (nothing cut or rounded away)."""
    digits = len(token.split(".")[1]) if "." in token else 0
    return abs(float(token.replace(",", "")) - value) <= 0.5 * 10 ** -digits + 1e-12


def test_summary_in_a_pipe_shows_every_figure_in_full(first):
    out = first["proc"].stdout
    assert "…" not in out
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["model", "recipe", "device"]
    for r in first["rows"]:  # columns are two or more spaces apart (a value may hold one: "stable ±1.2%")
        row = next(re.split(r"\s{2,}", line.strip()) for line in lines if line.split()[:2] == ["tiny_mlp", r["recipe"]])
        # the default columns (fits 100-120 columns; p90, CV, RSS, top-1 and delegation are under --wide)
        median, stability, speedup, pte_kib, sqnr, status = row[3:]
        assert _close(median, r["latency_median_ms"])
        assert re.fullmatch(r"(stable|disturbed|imprecise) ±\d+\.\d%", stability) and stability.startswith(r["stability_verdict"])
        assert re.fullmatch(r"\d+\.\d\d×( \[\d+\.\d\d–\d+\.\d\d\])?|no clear difference", speedup)
        assert _close(pte_kib, r["pte_bytes"] / 1024) and _close(sqnr, r["sqnr_db"])
        assert status in ("ok", "ok ⚑")  # ⚑: a finding, e.g. int8 slower than fp32 beyond its CI


def test_without_a_bar_each_finished_cell_is_one_line_and_the_run_has_a_log(first):
    err = first["proc"].stderr
    done = [line for line in err.splitlines() if "[ok] tiny_mlp/" in line]
    assert len(done) == 3 and all(re.search(r"^\[\d+/\d+\] \[ok\] .*median [\d.]+ ms", d) for d in done)
    log = first["root"] / "reports" / first["run_id"] / "qbench.log"
    assert "[ok] tiny_mlp/int8-ptq@host" in log.read_text()


def test_github_step_summary_receives_the_markdown(first):
    text = first["step"].read_text()
    assert f"run `{first['run_id']}`" in text and "| tiny\\_mlp | int8-ptq | host | ok |" in text


@pytest.fixture(scope="module")
def gated(first, tmp_path_factory):
    """Today's run against a baseline whose fp32 samples were twice as fast: one injected regression."""
    root = first["root"]
    db = root / "reports" / "qbench.db"
    halve_samples(db, first["run_id"], "fp32")
    step = root / "gated-summary.md"
    return qbench("run", "suite.yaml", "-v", "--summary", "markdown", "--baseline", first["run_id"],
                  "--fail-on-regression", "5%", cwd=root,
                  env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})


def test_regression_becomes_a_github_error_annotation_on_stderr(gated):
    assert gated.returncode == 3, gated.stderr[-3000:]
    assert "::error" not in gated.stdout  # stdout is the summary alone
    errors = [line for line in gated.stderr.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert errors[0].startswith("::error title=qbench regression%3A tiny_mlp/fp32@host::tiny_mlp/fp32@host vs run ")
    assert "latency" in errors[0] and "%25" in errors[0]  # the threshold's % is escaped as GitHub requires


def _gate_paths(first, gated) -> tuple[Path, Path]:
    line = gated.stderr.strip().splitlines()[-1]
    junit, summary = re.search(r"; junit (\S+), summary (\S+)$", line).groups()
    return first["root"] / junit, first["root"] / summary  # as given: relative to where qbench ran


def test_the_failing_gate_says_so_in_one_line(first, gated):
    line = gated.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"gate: FAIL — 1 regression\(s\) in 3 compared cell\(s\) \(1 slower, \d faster, \d no "
                        rf"significant change\) vs run {first['run_id']}, threshold 5%; junit \S+junit.xml, "
                        rf"summary \S+summary.md", line), line
    junit, summary = _gate_paths(first, gated)
    assert junit.is_file() and summary.is_file()


def test_markdown_summary_on_stdout_is_summary_md(first, gated):
    _, summary = _gate_paths(first, gated)
    assert gated.stdout == summary.read_text(encoding="utf-8")
    lines = gated.stdout.splitlines()
    assert lines[0].startswith("## qbench · tiny\\_mlp — run `")
    assert sum(line.startswith("| tiny\\_mlp |") for line in lines) == 3
    assert "| vs base |" in gated.stdout


@pytest.fixture(scope="module")
def passed(first, gated):
    """A run gated against the gated run (named by a prefix of its id) at a 99% threshold: it passes."""
    gated_id = json.loads(qbench("results", "--run", "last", "--format", "json", cwd=first["root"]).stdout)[0]["run_id"]
    proc = qbench("run", "suite.yaml", "--json", "--baseline", gated_id[:-1], "--fail-on-regression", "99%",
                  cwd=first["root"])
    return gated_id, proc


def test_a_passing_gate_says_so_with_its_base_run_and_paths(passed):
    gated_id, proc = passed
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"gate: pass — 0 regression\(s\) in 3 compared cell\(s\) \(0 slower, \d faster, \d no "
                        rf"significant change\) vs run {gated_id}, threshold 99%; junit \S+junit.xml, "
                        rf"summary \S+summary.md", line), line


def test_a_gated_run_has_a_vs_base_figure_per_cell(passed):
    from qbench.cli.summary import render_plain

    doc = json.loads(passed[1].stdout)
    assert doc["baseline"]["verdict"] == "pass" and doc["baseline"]["counts"]["matched"] == 3
    for c in doc["cells"]:
        v = c["vs_base"]
        assert v["ratio"] > 0 and v["ci"][0] <= v["ratio"] <= v["ci"][1] and v["regression"] is False
    text = render_plain(doc).splitlines()
    assert "vs base" in text[1]
    for c in doc["cells"]:
        row = next(line for line in text if line.split()[:2] == ["tiny_mlp", c["recipe"]])
        change = f"{c['vs_base']['ratio'] - 1:+.1%}".replace("-", "−")  # + is slower, like the column says
        assert re.search(rf"{re.escape(change)} (same|faster|slower)", row), row


def test_verbose_shows_info_lines(first, gated):
    assert re.search(r"tiny_mlp/int8-ptq: artifact \w+ from the cache", gated.stderr)
    assert re.search(r"host: \w+ runner \(", gated.stderr)
    assert "from the cache" not in first["proc"].stderr and "runner (" not in first["proc"].stderr  # not without -v


def test_quiet_prints_only_the_summary(first, gated):
    # --resume takes a run reference: here a unique prefix of the first run's id
    proc = qbench("run", "suite.yaml", "-q", "--resume", first["run_id"][:-1], cwd=first["root"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == f"tiny_mlp — {first['run_id']}" and lines[1].split()[0] == "model"
    assert all(line.startswith("tiny_mlp ") for line in lines[2:5])
    # closing notes on a busy machine (a heading per verdict, findings: lists, a cell a line), nothing else
    assert all(re.match(r"\d+ (disturbed|imprecise) cell\(s\): |\d+ cell\(s\) with findings|  tiny_mlp/", line)
               for line in lines[5:]), lines


def test_a_long_step_without_an_outcome_gets_a_heartbeat_line():
    """A piped log is never silent for long: a stage that runs past the heartbeat says so, once per period."""
    import io
    import time

    from qbench.cli.progress import LineProgress

    out = io.StringIO()
    with LineProgress(stream=out, heartbeat_s=0.2) as progress:
        progress.start(4)
        progress.stage("export tiny_mlp/int8-qat")
        time.sleep(0.7)
    lines = out.getvalue().splitlines()
    assert lines and all(re.fullmatch(r"\[0/4\] … export tiny_mlp/int8-qat: \d+ s so far", line) for line in lines)
    quiet = io.StringIO()
    with LineProgress(stream=quiet, quiet=True, heartbeat_s=0.2) as progress:
        progress.stage("export x")
        time.sleep(0.4)
    assert quiet.getvalue() == ""
