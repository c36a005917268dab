"""`qbench sensitivity --measure`: the fp32, the full int8 and the suggested mixed recipe of one model,
run as an ordinary suite (same pipeline, same store, same run as the per-layer rows), so the cost of
the fix is measured on the suite's devices: latency, .pte size, and the SQNR of the real program."""

from __future__ import annotations

from qbench.sensitivity.analysis import mixed_name


def measured_suite(checked, model_spec, recipe, skip: list[str], devices: list[str] | None = None):
    """A CheckedSuite with only this model and the recipes fp32, `recipe` and (when `skip` is not
    empty) `<recipe>-mixed`."""
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import LoadedSuite
    from qbench.suite.schema import RecipeSpec

    fp32 = next((r.spec for r in checked.recipes if r.recipe.baseline), None) or RecipeSpec(name="fp32", kind="fp32")
    recipes = [fp32, recipe.spec]
    if skip:
        options = recipe.spec.options()
        base_skip = dict(options.get("skip") or {})
        base_skip["modules"] = list(dict.fromkeys([*base_skip.get("modules", []), *skip]))
        recipes.append(RecipeSpec.model_validate({**options, "name": mixed_name(recipe), "kind": recipe.kind,
                                                  "skip": base_skip}))
    suite = checked.suite.model_copy(update={"models": [model_spec], "recipes": recipes,
                                             "devices": list(checked.device_names)})
    loaded = LoadedSuite(suite=suite, path=checked.loaded.path, root=checked.loaded.root)
    return check_suite(loaded, devices=devices, preflight=False)


def measured_cells(store, run_id: str) -> list[dict]:
    """What the fix costs: per cell, latency median, .pte size and the program's own numerics."""
    rows = store.cells(run_id)
    fp32 = {_point(r): r["latency_median_ms"] for r in rows if r["recipe_kind"] == "fp32" and r["status"] == "ok"}
    return [_measured(r, fp32.get(_point(r))) for r in rows]


def _point(row) -> tuple:
    """Where a speedup over fp32 is taken, as the reports take it: same model, device and sweep point."""
    return row["model"], row["device"], (row["sweep"] if "sweep" in row.keys() else None) or ""


def _measured(row, fp32_median: float | None) -> dict:
    median = row["latency_median_ms"]
    error = None
    if row["status"] == "failed":
        error = f"{row['stage']}: {row['error']}" if row["stage"] else row["error"]
    return {"recipe": row["recipe"], "device": row["device"],
            "status": row["status"] if row["status"] != "pending" else "not measured",
            "speedup_vs_fp32": fp32_median / median if fp32_median and median else None,
            "pte_bytes": row["pte_bytes"], "sqnr_db": row["sqnr_db"], "cosine_similarity": row["cosine_similarity"],
            "top1_agreement": row["top1_agreement"], "error": error, "latency_median_ms": median,
            "latency_cv": None if median is None else row["latency_cv"],
            "accuracy_metric": row["accuracy_metric"], "accuracy_top1": row["accuracy_top1"]}
