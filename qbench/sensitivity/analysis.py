"""Sensitivity of one cell (model × recipe): which layer, kept fp32, recovers the metric; and the
greedy mixed-precision `skip:` that meets a target.

Every variant is the PT2E graph quantized by the suite's own recipe with extra `skip:` modules and
evaluated in PyTorch (the converted graph, not a lowered .pte): fast enough to try one variant per
layer. `--measure` then lowers and runs the chosen recipe for real (measure.py), which also checks
the prediction against the XNNPACK kernels.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

from qbench.errors import UsageError
from qbench.sensitivity.target import Target

# Recipes whose graph is a PT2E graph (what the numeric debugger reads) and that quantize without
# training (QAT would train once per variant).
SUPPORTED_KINDS = ("ptq", "dynamic")


@dataclass
class CellUnderTest:
    """Everything one sensitivity analysis needs, built once."""

    model_spec: object
    recipe: object  # ResolvedRecipe
    model: object  # the fp32 eager model
    graph: object  # torch.export(model).module(): every variant starts from a copy of it
    data: object  # InputData: calibration, held_out, evaluation
    metric: Callable | None
    classifier: bool
    references: list = field(default_factory=list)  # fp32 headline outputs on data.held_out
    fp32_accuracy: float | None = None
    variants: int = 0  # how many quantized variants were built
    seconds: float = 0.0


def find_cell(checked, model: str, recipe: str):
    """The suite's model and recipe by name, or a usage error listing the choices."""
    models = {m.name: m for m in checked.suite.models}
    recipes = {r.name: r for r in checked.recipes}
    if model not in models:
        raise UsageError(f"{checked.loaded.path}: no model {model!r}; choose one of: {', '.join(models)}")
    if recipe not in recipes:
        raise UsageError(f"{checked.loaded.path}: no recipe {recipe!r}; choose one of: {', '.join(recipes)}")
    chosen = recipes[recipe]
    if chosen.kind not in SUPPORTED_KINDS:
        usable = [r.name for r in checked.recipes if r.kind in SUPPORTED_KINDS] or ["none in this suite"]
        raise UsageError(f"recipe {recipe!r} is kind {chosen.kind}; sensitivity needs a post-training PT2E recipe "
                         f"(kind {' or '.join(SUPPORTED_KINDS)}): {', '.join(usable)}")
    return models[model], chosen


def open_cell(checked, model_spec, recipe, target: Target, progress=lambda text: None) -> CellUnderTest:
    import torch

    from qbench.collectors.numerics import first_output, looks_like_classifier
    from qbench.inputs import example_inputs
    from qbench.models.loading import build_model
    from qbench.quantize.calibration import load_dataset_data, load_input_data

    dataset = checked.dataset_for(model_spec)
    if target.needs_dataset and dataset is None:
        raise UsageError(f"--target {target.text!r} needs a task metric, and model {model_spec.name!r} has no "
                         "`dataset:` in the suite; use e.g. --target 'sqnr>=30'")
    progress("build model")
    model = build_model(model_spec)
    example = example_inputs(model_spec.inputs)
    progress("data")
    if dataset is not None:
        data = load_dataset_data(dataset, model_spec, checked.suite.numerics, ("eval", "calibration"))
    else:
        calibration = model_spec.calibration or checked.suite.calibration
        data = load_input_data(calibration, model_spec.inputs, checked.suite.numerics)
    data.example, data.progress = example, progress
    metric = None
    if model_spec.metric:
        from qbench.user_code import load_callable

        metric = load_callable(model_spec.metric.removeprefix("python:"))
    progress("export")
    graph = torch.export.export(copy.deepcopy(model), example).module()
    with torch.no_grad():
        refs = [first_output(model(*b)) for b in data.held_out]
    task = model_spec.task
    cell = CellUnderTest(model_spec, recipe, model, graph, data, metric,
                         classifier=task == "classifier" or (task == "auto" and looks_like_classifier(refs[0])),
                         references=refs)
    if target.needs_dataset:
        progress("fp32 accuracy")
        cell.fp32_accuracy = _task_metric(cell, lambda b: model(*b))
    return cell


def options_with_skip(recipe, modules: list[str]):
    """The recipe's options with `modules` added to its `skip:` (the suite's own skips stay)."""
    skip = recipe.options.skip
    merged = list(dict.fromkeys([*skip.modules, *modules]))
    return recipe.options.model_copy(update={"skip": skip.model_copy(update={"modules": merged})})


def quantize(cell: CellUnderTest, keep_fp32: list[str]):
    t0 = time.perf_counter()
    graph = copy.deepcopy(cell.graph)  # the variant keeps the graph's node sources (the debugger's keys)
    out, _record = cell.recipe.recipe.apply(graph, options_with_skip(cell.recipe, keep_fp32), cell.data, cell.model)
    cell.variants += 1
    cell.seconds += time.perf_counter() - t0
    return out


def evaluate(cell: CellUnderTest, quantized, target: Target) -> dict:
    """End-to-end figures of a quantized graph: SQNR, cosine and max error of the headline output
    against fp32 on the held-out inputs; with a dataset target, the task metric and its drop."""
    import torch

    from qbench.collectors.numerics import compare_outputs, first_output

    with torch.no_grad():
        outs = [first_output(quantized(*b)) for b in cell.data.held_out]
    c = compare_outputs(cell.references, outs, cell.classifier)
    result = {"sqnr_db": _json_number(c["sqnr_db"]), "cosine": c["cosine_similarity"],
              "max_abs_error": c["max_abs_error"]}
    if c.get("top1_agreement") is not None:
        result["top1_agreement"] = c["top1_agreement"]
    if target.needs_dataset:
        acc = _task_metric(cell, lambda b: quantized(*b))
        result["accuracy"] = acc
        result["accuracy_drop"] = None if acc is None or cell.fp32_accuracy is None else cell.fp32_accuracy - acc
    return result


def _task_metric(cell: CellUnderTest, run) -> float | None:
    from qbench.collectors.accuracy import score

    spec = cell.model_spec
    scored = score(run, cell.data.evaluation, spec.inputs[0].shape[0], model=spec.name, metric=cell.metric,
                   metric_ref=spec.metric)
    if scored is None:
        return None
    return scored["metric"] if scored["metric"] is not None else scored["top1"]


def _json_number(x: float) -> float:
    return 200.0 if x == math.inf else x


def screening_order(layers: list[dict]) -> list[dict]:
    """Which layers to try first when `--max-layers` bounds the search: the ones that lose the most
    SQNR themselves (output SQNR below the SQNR they inherited), not merely the deepest ones. An
    input straight from the model counts as good as the best layer of the graph (not as exact), so
    the first layer is not blamed for the int8 rounding every layer has."""
    known = [r["sqnr_db"] for r in layers if r["sqnr_db"] is not None]
    ceiling = max(known, default=0.0)

    def drop(row):
        if row["sqnr_db"] is None:
            return -math.inf
        return min(row["input_sqnr_db"], ceiling) - row["sqnr_db"]

    return sorted(layers, key=drop, reverse=True)


def analyze(cell: CellUnderTest, target: Target, max_layers: int | None = None,
            progress=lambda text: None, max_seconds: float | None = None) -> dict:
    """The per-layer table (graph order), each screened layer's metric when kept fp32, and the greedy
    suggestion. Returns the JSON document of `qbench sensitivity --json` (without run/measure keys).
    `max_seconds` stops trying further layers once spent (the layers tried so far are ranked)."""
    from qbench.sensitivity.layers import layer_numerics

    started = time.monotonic()
    key = target.key
    progress("quantize (full)")
    full = quantize(cell, [])
    full_eval = evaluate(cell, full, target)
    progress("per-layer numerics")
    layers = layer_numerics(cell.graph, full, cell.data.held_out)
    for row in layers:
        row["metric_if_fp32"] = None
    screened = screening_order(layers)[: max_layers if max_layers else len(layers)]
    single: dict[str, dict] = {}
    for i, row in enumerate(screened, 1):
        if max_seconds is not None and i > 1 and time.monotonic() - started > max_seconds:
            screened = screened[: i - 1]
            break
        progress(f"layer {i}/{len(screened)} fp32: {row['module']}")
        single[row["module"]] = evaluate(cell, quantize(cell, [row["module"]]), target)
        row["metric_if_fp32"] = single[row["module"]][key]

    # rank: the layer whose fp32 copy gives the best metric first; unscreened layers after, worst SQNR first
    ranked = sorted(screened, key=lambda r: _sort_key(target, r["metric_if_fp32"]))
    ranked += sorted((r for r in layers if r not in screened), key=lambda r: (r["sqnr_db"] is None, r["sqnr_db"]))
    for rank, row in enumerate(ranked, 1):
        row["rank"] = rank

    suggestion = _greedy(cell, target, full_eval, [r for r in ranked if r in screened], single, progress)
    chosen = set(suggestion["skip"])
    for row in layers:
        row["kept_fp32"] = row["module"] in chosen
    return {
        "model": cell.model_spec.name, "recipe": cell.recipe.name, "recipe_kind": cell.recipe.kind,
        "target": target.text, "metric": key, "held_out_samples": len(cell.data.held_out),
        "baseline": {"int8": full_eval, "fp32_accuracy": cell.fp32_accuracy},
        "layers": layers, "suggestion": suggestion,
        "variants_quantized": cell.variants, "quantize_seconds": round(cell.seconds, 1),
        "screened_layers": len(screened),
    }


def _sort_key(target: Target, value):
    if value is None:
        return math.inf
    return -value if target.higher_is_better else value


def _greedy(cell, target: Target, full_eval: dict, ranked: list[dict], single: dict, progress) -> dict:
    """Keep the most sensitive layers fp32, one more each step, until the target is met."""
    key = target.key
    skip: list[str] = []
    current = full_eval
    steps = []
    helpful = [r for r in ranked if target.better(single[r["module"]][key], full_eval[key])]
    for row in helpful:
        if target.met(current[key]):
            break
        skip.append(row["module"])
        progress(f"greedy: {len(skip)} layer(s) fp32")
        current = single[row["module"]] if len(skip) == 1 else evaluate(cell, quantize(cell, skip), target)
        steps.append({"skip": list(skip), key: current[key]})
    return {"skip": skip, "met": target.met(current[key]), "predicted": current, "steps": steps,
            "recipe_yaml": recipe_yaml(cell.recipe, skip)}


def recipe_yaml(recipe, skip: list[str]) -> str:
    """The mixed recipe as a line for the suite's `recipes:` list."""
    import yaml

    spec = {"name": mixed_name(recipe), "kind": recipe.kind, **recipe.spec.options()}
    merged = list(dict.fromkeys([*recipe.options.skip.modules, *skip]))
    spec["skip"] = {**({"module_types": recipe.options.skip.module_types} if recipe.options.skip.module_types else {}),
                    "modules": merged}
    return yaml.safe_dump([spec], default_flow_style=None, sort_keys=False, width=100)


def mixed_name(recipe) -> str:
    return f"{recipe.name}-mixed"
