"""A baseline measured with other settings (threads, iterations, runner...) is compared with a word:
the differing settings are named in the comparison text, its JSON, summary.md and the HTML page."""

from __future__ import annotations

import json

import numpy as np

from qbench.cli import main
from qbench.report.compare import compare_runs
from qbench.report.html import write_report
from qbench.report.markdown import markdown_summary
from qbench.results.store import ResultsStore

from .synthetic import SETTINGS, add_cell, trial_samples


def _run(store, run_id, day, settings, runner):
    store.create_run(run_id=run_id, suite="mobile", status="complete", started_at=f"2025-11-{day}T03:00:00+00:00",
                     settings=settings, devices=["host"])
    rng = np.random.default_rng(int(day))
    add_cell(store, run_id, "m", "fp32", "host", samples=trial_samples(rng, 1.0), runner=runner)


def test_differing_settings_are_named_everywhere(tmp_path, capsys):
    db = tmp_path / "q.db"
    store = ResultsStore(db)
    _run(store, "base", "26", SETTINGS, "native")
    _run(store, "new", "27", {**SETTINGS, "threads": 1, "iterations": 20, "trials": 5}, "python")
    store.close()

    result = compare_runs(db, "base", "new")
    assert result.settings_differ == {"threads": {"base": 4, "new": 1}, "iterations": {"base": 50, "new": 20},
                                      "runner (m/fp32@host)": {"base": "native", "new": "python"}}
    [warning] = [w for w in result.warnings if "different settings" in w]
    assert "threads 4 → 1" in warning and "iterations 50 → 20" in warning and "native → python" in warning
    assert "trials" not in warning  # more trials narrow the CI; they do not change what is measured

    assert main(["compare", "base", "new", "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings_differ"]["threads"] == {"base": 4, "new": 1}
    assert main(["compare", "base", "new", "--db", str(db)]) == 0
    assert "threads 4 → 1" in capsys.readouterr().out

    assert "threads 4 → 1" in markdown_summary(db, "new", result)
    page = write_report(db, ["base", "new"], tmp_path / "r.html").read_text()
    assert "threads 4 → 1" in page


def test_same_settings_say_nothing(tmp_path):
    db = tmp_path / "q.db"
    store = ResultsStore(db)
    _run(store, "base", "26", SETTINGS, "native")
    _run(store, "new", "27", SETTINGS, "native")
    store.close()
    result = compare_runs(db, "base", "new")
    assert result.settings_differ == {} and not any("settings" in w for w in result.warnings)
