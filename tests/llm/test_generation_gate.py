"""The nightly gate on a text-generation cell: its samples are decode steps, so a slower decode is a
latency regression, and the gate says it in decode tokens/s. Two runs written through the real
store, compared by the real `qbench compare` (no model runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qbench.cli import main
from qbench.results.store import ResultsStore
from tests.report.synthetic import add_cell, add_run, trial_samples

GEN_EXTRA = {"generation": {"decode_ms_per_token": {"median": 1.0, "p90": 1.1}, "prompt_tokens": 32,
                            "new_tokens": 32, "cache": "static cache, mutable buffers"}}


@pytest.fixture
def runs(tmp_path):
    """base: 2.0 ms per token; same: drawn alike; slower: 2.4 ms per token (500 → 417 tokens/s)."""
    rng = np.random.default_rng(3)
    db = tmp_path / "qbench.db"
    store = ResultsStore(db)
    for run_id, ms in (("base", 2.0), ("same", 2.0), ("slower", 2.4)):
        add_run(store, run_id, suite="llm")
        add_cell(store, run_id, "tiny_llama", "8da4w", "host", recipe_kind="int4-weight",
                 samples=trial_samples(rng, ms, n=64), extra=GEN_EXTRA)
    store.close()
    return db


def gate(capsys, db, base, new) -> tuple[int, dict]:
    code = main(["compare", base, new, "--db", str(db), "--json", "--fail-on-regression"])
    return code, json.loads(capsys.readouterr().out)


def test_a_slower_decode_fails_the_gate_in_tokens_per_second(runs, capsys):
    code, doc = gate(capsys, runs, "base", "slower")
    assert code == 3
    cell = doc["cells"][0]
    assert cell["regression"] is True
    rates = cell["decode_tokens_per_s"]
    assert rates["base"] == pytest.approx(500, rel=0.03) and rates["new"] == pytest.approx(417, rel=0.03)
    assert cell["reasons"][0].startswith("decode tokens/s ")
    assert "beyond +5%" in cell["reasons"][0]


def test_the_same_decode_speed_passes(runs, capsys):
    code, doc = gate(capsys, runs, "base", "same")
    assert code == 0 and doc["cells"][0]["regression"] is False


def test_trend_gives_decode_tokens_per_second(runs):
    from qbench.results.cell_trends import trend

    df = trend(runs, "llm").set_index("run_id")
    assert df.loc["base", "decode_tokens_per_s"] == pytest.approx(500, rel=0.03)
    assert df.loc["slower", "decode_tokens_per_s"] == pytest.approx(417, rel=0.03)
    assert bool(df.loc["slower", "change_point"]) and df.loc["slower", "verdict"] == "slower"
