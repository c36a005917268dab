"""Sensitivity of one cell (model × recipe): which layer, kept fp32, recovers the metric (or, alone
quantized, loses it); and the mixed-precision `skip:` that meets a target, found by a greedy search
that re-evaluates its candidates at every step.

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

# Sensitivity works on recipes whose quantized graph is a PT2E graph (Recipe.pt2e_graph: what the
# numeric debugger reads). QAT trains once per variant (its `steps`/`epochs` as the suite sets them),
# so it is the slowest of them. A quantizing recipe that is not PT2E (int4-weight) is refused with
# its `why_not_pt2e` and what to do instead (docs/quantization-quality.md says the same).
NOT_PT2E_ADVICE = ("Measure it with `qbench run`, and use skip: {modules: [...]} on it by hand; sensitivity "
                   "works on the same model's")

# Which single-layer variants rank the layers (--method)
METHODS = {
    "fp32-one": "each layer alone kept fp32, the rest quantized (metric_if_fp32)",
    "quantize-one": "each layer alone quantized, the rest fp32 (metric_if_only_quantized)",
    "both": "both variants per layer (twice the work)",
}
DEFAULT_METHOD = "fp32-one"
DEFAULT_CANDIDATES = 4  # single layers re-evaluated per search step (besides the layer groups)


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
    if not chosen.recipe.pt2e_graph:
        usable = ", ".join([r.name for r in checked.recipes if r.recipe.pt2e_graph] or ["none in this suite"])
        kinds = pt2e_kinds()
        if chosen.recipe.why_not_pt2e:
            either = " or ".join([", ".join(kinds[:-1]), kinds[-1]])
            raise UsageError(f"recipe {recipe!r} is kind {chosen.kind}, {chosen.recipe.why_not_pt2e}. "
                             f"{NOT_PT2E_ADVICE} {either} recipe ({usable})")
        raise UsageError(f"recipe {recipe!r} is kind {chosen.kind}; sensitivity needs a PT2E recipe "
                         f"(kind {', '.join(kinds)}): {usable}")
    return models[model], chosen


def pt2e_kinds() -> list[str]:
    """The recipe kinds sensitivity works on."""
    from qbench.quantize import RECIPES

    return [kind for kind in RECIPES.names() if RECIPES.get(kind).pt2e_graph]


def check_target(checked, model_spec, target: Target) -> None:
    """The target can be judged for this model: it has the dataset a task metric needs, and the
    threshold is in the metric's range (top-1's is known; a model's own `metric:` may use any scale)."""
    if target.needs_dataset and checked.dataset_for(model_spec) is None:
        raise UsageError(f"--target {target.text!r} needs a task metric, and model {model_spec.name!r} has no "
                         "`dataset:` in the suite; use e.g. --target 'sqnr>=30'")
    if (problem := target.range_problem(top1=not model_spec.metric)) is not None:
        raise UsageError(problem)


def open_cell(checked, model_spec, recipe, target: Target, progress=lambda text: None) -> CellUnderTest:
    import torch

    from qbench.collectors.numerics import looks_like_classifier
    from qbench.inputs import example_inputs
    from qbench.models.loading import build_model, keyword_only_problem
    from qbench.models.outputs import select_output
    from qbench.quantize.calibration import load_dataset_data, load_input_data

    check_target(checked, model_spec, target)
    dataset = checked.dataset_for(model_spec)
    progress("build model")
    model = build_model(model_spec)
    if (problem := keyword_only_problem(model, model_spec.name, len(model_spec.inputs))) is not None:
        raise UsageError(problem)
    example = example_inputs(model_spec.inputs)
    progress("data")
    if dataset is not None:  # the splits a run needs for this recipe
        data = load_dataset_data(dataset, model_spec, checked.suite.numerics, recipe.recipe.dataset_splits())
    else:
        calibration = model_spec.calibration or checked.suite.calibration
        data = load_input_data(calibration, model_spec.inputs, checked.suite.numerics)
    data.example, data.progress = example, progress
    data.output = model_spec.output  # the leaf QAT's loss uses
    metric = None
    if model_spec.metric:
        from qbench.user_code import load_callable

        metric = load_callable(model_spec.metric.removeprefix("python:"))
    progress("export")
    graph = torch.export.export(copy.deepcopy(model), example).module()
    with torch.no_grad():  # the headline output (the suite's `output:`, else the first tensor leaf)
        refs = [select_output(model(*b), model_spec.output) for b in data.held_out]
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


def options_quantizing_only(recipe, layers: list[str]):
    """The recipe's options with every node outside `layers` (exact innermost modules) kept fp32."""
    from qbench.quantize.skip import QuantizeOnly

    return recipe.options.model_copy(update={"skip": QuantizeOnly(layers=list(layers))})


def _variant_options(cell: CellUnderTest, options):
    """The debugger pairs nodes of one export only, so no variant may re-export the model (QAT with a
    dataset trains at the model's declared batch here)."""
    return cell.recipe.recipe.options_for_one_export(options, cell.data)


def quantize(cell: CellUnderTest, keep_fp32: list[str], only: list[str] | None = None):
    """A variant of the cell: the recipe with `keep_fp32` added to its skip; or, with `only`, the recipe
    quantizing those layers and nothing else."""
    t0 = time.perf_counter()
    graph = copy.deepcopy(cell.graph)  # the variant keeps the graph's node sources (the debugger's keys)
    options = options_quantizing_only(cell.recipe, only) if only is not None else options_with_skip(cell.recipe, keep_fp32)
    out, _record = cell.recipe.recipe.apply(graph, _variant_options(cell, options), cell.data, cell.model)
    cell.variants += 1
    cell.seconds += time.perf_counter() - t0
    return out


def evaluate(cell: CellUnderTest, quantized, target: Target) -> dict:
    """End-to-end figures of a quantized graph: SQNR, cosine and max error of the headline output
    against fp32 on the held-out inputs; with a dataset target, the task metric and its drop."""
    import torch

    from qbench.collectors.numerics import compare_outputs
    from qbench.models.outputs import select_output

    with torch.no_grad():
        outs = [select_output(quantized(*b), cell.model_spec.output) for b in cell.data.held_out]
    c = compare_outputs(cell.references, outs, cell.classifier)
    result = {"sqnr_db": _json_number(c["sqnr_db"]), "cosine": c["cosine_similarity"],
              "max_abs_error": c["max_abs_error"]}
    if c.get("top1_agreement") is not None:
        result["top1_agreement"] = c["top1_agreement"]
    if target.needs_dataset:
        output = cell.model_spec.output
        acc = _task_metric(cell, lambda b: select_output(quantized(*b), output))
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


class _Clock:
    """--max-seconds, shared by the screen and the search."""

    def __init__(self, max_seconds: float | None):
        self.started, self.max_seconds = time.monotonic(), max_seconds

    def spent(self) -> bool:
        return self.max_seconds is not None and time.monotonic() - self.started > self.max_seconds


def analyze(cell: CellUnderTest, target: Target, max_layers: int | None = None,
            progress=lambda text: None, max_seconds: float | None = None, method: str = DEFAULT_METHOD,
            candidates: int = DEFAULT_CANDIDATES) -> dict:
    """The per-layer table (graph order), each screened layer's single-layer variants (`method`), the
    ranking, and the searched suggestion. Returns the JSON document of `qbench sensitivity --json`
    (without run/measure keys). `max_seconds` stops the screen (the layers tried so far are ranked)
    and the search (the best skip found so far is the suggestion)."""
    from qbench.sensitivity.layers import layer_numerics

    if method not in METHODS:
        raise UsageError(f"--method {method!r}: choose one of: {', '.join(METHODS)}")
    clock = _Clock(max_seconds)
    key = target.key
    progress("quantize (full)")
    full = quantize(cell, [])
    full_eval = evaluate(cell, full, target)
    progress("per-layer numerics")
    layers = layer_numerics(cell.graph, full, cell.data.held_out)
    for row in layers:
        row["metric_if_fp32"] = row["metric_if_only_quantized"] = None
    screened = screening_order(layers)[: max_layers if max_layers else len(layers)]
    single: dict[str, dict] = {}  # module -> evaluation with only it fp32 (reused by the search)
    tried = []
    for i, row in enumerate(screened, 1):
        if i > 1 and clock.spent():
            break
        module = row["module"]
        if method in ("fp32-one", "both"):
            progress(f"layer {i}/{len(screened)} fp32: {module}")
            single[module] = evaluate(cell, quantize(cell, [module]), target)
            row["metric_if_fp32"] = single[module][key]
        if method in ("quantize-one", "both"):
            progress(f"layer {i}/{len(screened)} alone quantized: {module}")
            row["metric_if_only_quantized"] = evaluate(cell, quantize(cell, [], only=[module]), target)[key]
        tried.append(row)
    screened = tried

    ranked = rank(screened, target, method, full_eval[key])
    # unscreened layers after the screened ones, worst SQNR first
    ranked += sorted((r for r in layers if r not in screened), key=lambda r: (r["sqnr_db"] is None, r["sqnr_db"]))
    for position, row in enumerate(ranked, 1):
        row["rank"] = position

    modules = [r["module"] for r in layers]
    suggestion = search(cell, target, full_eval, [r["module"] for r in ranked if r in screened], single,
                        role_groups(modules), clock, candidates, progress, modules)
    chosen = set(suggestion["skip"])
    for row in layers:
        row["kept_fp32"] = row["module"] in chosen
    return {
        "model": cell.model_spec.name, "recipe": cell.recipe.name, "recipe_kind": cell.recipe.kind,
        "target": target.text, "metric": key, "method": method, "held_out_samples": len(cell.data.held_out),
        "baseline": {"int8": full_eval, "fp32_accuracy": cell.fp32_accuracy},
        "layers": layers, "suggestion": suggestion,
        "variants_quantized": cell.variants, "quantize_seconds": round(cell.seconds, 1),
        "screened_layers": len(screened),
    }


def rank(screened: list[dict], target: Target, method: str, full_value) -> list[dict]:
    """Most sensitive first. fp32-one: the layer whose fp32 copy gives the best metric; quantize-one:
    the layer that, quantized alone, loses the most; both: the layers whose fp32 copy helps (best
    first), then the rest by what they lose alone."""
    def by_fp32(r):
        return _sort_key(target, r["metric_if_fp32"])

    def by_alone(r):  # worst metric first; None (not tried) last
        v = r["metric_if_only_quantized"]
        return math.inf if v is None else (v if target.higher_is_better else -v)

    if method == "fp32-one":
        return sorted(screened, key=by_fp32)
    if method == "quantize-one":
        return sorted(screened, key=by_alone)
    helps = [r for r in screened if target.better(r["metric_if_fp32"], full_value)]
    return sorted(helps, key=by_fp32) + sorted((r for r in screened if r not in helps), key=by_alone)


def _sort_key(target: Target, value):
    if value is None:
        return math.inf
    return -value if target.higher_is_better else value


def role_groups(modules: list[str]) -> list[dict]:
    """Layers with the same role in repeated blocks: the same path up to the first index
    (`bert.encoder.layer.*.attention.self`, `features.*.block.1.0`). Errors that compound across
    blocks are fixed by a whole role at once, which no single layer's figure shows."""
    groups: dict[str, list[str]] = {}
    for module in modules:
        parts = module.split(".")
        index = next((i for i, p in enumerate(parts) if p.isdigit()), None)
        if index is None:
            continue
        pattern = ".".join([*parts[:index], "*", *parts[index + 1:]])
        groups.setdefault(pattern, []).append(module)
    return [{"group": g, "modules": m} for g, m in groups.items() if len(m) > 1]


def _covered(module: str, skip: list[str]) -> bool:
    """Already fp32: named in skip, or inside a skipped module."""
    return any(module == s or module.startswith(s + ".") for s in skip)


def search(cell, target: Target, full_eval: dict, ranked: list[str], single: dict, groups: list[dict],
           clock: _Clock, width: int, progress, modules: list[str] = ()) -> dict:
    """Greedy with re-evaluation: each step tries, on top of the layers already fp32, the `width`
    best-ranked layers not yet fp32 and every role group (role_groups), each as a real variant, and
    keeps the one that improves the metric most (a tie goes to the one covering fewer layers: a parent
    module's skip keeps its children fp32 too). It stops when the target
    is met, nothing improves, or --max-seconds is spent; then drops, last added first, every module
    the target does not need. One-at-a-time figures mislead when layers only matter together (two
    outliers: fixing either alone leaves the other's error); re-evaluating given the current set
    finds them."""
    key = target.key
    skip: list[str] = []
    current, steps, stopped = full_eval, [], None
    while not target.met(current[key]):
        if clock.spent():
            stopped = "max-seconds"
            break
        units = _candidate_units(ranked, groups, skip, width)
        if not units:
            stopped = "no candidates left"
            break
        tried = _try_units(cell, target, units, skip, single, clock, progress, len(steps) + 1)
        unit, best = _best_unit(target, tried, modules)
        if not target.better(best[key], current[key]):
            stopped = "no candidate improves the metric"
            break
        skip, current = skip + unit, best
        steps.append({"added": unit, "skip": list(skip), key: current[key],
                      "tried": [{"add": u, key: r[key]} for u, r in tried]})
    skip, current, pruned = _prune(cell, target, skip, current, clock, progress)
    return {"skip": skip, "met": target.met(current[key]), "predicted": current, "steps": steps,
            "pruned": pruned, "stopped": stopped, "recipe_yaml": recipe_yaml(cell.recipe, skip)}


def _candidate_units(ranked: list[str], groups: list[dict], skip: list[str], width: int) -> list[list[str]]:
    """What one search step tries: the `width` best-ranked layers not yet fp32, then each role group's
    layers not yet fp32 (when more than one is left)."""
    units = [[m] for m in ranked if not _covered(m, skip)][:width]
    for g in groups:
        rest = [m for m in g["modules"] if not _covered(m, skip)]
        if len(rest) > 1 and rest not in units:
            units.append(rest)
    return units


def _try_units(cell, target: Target, units: list[list[str]], skip: list[str], single: dict, clock: _Clock,
               progress, step: int) -> list[tuple[list[str], dict]]:
    """Each unit on top of `skip`, as a real variant (a single layer's own figure when nothing else is
    fp32 yet); at least the first is tried, the rest while --max-seconds allows."""
    tried = []
    for i, unit in enumerate(units):
        if i and clock.spent():
            break
        progress(f"search step {step}: {len(skip)} fp32 + {unit[0]}"
                 + (f" (+{len(unit) - 1})" if len(unit) > 1 else ""))
        if not skip and len(unit) == 1 and unit[0] in single:
            result = single[unit[0]]
        else:
            result = evaluate(cell, quantize(cell, skip + unit), target)
        tried.append((unit, result))
    return tried


def _best_unit(target: Target, tried: list[tuple[list[str], dict]], modules: list[str]) -> tuple[list[str], dict]:
    """The unit that improves the metric most; a tie goes to the one keeping fewer layers fp32."""
    key = target.key

    def cost(unit):  # layers this unit keeps fp32, children included
        return sum(_covered(m, unit) for m in modules) or len(unit)

    unit, best = tried[0]
    for u, r in tried[1:]:
        if target.better(r[key], best[key]) or (r[key] == best[key] and cost(u) < cost(unit)):
            unit, best = u, r
    return unit, best


def _prune(cell, target: Target, skip: list[str], current: dict, clock: _Clock, progress):
    """(skip, its figures, the modules dropped): when the target is met, drop, last added first, every
    module it does not need."""
    key = target.key
    pruned = []
    if target.met(current[key]) and len(skip) > 1:
        for module in reversed(list(skip)):
            if clock.spent():
                break
            trial = [m for m in skip if m != module]
            progress(f"prune: without {module}")
            result = evaluate(cell, quantize(cell, trial), target)
            if target.met(result[key]):
                skip, current = trial, result
                pruned.append(module)
    return skip, current, pruned


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
