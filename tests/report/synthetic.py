"""Synthetic results stores, written through the real ResultsStore API (no models run).

`nightly_db` holds two runs of a `mobile` suite with known differences, so the comparison, the HTML
report and the nightly outputs all have known answers:

    resnet18 / ptq_int8 / pixel8              10% slower in the new run
    mobilenet_v3_small / dynamic_int8 / host  12% faster
    mobilenet_v3_small / ptq_int8 / pixel8    SQNR 30 -> 26.5 dB (accuracy drop)
    resnet18 / dynamic_int8 / host            ok in base, failed in new (error text with HTML + ANSI)
    <img src=x onerror=alert(1)> / dynamic_int8 / pixel8   only in base
    mobilenet_v3_small / qat_int8 / host      only in new
Everything else is drawn from the same distribution in both runs.
"""

from __future__ import annotations

import numpy as np

from qbench.results.metrics import from_latency
from qbench.results.store import ResultsStore
from qbench.stats import summary_stats

XSS_MODEL = "<img src=x onerror=alert(1)>"
FAIL_ERROR = "<script>alert('x')</script> lowering failed\n\x1b[31mTraceback (most recent call last):\x1b[0m\n  ..."
BASE, NEW = "20251126-030000-base", "20251127-030000-new"

DEVICE_INFO = {
    "host": {"name": "host", "transport": "local", "model": "ThinkPad X1 Carbon", "soc": "Intel Core i7-1185G7",
             "os": "Debian GNU/Linux 12", "abi": "x86_64", "cores": 8, "governor": "performance",
             "ram_bytes": 16 * 2**30},
    "pixel8": {"name": "pixel8", "transport": "adb", "model": "Pixel 8", "soc": "Google Tensor G3",
               "os": "Android 14 (API 34)", "abi": "arm64-v8a", "cores": 9, "governor": "schedutil",
               "ram_bytes": 8 * 2**30},
}
SETTINGS = {"warmup": 10, "warmup_seconds": 0.5, "iterations": 50, "min_seconds": 1.0, "trials": 3, "threads": 4,
            "affinity": None, "runner": "native", "cooldown": {"max_temp_c": 45, "max_wait_s": 60},
            "profile_ops": True}
# model -> fp32 median ms per device; recipe -> (kind, speedup over fp32, SQNR dB, top-1 agreement, size factor)
MODELS = {"mobilenet_v3_small": {"host": 3.2, "pixel8": 5.1}, "resnet18": {"host": 18.0, "pixel8": 27.0},
          XSS_MODEL: {"host": 0.8, "pixel8": 1.2}}
PTE_BYTES = {"mobilenet_v3_small": 10_200_000, "resnet18": 46_800_000, XSS_MODEL: 600_000}
RECIPES = {"fp32": ("fp32", 1.0, 999.0, 1.0, 1.0), "ptq_int8": ("ptq", 2.6, 30.0, 0.985, 0.27),
           "dynamic_int8": ("dynamic", 1.35, 36.0, 0.995, 0.3), "qat_int8": ("qat", 2.6, 33.0, 0.99, 0.27)}


def trial_samples(rng: np.random.Generator, median_ms: float, *, trials: int = 3, n: int = 60,
                  sigma: float = 0.03, tau: float = 0.01) -> dict[int, list[int]]:
    """Lognormal iterations (ns) around median_ms, with a per-trial offset (process placement)."""
    out = {}
    for t in range(trials):
        offset = rng.normal(0.0, tau)
        out[t] = [int(v) for v in median_ms * 1e6 * np.exp(offset + rng.normal(0.0, sigma, n))]
    return out


def add_run(store: ResultsStore, run_id: str, *, suite: str = "mobile", started_at: str = "2025-11-27T03:00:00+00:00",
            git_sha: str = "3f2c1e9a7b5d", status: str = "complete") -> None:
    store.create_run(run_id=run_id, suite=suite, status=status, started_at=started_at,
                     ended_at=started_at.replace("03:00", "03:41"), qbench_version="0.1.0", torch_version="2.14.1",
                     executorch_version="1.5.1", torchao_version="0.18.0", git_sha=git_sha,
                     host={"hostname": "ci-runner-2"}, settings=SETTINGS, devices=sorted(DEVICE_INFO))


def add_cell(store: ResultsStore, run_id: str, model: str, recipe: str, device: str, *,
             samples: dict[int, list[int]] | None = None, recipe_kind: str | None = None,
             stage: str | None = None, error: str | None = None, ops: list[dict] | None = None, **fields) -> int:
    """A cell as the pipeline leaves it: trials with raw samples, then summary figures from them."""
    cid = store.ensure_cell(run_id, model, recipe, recipe_kind or RECIPES.get(recipe, (recipe,))[0], device)
    for trial, ns in (samples or {}).items():
        store.add_trial(cid, trial, ns, runner="native", threads=4, load_ms=fields.get("load_ms"),
                        first_inference_ms=fields.get("first_inference_ms"), iterations=len(ns), wall_s=1.5)
    if error is not None:
        store.update_cell(cid, status="failed", stage=stage, error=error, **fields)
        return cid
    if samples:
        s = summary_stats([v for ns in samples.values() for v in ns])
        fields.update(from_latency(s), trials=len(samples), status="ok")  # the registry's latency columns
    store.update_cell(cid, **fields)
    if ops:
        store.replace_ops(cid, ops)
    return cid


def _ops(model: str) -> list[dict]:
    rows = [("Convolution (NHWC, QC8) IGEMM", "delegate", "XnnpackBackend", 0.46),
            ("Fully Connected (NC, QD8, F32, QC8W)", "delegate", "XnnpackBackend", 0.18),
            ("Convolution (NHWC, QC8) DWConv", "delegate", "XnnpackBackend", 0.14),
            ("Add (ND, QS8)", "delegate", "XnnpackBackend", 0.08),
            ("native_call_aten.hardswish.out", "operator", None, 0.07),
            ("Global Average Pooling (NWC, QS8)", "delegate", "XnnpackBackend", 0.04),
            ("quantized_decomposed.quantize_per_tensor.out", "operator", None, 0.03)]
    total = MODELS[model]["pixel8"] / 2.6
    return [{"name": n, "kind": k, "delegate": d, "count": 3, "total_ms": total * s, "median_ms": total * s / 3,
             "share": s} for n, k, d, s in rows]


def build_nightly_db(path) -> dict:
    """The two-run scenario described in the module docstring; returns the run ids."""
    rng = np.random.default_rng(7)
    store = ResultsStore(path)
    add_run(store, BASE, started_at="2025-11-26T03:00:00+00:00", git_sha="1a2b3c4d5e6f")
    add_run(store, NEW, started_at="2025-11-27T03:00:00+00:00", git_sha="3f2c1e9a7b5d")
    for run in (BASE, NEW):
        for model, medians in MODELS.items():
            for recipe in ("fp32", "ptq_int8", "dynamic_int8", "qat_int8"):
                for device in ("host", "pixel8"):
                    key = (model, recipe, device)
                    if recipe == "qat_int8" and (run, model, device) != (NEW, "mobilenet_v3_small", "host"):
                        continue
                    if run == NEW and key == (XSS_MODEL, "dynamic_int8", "pixel8"):
                        continue  # only in base
                    kind, speedup, sqnr, top1, size = RECIPES[recipe]
                    median = medians[device] / speedup
                    median *= {(NEW, "resnet18", "ptq_int8", "pixel8"): 1.10,
                               (NEW, "mobilenet_v3_small", "dynamic_int8", "host"): 0.88}.get((run, *key), 1.0)
                    if run == NEW and key == ("mobilenet_v3_small", "ptq_int8", "pixel8"):
                        sqnr = 26.5
                    fields = dict(
                        pte_bytes=int(PTE_BYTES[model] * size), arena_bytes=int(PTE_BYTES[model] * size * 0.4),
                        peak_rss_bytes=int(40e6 + PTE_BYTES[model] * size * 1.6), sqnr_db=sqnr,
                        max_abs_error=0.0 if recipe == "fp32" else 0.04, cosine_similarity=0.999,
                        top1_agreement=top1, delegated_ops=52 if recipe != "dynamic_int8" else 40, total_ops=54,
                        delegation={"not_delegated_by_op": {"aten.hardswish.default": 2}},
                        load_ms=12.0 + median, method_init_ms=4.0, first_inference_ms=median * 2.2,
                        runner="native", threads=4, device_info=DEVICE_INFO[device],
                        quantize_s=3.0, export_s=5.0,
                    )
                    if device == "pixel8" and run == NEW:
                        fields["extra"] = {"power": {"source": "android_rails", "measured": True,
                                                     "energy_per_inference_mj": median * 2.1,
                                                     "uncertainty_per_inference_mj": median * 0.08}}
                    elif device == "host":
                        fields["extra"] = {"power": {"source": "rapl", "measured": False,
                                                     "reason": "RAPL counters not readable (needs root)"}}
                    if run == NEW and key == ("resnet18", "dynamic_int8", "host"):
                        add_cell(store, run, *key, stage="export", error=FAIL_ERROR, device_info=DEVICE_INFO[device])
                        continue
                    ops = _ops(model) if (run == NEW and device == "pixel8" and recipe == "ptq_int8"
                                          and model != XSS_MODEL) else None
                    add_cell(store, run, *key, samples=trial_samples(rng, median), ops=ops, **fields)
    store.finish_run(BASE, "complete", "2025-11-26T03:41:00+00:00")
    store.finish_run(NEW, "complete", "2025-11-27T03:41:00+00:00")
    store.close()
    return {"base": BASE, "new": NEW}
