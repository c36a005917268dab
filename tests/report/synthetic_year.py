"""A year of nightly runs (or a few weeks of them), written through the real ResultsStore API.

Every cell is drawn from the same lognormal around a fixed median, except the injected changes:
    REGRESSED cell    15% slower from run REGRESSION_AT on
    IMPROVED cell     12% faster from run IMPROVEMENT_AT on
The model list includes a hostile name (synthetic.XSS_MODEL). Samples are few per trial (the trend
does not need many) so a year is written in seconds; synchronous=OFF because it is a scratch file.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from qbench.results.store import ResultsStore
from qbench.stats import summary_stats

from .synthetic import DEVICE_INFO, RECIPES, SETTINGS, XSS_MODEL

SUITE = "nightly"
MODELS_8 = ["mobilenet_v3_small", "resnet18", "efficientnet_b0", "mobilevit_xs", "squeezenet1_1", "regnet_x_400mf",
            "shufflenet_v2", XSS_MODEL]
RECIPES_4 = ["fp32", "ptq_int8", "dynamic_int8", "qat_int8"]
DEVICES = ["host", "pixel8"]
REGRESSED = ("resnet18", "ptq_int8", "pixel8")
IMPROVED = ("mobilenet_v3_small", "dynamic_int8", "host")
START = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)


def run_id(i: int) -> str:
    return (START + timedelta(days=i)).strftime("%Y%m%d-030000-") + f"n{i:03d}"


def build_year_db(path, *, runs: int = 365, models: list[str] = MODELS_8, recipes: list[str] = RECIPES_4,
                  devices: list[str] = DEVICES, trials: int = 3, samples: int = 15,
                  regression_at: int | None = None, improvement_at: int | None = None, seed: int = 11) -> dict:
    """runs × models × recipes × devices cells; returns {"run_ids", "regression_at", "improvement_at"}."""
    regression_at = runs * 2 // 3 if regression_at is None else regression_at
    improvement_at = runs // 3 if improvement_at is None else improvement_at
    rng = np.random.default_rng(seed)
    base = {m: 2.0 + 3.0 * i for i, m in enumerate(models)}
    store = ResultsStore(path)
    if not str(path).startswith("postgresql://"):
        store.db.execute("PRAGMA synchronous=OFF")
    ids = []
    try:
        for i in range(runs):
            rid = run_id(i)
            ids.append(rid)
            when = START + timedelta(days=i)
            store.create_run(run_id=rid, suite=SUITE, status="complete", started_at=when.isoformat(),
                             qbench_version="0.1.0", torch_version="2.14.1", executorch_version="1.5.1",
                             torchao_version="0.18.0", git_sha=f"{rng.integers(16**12):012x}",
                             host={"hostname": "ci-runner-2"}, settings=SETTINGS, devices=devices)
            for m in models:
                for r in recipes:
                    kind, speedup, sqnr, top1, size = RECIPES[r]
                    for d in devices:
                        median = base[m] * (1.6 if d == "pixel8" else 1.0) / speedup
                        if (m, r, d) == REGRESSED and i >= regression_at:
                            median *= 1.15
                        if (m, r, d) == IMPROVED and i >= improvement_at:
                            median *= 0.88
                        cid = store.ensure_cell(rid, m, r, kind, d)
                        pooled = []
                        for t in range(trials):
                            ns = median * 1e6 * np.exp(rng.normal(0, 0.01) + rng.normal(0, 0.03, samples))
                            pooled.append(ns.astype(np.int64))
                            store.add_trial(cid, t, pooled[-1].tolist(), runner="native", threads=4,
                                            iterations=samples, wall_s=1.0)
                        # the cell's median as the pipeline stores it: of its samples (what trend reads)
                        measured = summary_stats(np.concatenate(pooled))["median"]
                        store.update_cell(cid, status="ok", latency_median_ms=measured, pte_bytes=int(1e6 * size),
                                          sqnr_db=sqnr, top1_agreement=top1, threads=4, runner="native",
                                          device_info=DEVICE_INFO[d], trials=trials)
            store.finish_run(rid, "complete", (when + timedelta(minutes=40)).isoformat())
    finally:
        store.close()
    return {"run_ids": ids, "regression_at": regression_at, "improvement_at": improvement_at}
