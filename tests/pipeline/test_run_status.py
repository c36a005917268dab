"""A run is `complete` only when every cell ended; a crash is `failed` with its cause; Ctrl-C and
SIGTERM are `interrupted`. `--baseline last` only ever takes a complete run with measured cells, and
a gate with nothing to compare says so and fails."""

from __future__ import annotations

import sqlite3
from argparse import Namespace

from rich.console import Console

from qbench.cli.run import _nightly
from qbench.cli.signals import Terminated
from qbench.pipeline.run_status import record_run_end
from qbench.results.store import ResultsStore
from tests.report.synthetic import add_cell, add_run, trial_samples

import numpy as np


def _store(tmp_path) -> ResultsStore:
    return ResultsStore(tmp_path / "q.db")


def _cells(store, run_id, statuses):
    return [store.ensure_cell(run_id, "m", f"r{i}", "fp32", "host") for i, _ in enumerate(statuses)]


def test_how_a_run_ends_is_stored(tmp_path):
    store = _store(tmp_path)
    cases = {
        "ok": (None, ["ok", "failed"], "complete", None),
        "pending": (None, ["ok", "pending"], "failed", "1 cell(s) never measured"),
        "crash": (sqlite3.OperationalError("database or disk is full"), ["pending"], "failed",
                  "OperationalError: database or disk is full"),
        "oserror": (NotADirectoryError(20, "Not a directory", "afile/artifacts"), ["pending"], "failed",
                    "afile/artifacts: Not a directory"),
        "ctrl-c": (KeyboardInterrupt(), ["ok", "pending"], "interrupted", None),
        "sigterm": (Terminated(), ["pending"], "interrupted", None),
    }
    for run_id, (exc, statuses, status, error) in cases.items():
        add_run(store, run_id, status="running")
        ids = _cells(store, run_id, statuses)
        for cid, s in zip(ids, statuses):
            store.update_cell(cid, status=s)
        assert record_run_end(store, run_id, ids, exc) == status
        row = store.run(run_id)
        assert (row["status"], row["error"]) == (status, error), run_id
        assert row["ended_at"]
    store.reopen_run("crash")  # --resume clears the old cause
    assert (store.run("crash")["status"], store.run("crash")["error"]) == ("running", None)


def test_baseline_last_is_the_newest_complete_run_with_measured_cells(tmp_path):
    store = _store(tmp_path)
    rng = np.random.default_rng(0)
    for run_id, status, cell in [("a-good", "complete", "ok"), ("b-crashed", "failed", "pending"),
                                 ("c-nothing-measured", "complete", "pending"), ("d-all-failed", "complete", "failed"),
                                 ("e-interrupted", "interrupted", "ok"), ("f-running", "running", "ok"),
                                 ("g-other-suite", "complete", "ok"), ("h-new", "running", "pending")]:
        add_run(store, run_id, suite="other" if run_id.startswith("g") else "mobile", status=status)
        if cell == "ok":
            add_cell(store, run_id, "m", "fp32", "host", samples=trial_samples(rng, 1.0))
        elif cell == "failed":
            add_cell(store, run_id, "m", "fp32", "host", stage="run", error="boom")
        else:
            store.ensure_cell(run_id, "m", "fp32", "fp32", "host")
    assert store.latest_run_id(suite="mobile", before="h-new") == "a-good"
    assert store.latest_run_id(suite="mobile", before="a-good") is None


def _args(**kw):
    return Namespace(**{"baseline": "last", "fail_on_regression": "5%", **kw})


def _console(tmp_path):
    return Console(file=open(tmp_path / "console.txt", "w"), width=300)


def test_a_gate_whose_earlier_runs_all_crashed_has_nothing_to_compare(tmp_path):
    """The issue's night: yesterday's run crashed (cells pending); today's gate must not pass silently."""
    store = _store(tmp_path)
    rng = np.random.default_rng(1)
    add_run(store, "crashed", status="failed", started_at="2025-11-26T03:00:00+00:00")
    store.ensure_cell("crashed", "m", "fp32", "fp32", "host")
    add_run(store, "today", status="complete", started_at="2025-11-27T03:00:00+00:00")
    add_cell(store, "today", "m", "fp32", "host", samples=trial_samples(rng, 1.0))
    gate = _nightly(_args(), store, "mobile", "today", 0.05, tmp_path / "out", _console(tmp_path))
    assert gate["run_id"] is None and gate["regressions"] == []
    assert "no earlier complete run of suite 'mobile' with measured cells" in gate["nothing_compared"]
    assert "crashed failed" in gate["nothing_compared"]
    assert (tmp_path / "out" / "summary.md").is_file()


def test_a_first_night_is_not_a_failure(tmp_path):
    store = _store(tmp_path)
    add_run(store, "first", status="complete")
    add_cell(store, "first", "m", "fp32", "host", samples=trial_samples(np.random.default_rng(2), 1.0))
    gate = _nightly(_args(), store, "mobile", "first", 0.05, tmp_path / "out", _console(tmp_path))
    assert gate["run_id"] is None and gate["nothing_compared"] is None
    assert "first night" in (tmp_path / "console.txt").read_text()


def test_a_baseline_sharing_no_measured_cell_is_nothing_to_compare(tmp_path):
    store = _store(tmp_path)
    rng = np.random.default_rng(3)
    add_run(store, "base", status="complete", started_at="2025-11-26T03:00:00+00:00")
    add_cell(store, "base", "m", "fp32", "host", samples=trial_samples(rng, 1.0))
    add_run(store, "new", status="complete", started_at="2025-11-27T03:00:00+00:00")
    add_cell(store, "new", "m", "fp32", "host", stage="run", error="runner died")
    gate = _nightly(_args(baseline="base"), store, "mobile", "new", 0.05, tmp_path / "out", _console(tmp_path))
    assert gate["run_id"] == "base" and "nothing comparable between baseline base and run new" in gate["nothing_compared"]
    assert "nothing comparable" in (tmp_path / "out" / "summary.md").read_text()


def test_gate_outputs_go_to_a_fallback_folder_when_the_reports_folder_cannot_be_written(tmp_path):
    from tests.mounts import read_only_folder

    store = _store(tmp_path)
    rng = np.random.default_rng(4)
    for run_id, day, median in (("base", "26", 1.0), ("new", "27", 2.0)):
        add_run(store, run_id, status="complete", started_at=f"2025-11-{day}T03:00:00+00:00")
        add_cell(store, run_id, "m", "fp32", "host", samples=trial_samples(rng, median))
    with read_only_folder(tmp_path / "ro") as ro:
        gate = _nightly(_args(baseline="base"), store, "mobile", "new", 0.05, ro / "new", _console(tmp_path))
    assert gate["regressions"] == ["m/fp32@host"]  # the verdict stands: the gate still exits 3
    assert not gate["summary"].startswith(str(ro)) and "m" in open(gate["summary"]).read()
    assert "writing junit.xml and summary.md to" in (tmp_path / "console.txt").read_text()


def test_bad_options_are_refused_before_the_suite_is_even_read(tmp_path, capsys):
    from qbench.cli import main

    db = tmp_path / "q.db"
    ResultsStore(db).close()
    for argv, text in [(["--fail-on-regression", "abc"], "threshold 'abc'"),
                       (["--baseline", "nope"], "--baseline: no run 'nope'"),
                       (["--resume", "nope"], "--resume: no run 'nope'"),
                       (["--cache-dir", str(db)], "is a file, not a folder")]:
        code = main(["run", str(tmp_path / "absent.yaml"), "--db", str(db), "--reports-dir", str(tmp_path / "r"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and text in err and "absent.yaml" not in err, (argv, err)


def test_compare_as_a_gate_fails_when_nothing_was_measured_in_both(tmp_path, capsys):
    from qbench.cli import main

    store = _store(tmp_path)
    add_run(store, "base", status="complete", started_at="2025-11-26T03:00:00+00:00")
    add_cell(store, "base", "m", "fp32", "host", samples=trial_samples(np.random.default_rng(5), 1.0))
    add_run(store, "new", status="complete", started_at="2025-11-27T03:00:00+00:00")
    store.ensure_cell("new", "m", "fp32", "fp32", "host")  # never measured
    store.close()
    code = main(["compare", "base", "new", "--db", str(tmp_path / "q.db"), "--fail-on-regression"])
    assert code == 1 and "nothing comparable between base and new" in capsys.readouterr().err
    assert main(["compare", "base", "new", "--db", str(tmp_path / "q.db")]) == 0  # not a gate: a report
