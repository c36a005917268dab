"""Samples packed one blob per trial: lossless and in order, a fraction of the row layout's size, read
by one function; each trial's summary written with it; load_samples a compact frame, optionally for
chosen cells; a bootstrap over a trial's sketch agrees with one over its samples."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qbench.results
from qbench.results import packing
from qbench.results.store import ResultsStore
from qbench.stats import compare, median_ci

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("values", [[], [5], [3, 1, 2**40, 7], list(range(-1000, 1000, 7)),
                                    np.random.default_rng(0).integers(-2**62, 2**62, 999).tolist()])
def test_pack_round_trips_exactly_in_order(values):
    out = packing.unpack(packing.pack(values))
    assert out.dtype == np.int64 and out.tolist() == list(values)


def test_a_trial_of_latencies_packs_to_a_few_bytes_a_sample():
    rng = np.random.default_rng(1)
    us = (5_000 + rng.gamma(2, 200, 10_000)).astype(np.int64)  # a 5 µs model
    ms = (3_000_000 + rng.gamma(2, 30_000, 10_000)).astype(np.int64)  # a 3 ms model
    # ~10 bits of noise a sample in each (real trials pack smaller: docs/history-and-retention.md); rows: ~20 B each
    assert len(packing.pack(us)) < 2.0 * us.size and len(packing.pack(ms)) < 3.0 * ms.size
    with pytest.raises(packing.DamagedBlob, match="not a qbench sample blob"):
        packing.unpack(b"nonsense-blob-bytes!")


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    return tmp_path / "q.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def _store_with_cells(target):
    store = ResultsStore(target)
    store.create_run(run_id="r1", suite="s", status="complete", started_at="2026-01-01T00:00:00+00:00")
    rng = np.random.default_rng(2)
    ids = {}
    for recipe in ("fp32", "int8"):
        cid = ids[recipe] = store.ensure_cell("r1", "m", recipe, recipe, "host")
        for trial in range(2):
            ns = (1e6 + rng.gamma(2, 1e4, 5000)).astype(np.int64)
            store.add_trial(cid, trial, ns, thread_cpu_ns=ns - 100, runner="native", disturbed=int(trial == 1))
    return store, ids


def test_a_trial_lands_as_one_blob_with_its_summary(target):
    store, ids = _store_with_cells(target)
    cid = ids["fp32"]
    rows = store.db.execute("SELECT trial, latency_ns FROM trial_samples WHERE cell_id=? ORDER BY trial", (cid,)).fetchall()
    assert len(rows) == 2
    raw = {t: packing.unpack(b) for t, b in rows}
    assert {t: a.tolist() for t, a in store.sample_arrays(cid).items()} == {t: a.tolist() for t, a in raw.items()}
    trial = store.trials(cid)[0]
    assert trial["sample_count"] == 5000 and trial["median_ns"] == float(np.median(raw[0]))
    assert packing.unpack(trial["sketch"]).tolist() == packing.sketch(raw[0]).tolist()
    assert list(store.used_summaries(cid)) == [0]  # trial 1 was disturbed
    store.close()


def test_load_samples_is_compact_and_can_pick_cells(target):
    store, ids = _store_with_cells(target)
    store.close()
    df = qbench.results.load_samples(target, "r1")
    assert len(df) == 20_000
    for col in ("run_id", "model", "recipe", "device", "sweep"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype)
    assert df["disturbed"].dtype == bool and df["disturbed"].sum() == 10_000
    assert df["iteration"].iloc[:3].tolist() == [0, 1, 2] and (df["thread_cpu_ms"] < df["latency_ms"]).all()
    one = qbench.results.load_samples(target, "r1", cells=["m/int8@host"])
    assert set(one["recipe"]) == {"int8"} and len(one) == 10_000
    assert len(qbench.results.load_samples(target, "r1", cells=[("m", "fp32", "host")])) == 10_000
    assert df.memory_usage(deep=True).sum() < 0.6 * df.astype({c: object for c in ("run_id", "model", "recipe",
                                                                                    "device", "sweep")}
                                                               ).memory_usage(deep=True).sum()


def test_only_the_reader_touches_the_sample_tables():
    """Every reader (bootstrap, percentiles, plots, load_samples, compare, trend, MLflow) goes through
    qbench/results/samples.py; only the store writes, migrations convert, retention deletes."""
    allowed = {"qbench/results/samples.py", "qbench/results/store.py", "qbench/results/migrations.py",
               "qbench/results/retention.py"}
    pattern = re.compile(r"\b(FROM|JOIN|INTO)\s+(trial_samples|samples)\b")
    hits = {str(p.relative_to(REPO)) for p in (REPO / "qbench").rglob("*.py") if pattern.search(p.read_text())}
    assert hits <= allowed, hits - allowed


def test_a_bootstrap_over_sketches_matches_one_over_the_samples():
    rng = np.random.default_rng(3)
    trials = [(3e6 * (1 + 0.02 * k) + rng.gamma(2, 3e4, 10_000)).astype(np.int64) for k in range(3)]
    x, labels = np.concatenate(trials), np.repeat([0, 1, 2], 10_000)
    sketches = [packing.sketch(t) for t in trials]
    xs, ls = np.concatenate(sketches), np.repeat([0, 1, 2], [s.size for s in sketches])
    sizes = {0: 10_000, 1: 10_000, 2: 10_000}
    # weight 1 (a sketch that is the whole trial) is the unweighted bootstrap, draw for draw
    assert median_ci(x, trials=labels, trial_sizes=sizes) == median_ci(x, trials=labels)
    full = [median_ci(x, trials=labels, seed=s)[1:] for s in range(5)]
    sk = [median_ci(xs, trials=ls, trial_sizes=sizes, seed=s)[1:] for s in range(5)]
    spread = np.ptp(np.array(full), axis=0)  # bootstrap noise between seeds
    assert np.all(np.abs(np.mean(full, axis=0) - np.mean(sk, axis=0)) < spread + 1e-9 * x.mean())
    new = [t * 1.08 for t in trials]
    exact = compare(x, np.concatenate(new), trials_base=labels, trials_new=labels)
    approx = compare(xs, np.concatenate([packing.sketch(t) for t in new]), trials_base=ls, trials_new=ls,
                     sizes_base=sizes, sizes_new=sizes, medians=(np.median(x), np.median(np.concatenate(new))))
    assert approx.ratio == exact.ratio and approx.verdict == exact.verdict == "slower"
    assert approx.low == pytest.approx(exact.low, rel=2e-3) and approx.high == pytest.approx(exact.high, rel=2e-3)
    assert approx.n_base == 30_000
