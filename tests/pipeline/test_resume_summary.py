"""A run that stopped after a cell's last trial was stored but before its summary (the database
went away, the process died): --resume finishes that cell from its stored trials, measuring none again."""

from __future__ import annotations

import json

import pytest

from tests.helpers import qbench, tiny_suite, write_suite

pytestmark = pytest.mark.slow

SUITE = tiny_suite("summary", trials=2)


def test_resume_summarizes_a_cell_whose_trials_are_all_stored(suite_dir, isolated_cache):
    from qbench.results.store import ResultsStore

    suite = write_suite(suite_dir, SUITE)
    first = qbench("run", suite, "--db", "s.db", "--json", cwd=suite_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    run_id = json.loads(first.stdout)["run_id"]
    store = ResultsStore(suite_dir / "s.db")
    (cell,) = store.cells(run_id)
    stored = [(t["trial"], t["finished_at"]) for t in store.trials(cell["cell_id"])]
    # what the store holds when the run stopped between the last trial and the summary
    store.update_cell(cell["cell_id"], status="pending", latency_median_ms=None)
    store.finish_run(run_id, "interrupted", "2026-01-01T00:00:00+00:00")
    store.close()
    again = qbench("run", suite, "--db", "s.db", "--resume", run_id, "--json", cwd=suite_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    (done,) = json.loads(again.stdout)["cells"]
    assert done["status"] == "ok" and done["latency_ms"]["trials"] == 2
    store = ResultsStore(suite_dir / "s.db")
    assert [(t["trial"], t["finished_at"]) for t in store.trials(cell["cell_id"])] == stored  # none measured again
    assert store.cell(cell["cell_id"])["latency_median_ms"] is not None and store.run(run_id)["status"] == "complete"
