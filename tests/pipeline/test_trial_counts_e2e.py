"""A real run whose precision cannot be met (issue 24): every cell gets more trials by default up to the
bound, says `imprecise` (or `disturbed` when a busy machine really disturbed it), and the piped
progress counts each extra trial as a step of its own: `[done/total]` never runs past its total."""

from __future__ import annotations

import re

import pytest

from tests.helpers import FP32, REPO, qbench, tiny_suite, write_suite

pytestmark = pytest.mark.slow

# no max_trials: the default bound is what the test is about
SUITE = tiny_suite("counts", recipes=(FP32, "{name: int8-dynamic, kind: dynamic}"),
                   settings={"max_trials": None, "timeout_seconds": None},
                   benchmark='precision: "0.01%", quiet_start: {max_wait_s: 0}')


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("counts")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    suite = write_suite(root, SUITE)
    proc = qbench("run", suite, "--db", root / "q.db", "--reports-dir", root / "reports", timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from qbench.report.views import cell_views
    from qbench.results.store import ResultsStore

    store = ResultsStore(root / "q.db")
    [run] = store.db.execute("SELECT run_id FROM runs").fetchall()
    return {"proc": proc, "cells": cell_views(store, run[0])}


def test_an_unmeetable_precision_runs_every_cell_to_the_default_bound(piped):
    for c in piped["cells"]:
        s = c["stability"]
        assert s["trials_measured"] == 3  # no max_trials: 3 × trials
        assert s["verdict"] == ("imprecise" if s["trials_clean"] >= 1 else "disturbed"), s
        assert c["latency_ms"]["trials"] == s["trials_used"] == (s["trials_clean"] or 3)
        assert "wider than ±0.01%" in s["reason"] and "3 trials" in s["reason"]


def test_the_piped_counter_never_passes_its_total(piped):
    steps = [tuple(map(int, m.groups())) for m in re.finditer(r"^\[(\d+)/(\d+)\]", piped["proc"].stderr, re.M)]
    assert steps, piped["proc"].stderr
    assert all(done <= total for done, total in steps), steps
    # 2 artifacts + 1 planned trial a cell, then 2 extra trials a cell joined the plan as they ran
    assert steps[-1] == (8, 8), steps


def test_cell_lines_and_the_closing_note_tell_imprecise_from_disturbed(piped):
    err, out = piped["proc"].stderr, piped["proc"].stdout
    for c in piped["cells"]:
        verdict = c["stability"]["verdict"]
        assert re.search(rf"\[ok\] tiny_mlp/{c['recipe']}@host · .* · 3 trials(,| \().* · {verdict}$", err, re.M), err
    imprecise = sum(c["stability"]["verdict"] == "imprecise" for c in piped["cells"])
    if imprecise:
        assert f"{imprecise} imprecise cell(s): no trial was measured as disturbed" in out, out
    assert "noisy" not in out + err
