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
    from qbench.report.views import cell_views

    keep = ("recipe", "device", "status", "speedup_vs_fp32", "pte_bytes", "sqnr_db", "cosine_similarity",
            "top1_agreement", "error")
    out = []
    for view, row in zip(cell_views(store, run_id), store.cells(run_id)):
        cell = {k: view.get(k) for k in keep}
        cell["latency_median_ms"] = (view.get("latency_ms") or {}).get("median")
        cell["latency_cv"] = (view.get("latency_ms") or {}).get("cv")
        cell["cosine_similarity"] = row["cosine_similarity"]
        cell["accuracy_metric"] = row["accuracy_metric"]
        cell["accuracy_top1"] = row["accuracy_top1"]
        out.append(cell)
    return out
