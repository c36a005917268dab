"""Run-over-run comparison with known answers: synthetic samples (seeded) and synthetic stores."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from qbench.errors import ExitCode, UsageError
from qbench.cli import report as commands
from qbench.report.compare import compare_runs, compare_samples, parse_threshold
from qbench.stats import FASTER, NO_CHANGE, SLOWER

from .synthetic import BASE, NEW, XSS_MODEL, add_cell, add_run, trial_samples


def run_samples(seed: int, median_ms: float = 2.0, *, tau: float = 0.01, sigma: float = 0.03,
                offsets: list[float] | None = None) -> dict[int, list[int]]:
    """3 trials x 100 iterations; `offsets` pins each trial's multiplicative offset (process placement)."""
    rng = np.random.default_rng(seed)
    out = trial_samples(rng, median_ms, trials=3, n=100, sigma=sigma, tau=tau)
    if offsets is not None:
        out = {t: [int(v * offsets[t]) for v in xs] for t, xs in out.items()}
    return out


# --------------------------------------------------------------------------- compare_samples (pure)


def test_identical_distributions_are_no_change():
    for seed in range(5):
        c = compare_samples(run_samples(seed), run_samples(100 + seed))
        assert c.verdict == NO_CHANGE, (seed, c)
        assert c.low < 1 < c.high or abs(c.ratio - 1) < 0.02
        assert c.method == "hierarchical"


def test_a_ten_percent_shift_is_found_both_ways():
    slow = compare_samples(run_samples(1), run_samples(2, 2.0 * 1.10))
    assert slow.verdict == SLOWER and slow.regression
    assert 1.07 < slow.ratio < 1.13 and slow.low > 1.05
    fast = compare_samples(run_samples(3), run_samples(4, 2.0 / 1.10))
    assert fast.verdict == FASTER and not fast.regression


def test_noise_at_the_threshold_does_not_trip_the_gate():
    # no real change, but one new-run process landed 5% slow (placement, a hot core): the
    # hierarchical CI widens with the trial spread instead of calling it a regression
    for seed in range(8):
        c = compare_samples(run_samples(seed, tau=0.0), run_samples(50 + seed, tau=0.0, offsets=[1.0, 1.0, 1.05]))
        assert c.verdict == NO_CHANGE, (seed, c)
    # trial-to-trial noise of the threshold's size on both sides
    for seed in range(8):
        c = compare_samples(run_samples(seed, tau=0.05), run_samples(200 + seed, tau=0.05))
        assert c.verdict != SLOWER, (seed, c)


def test_a_shift_of_exactly_the_threshold_is_not_a_regression():
    c = compare_samples(run_samples(11), run_samples(12, 2.0 * 1.05))
    assert c.verdict == NO_CHANGE and c.significant  # real, but not beyond the threshold
    assert c.low < 1.05 < c.high


def test_input_shapes_agree():
    base, new = run_samples(5), run_samples(6, 2.2)
    from_dict = compare_samples(base, new)
    pd = pytest.importorskip("pandas")
    frame = lambda d: pd.DataFrame([(t, v) for t, xs in d.items() for v in xs], columns=["trial", "latency_ns"])
    from_frame = compare_samples(frame(base), frame(new))
    flat = [v for xs in base.values() for v in xs], [v for xs in new.values() for v in xs]
    labels = [t for t, xs in base.items() for _ in xs], [t for t, xs in new.items() for _ in xs]
    from_arrays = compare_samples(*flat, trials_base=labels[0], trials_new=labels[1])
    assert from_dict == from_frame == from_arrays
    assert compare_samples(*flat).method == "flat"  # no trial labels: the plain bootstrap


# --------------------------------------------------------------------------- compare_runs on a store


@pytest.fixture(scope="module")
def result(nightly_db):
    return compare_runs(nightly_db, BASE, NEW)


def test_known_differences_are_found(result):
    verdicts = {c.key: c.verdict for c in result.cells}
    assert verdicts[("resnet18", "ptq_int8", "pixel8")] == SLOWER
    assert verdicts[("mobilenet_v3_small", "dynamic_int8", "host")] == FASTER
    assert verdicts[("resnet18", "dynamic_int8", "host")] == "failed in new run"
    unchanged = [k for k, v in verdicts.items() if k not in {("resnet18", "ptq_int8", "pixel8"),
                 ("mobilenet_v3_small", "dynamic_int8", "host"), ("resnet18", "dynamic_int8", "host")}]
    assert len(unchanged) == 14 and all(verdicts[k] == NO_CHANGE for k in unchanged)

    sqnr = result.cell("mobilenet_v3_small", "ptq_int8", "pixel8")
    assert [m.name for m in sqnr.flags] == ["sqnr_db"] and sqnr.flags[0].change == pytest.approx(3.5)
    assert {c.key for c in result.regressions} == {("resnet18", "ptq_int8", "pixel8"),
                                                    ("mobilenet_v3_small", "ptq_int8", "pixel8"),
                                                    ("resnet18", "dynamic_int8", "host")}
    assert [c.key for c in result.improvements] == [("mobilenet_v3_small", "dynamic_int8", "host")]


def test_unmatched_cells_are_listed(result):
    assert result.only_in_base == [(XSS_MODEL, "dynamic_int8", "pixel8")]
    assert result.only_in_new == [("mobilenet_v3_small", "qat_int8", "host")]
    assert len(result.cells) == 17
    text = result.to_text()
    assert f"only in base (1): {XSS_MODEL}/dynamic_int8@pixel8" in text
    assert "only in new (1): mobilenet_v3_small/qat_int8@host" in text
    assert "17 matched: 1 slower, 1 faster, 14 no significant change, 1 not compared; 3 regression(s)" in text


def test_frame_and_json(result):
    df = result.to_frame()
    assert len(df) == 17
    row = df[(df.model == "resnet18") & (df.recipe == "ptq_int8") & (df.device == "pixel8")].iloc[0]
    assert row.verdict == SLOWER and row.regression and row.ci_low > 1.05 and 0 <= row.p_value < 0.05
    assert {"ratio", "ci_low", "ci_high", "p_value", "sqnr_db_flagged", "pte_bytes_change"} <= set(df.columns)
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON
    assert doc["counts"]["regressions"] == 3 and doc["thresholds"]["latency"] == 0.05
    assert doc["only_in_new"] == [{"model": "mobilenet_v3_small", "recipe": "qat_int8", "device": "host"}]


def test_unknown_run_id_is_a_usage_error(nightly_db, tmp_path):
    with pytest.raises(UsageError, match=r"no run 'nope' in .*qbench results --runs"):
        compare_runs(nightly_db, BASE, "nope")
    with pytest.raises(UsageError, match="no results store"):
        compare_runs(tmp_path / "absent.db", BASE, NEW)
    assert not (tmp_path / "absent.db").exists()  # looking did not create an empty store


def test_size_memory_and_top1_thresholds(empty_store):
    """Growth beyond 5% and a top-1 drop beyond one point are flagged; smaller changes are not."""
    rng = np.random.default_rng(3)
    add_run(empty_store, "a", suite="smoke")
    add_run(empty_store, "b", suite="smoke-nightly")  # a different suite: warned, still compared
    common = dict(sqnr_db=30.0, arena_bytes=1000)
    add_cell(empty_store, "a", "m", "ptq_int8", "host", samples=trial_samples(rng, 1.0), pte_bytes=1_000_000,
             peak_rss_bytes=50_000_000, top1_agreement=0.99, **common)
    add_cell(empty_store, "b", "m", "ptq_int8", "host", samples=trial_samples(rng, 1.0), pte_bytes=1_100_000,
             peak_rss_bytes=51_000_000, top1_agreement=0.975, **common)
    r = compare_runs(empty_store.path, "a", "b")
    assert any("different suites" in w for w in r.warnings)
    c = r.cells[0]
    flags = {m.name: m for m in c.metrics}
    assert flags["pte_bytes"].flagged and flags["pte_bytes"].change == pytest.approx(0.10)
    assert not flags["peak_rss_bytes"].flagged  # +2%
    assert flags["top1_agreement"].flagged and flags["top1_agreement"].change == pytest.approx(0.015)
    assert not flags["sqnr_db"].flagged and not flags["arena_bytes"].flagged
    assert c.verdict == NO_CHANGE and c.is_regression
    assert any(".pte size" in x for x in c.reasons())
    # looser thresholds turn the flags off
    assert compare_runs(empty_store.path, "a", "b", growth=0.2, top1_drop=0.02).regressions == []


def test_parse_threshold():
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold(" 2.5 % ") == pytest.approx(0.025)
    assert parse_threshold("0.05") == pytest.approx(0.05)
    assert parse_threshold("5") == pytest.approx(0.05)
    for bad in ("five", "150%", "-1%"):
        with pytest.raises(UsageError):
            parse_threshold(bad)


def test_commands_are_ready_for_the_cli(nightly_db, capsys):
    parser = argparse.ArgumentParser(prog="qbench")
    commands.add_parsers(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["compare", BASE, NEW, "--db", str(nightly_db), "--threshold", "5%", "--json"])
    assert commands.COMMANDS["compare"](args) == ExitCode.OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["slower"] == 1

    args = parser.parse_args(["compare", BASE, NEW, "--db", str(nightly_db), "--fail-on-regression"])
    assert commands.COMMANDS["compare"](args) == ExitCode.REGRESSION
    assert "resnet18" in capsys.readouterr().out
