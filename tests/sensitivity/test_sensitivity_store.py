"""The per-layer table on both store backends: a store from before `metric_if_only_quantized` and
`method` gains them on open; rows written with them read back through qbench.results.load_layers."""

from __future__ import annotations

import pytest

import qbench.results
from qbench.results.store import ResultsStore


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "qbench.db"
    return request.getfixturevalue("pg_url")


def test_an_older_layer_table_gains_the_new_columns_and_they_read_back(target):
    store = ResultsStore(target)
    for column in ("metric_if_only_quantized", "method"):  # a store written before they existed
        store.db.execute(f"ALTER TABLE layer_sensitivity DROP COLUMN {column}")
    store.db.execute("DELETE FROM qbench_migrations WHERE name='0004_sensitivity_methods'")  # nor the migration
    store.close()

    store = ResultsStore(target)
    assert {"metric_if_only_quantized", "method"} <= store.backend.columns("layer_sensitivity")
    store.create_run(run_id="r1", suite="s", status="complete", started_at="2026-01-01T00:00:00+00:00")
    rows = [{"position": i, "module": m, "op": "linear", "sqnr_db": 20.0 + i, "target": "sqnr>=30",
             "metric_name": "sqnr_db", "metric_if_fp32": fp32, "metric_if_only_quantized": alone,
             "method": "both", "sensitivity_rank": i + 1, "kept_fp32": int(i == 0)}
            for i, (m, fp32, alone) in enumerate([("spiky", 44.9, 18.5), ("head", 18.5, None)])]
    store.replace_layers("r1", "badnet", "int8", rows)
    store.close()

    df = qbench.results.load_layers(target, "r1")
    assert list(df["module"]) == ["spiky", "head"] and list(df["method"]) == ["both", "both"]
    assert df["metric_if_only_quantized"].iloc[0] == 18.5 and df["metric_if_only_quantized"].isna().iloc[1]
    assert list(df["kept_fp32"]) == [True, False]
