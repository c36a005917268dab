"""Prepare a variant: build the model, apply the recipe, lower to .pte, compare numerics with fp32,
and score task accuracy on the model's dataset by running the .pte itself.

The result is an Artifact from the content-addressed cache; an unchanged variant is a cache hit and
costs nothing. Runs in the orchestrator's process (export is not what we measure).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qbench.errors import CellError
from qbench.export.cache import Artifact, ArtifactCache, artifact_code_digest, cache_key
from qbench.models.outputs import SOLE_OUTPUT
from qbench.pipeline.grid import Variant
from qbench.suite.schema import NumericsSpec

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from qbench.models.loading import BuiltModels


def variant_key(variant: Variant, calibration, numerics: NumericsSpec, profile_ops: bool, dataset=None) -> str:
    from qbench.env import versions
    from qbench.hashing import file_sha256
    from qbench.models.loading import model_fingerprint
    from qbench.user_code import callable_fingerprint

    # the content identifies calibration data, wherever the checkout is
    calib = calibration.model_dump(exclude={"path", "fn"}) if calibration is not None else None
    if calib and calib["kind"] == "npz":
        calib["digest"] = file_sha256(Path(calibration.path).expanduser())
    if calib and calib["kind"] == "python":
        calib["digest"] = callable_fingerprint(calibration.fn)
    recipe = variant.recipe
    parts = {
        "model": model_fingerprint(variant.model),
        "recipe": {"kind": recipe.kind, "options": recipe.options.model_dump()},
        # calibration changes nothing for recipes that do not read it
        "calibration": calib if recipe.recipe.uses_calibration else None,
        "numerics": numerics.model_dump(),
        "etrecord": profile_ops,
        "versions": versions(),
        "code": artifact_code_digest(),
    }
    if dataset is not None:  # its splits replace `calibration:` and the random held-out inputs
        from qbench.datasets import dataset_fingerprint

        parts["calibration"] = None
        parts["dataset"] = dataset_fingerprint(dataset)
        if variant.model.task == "text-generation":  # the text's windows depend on the tokenizer too
            parts["tokenizer"] = _tokenizer_digest(variant.model.source)
    if variant.model.metric:
        parts["metric"] = callable_fingerprint(_metric_ref(variant.model.metric))
    return cache_key(parts)


def _tokenizer_digest(source: str) -> str | None:
    from qbench.datasets.text import tokenizer_file
    from qbench.hashing import file_sha256
    from qbench.models import split_source

    path = tokenizer_file(split_source(source)[1])
    return file_sha256(path) if path.is_file() else None


def all_prepared(checked, spec, cache: ArtifactCache) -> bool:
    """Every variant of this model is in the cache (so a run needs not build the model)."""
    suite = checked.suite
    try:
        from qbench.pipeline.grid import variants  # one per recipe (and per batch of a batch sweep)

        return all(cache.lookup(variant_key(v, spec.calibration or suite.calibration, suite.numerics,
                                            suite.benchmark.profile_ops, checked.dataset_for(spec))) is not None
                   for v in variants(checked) if v.model.name == spec.name)
    except Exception:  # cannot even fingerprint it: let the build below say why
        return False


def prepare_variant(variant: Variant, *, calibration, numerics: NumericsSpec, cache: ArtifactCache,
                    models: BuiltModels, profile_ops: bool = False, on_stage=lambda stage: None,
                    dataset=None) -> Artifact:
    """`dataset`: the DatasetSpec the model names (or None); it overrides `calibration`.
    `models`: the run's built fp32 models; a cache hit builds nothing."""
    on_stage("hash")
    try:
        key = variant_key(variant, calibration, numerics, profile_ops, dataset)
    except Exception as exc:
        raise CellError("model", f"cannot fingerprint: {type(exc).__name__}: {exc}") from exc
    hit = cache.lookup(key)
    if hit is not None:
        log.info("%s: artifact %s from the cache", variant.label, key[:12])
        return hit
    staging = cache.staging(key)
    started = time.monotonic()
    try:
        if variant.model.task == "text-generation":  # a causal LM with its KV cache: its own path
            from qbench.pipeline.prepare_generation import build_generation_pte

            return cache.commit(staging, build_generation_pte(variant, key, staging, models, on_stage, dataset))
        inputs = _gather_inputs(variant, calibration, numerics, models, on_stage, dataset)
        _write_inputs(staging / "inputs.bin", inputs.data.example)
        build = _build_pte if variant.recipe.recipe.lowers_to_pte else _build_eager
        artifact = build(variant, key, staging, inputs, profile_ops, on_stage)
        log.info("%s: quantized and exported in %.1f s (artifact %s)", variant.label, time.monotonic() - started, key[:12])
        return cache.commit(staging, artifact)
    except BaseException:
        cache.discard(staging)
        raise


@dataclass
class _Inputs:
    """What both kinds of build start from: the fp32 model, its data, and the task metric."""

    model: object
    data: object  # quantize.calibration.InputData
    metric: object  # the user's metric function, or None
    outputs: list  # every output leaf {name, dtype, shape}, as the program's flat outputs


def _gather_inputs(variant, calibration, numerics, models, on_stage, dataset) -> _Inputs:
    from qbench.inputs import example_inputs
    from qbench.models.loading import keyword_only_problem
    from qbench.quantize.calibration import load_dataset_data, load_input_data

    spec, recipe = variant.model, variant.recipe
    on_stage("build model")
    model = _stage("model", lambda: models.get(spec))
    if (problem := keyword_only_problem(model, spec.name, len(spec.inputs))) is not None:
        raise CellError("model", problem)
    if dataset is not None:
        on_stage("dataset")
        needs = recipe.recipe.dataset_splits()  # QAT learns from the train split, not calibration
        data = _stage("dataset", lambda: load_dataset_data(dataset, spec, numerics, needs))
    else:
        data = _stage("calibration", lambda: load_input_data(calibration, spec.inputs, numerics))
    data.example = example_inputs(spec.inputs)
    data.progress = on_stage
    metric = _stage("accuracy", lambda: _load_metric(spec.metric)) if spec.metric else None
    outputs = _stage("model", lambda: _output_leaves(model, data.example, spec.output))
    data.output = spec.output  # the leaf QAT's loss uses
    return _Inputs(model, data, metric, outputs)


def _quantize(variant, inputs: _Inputs, on_stage) -> tuple[object, dict, float]:
    """(quantized module, the recipe's record, seconds). Recipes see a copy: the fp32 model is shared."""
    import copy

    import torch

    on_stage("quantize")
    t0 = time.perf_counter()

    def quantize():
        # a copy: the exported graph shares parameters with its module, and QAT trains them; a model
        # torch.export cannot capture fails at stage `export` (_export_stage), not `quantize`
        graph = _export_stage(lambda: torch.export.export(copy.deepcopy(inputs.model), inputs.data.example)).module()
        return variant.recipe.recipe.apply(graph, variant.recipe.options, inputs.data, reference=inputs.model)

    try:
        quantized, record = _stage("quantize", quantize)
    except CellError as exc:
        raise _nonfinite_model(inputs) or exc
    from qbench.quantize.count import quantized_layers

    # q-dq pairs around compute layers: 0 for a non-fp32 recipe is the finding "quantized nothing"
    extra = {**record, "quantized_layers": _stage("quantize", lambda: quantized_layers(quantized, record))}
    if inputs.data.dataset_record:
        extra["dataset"] = inputs.data.dataset_record
    if extra.get("qat", {}).get("loss_first") is not None:  # the flat keys earlier runs stored
        extra["qat_loss_first"], extra["qat_loss_last"] = extra["qat"]["loss_first"], extra["qat"]["loss_last"]
    return quantized, extra, time.perf_counter() - t0


def _nonfinite_model(inputs: _Inputs) -> CellError | None:
    """Why a recipe failed when the fp32 model itself outputs NaN/inf (calibration then sees
    non-finite ranges and torch's own message names a histogram, not the model), else None."""
    import torch

    from qbench.models.outputs import output_leaves

    try:
        with torch.no_grad():
            leaves = [(n, t) for n, t in output_leaves(inputs.model(*inputs.data.example)) if isinstance(t, torch.Tensor)]
    except Exception:  # the recipe's own error stands
        return None
    bad = [(n, int((~torch.isfinite(t.float())).sum()), t.numel()) for n, t in leaves]
    bad = [b for b in bad if b[1]]
    if not bad:
        return None
    where = ", ".join(f"{count} of {total} values{'' if n == SOLE_OUTPUT else f' of output {n!r}'}" for n, count, total in bad)
    return CellError("quantize", f"the fp32 model itself outputs NaN/inf ({where}) on the example input: "
                                 "nothing to calibrate against; fix the model (its fp32 cell shows the finding)")


def _build_eager(variant, key, staging, inputs: _Inputs, profile_ops, on_stage) -> Artifact:
    """The eager reference: a torch.export program, run by PyTorch itself (and scored by it)."""
    import torch

    from qbench.models.outputs import select_output

    model, data = inputs.model, inputs.data
    _, extra, quantize_s = _quantize(variant, inputs, on_stage)
    on_stage("export")
    t0 = time.perf_counter()
    program = _export_stage(lambda: torch.export.export(model, data.example))
    _stage("export", lambda: torch.export.save(program, str(staging / "model.pt2")))
    export_s = time.perf_counter() - t0
    numbers = {}
    if data.evaluation is not None:  # the reference point for the .pte cells
        on_stage("accuracy")
        numbers["accuracy"] = _stage("accuracy", lambda: _accuracy(
            lambda b: select_output(model(*b), variant.model.output), data, variant.model, inputs.metric))
    numbers["extra"] = _with_accuracy(extra, numbers.get("accuracy"))
    return Artifact(key=key, dir=staging, program="model.pt2", kind="pt2",
                    program_bytes=(staging / "model.pt2").stat().st_size, numerics=numbers,
                    timings={"quantize_s": quantize_s, "export_s": export_s}, outputs=inputs.outputs)


def _build_pte(variant, key, staging, inputs: _Inputs, profile_ops, on_stage) -> Artifact:
    """Quantize, lower to .pte with XNNPACK, then judge the program itself: numerics and accuracy."""
    from qbench.collectors.device_numerics import save_inputs
    from qbench.collectors.numerics import cell_findings
    from qbench.export.lower import lower_to_pte

    spec, data = variant.model, inputs.data
    quantized, extra, quantize_s = _quantize(variant, inputs, on_stage)
    on_stage("lower")
    t0 = time.perf_counter()
    etrecord = staging / "etrecord.bin" if profile_ops else None
    lowered = _stage("export", lambda: lower_to_pte(quantized, data.example, staging / "model.pte", etrecord))
    export_s = time.perf_counter() - t0

    on_stage("numerics")
    from qbench.runtime_log import runtime_log_captured

    with runtime_log_captured():  # the runtime's own log lines go to the qbench.runtime logger
        method = _stage("numerics", lambda: _load_method(staging / "model.pte", lowered.delegation.get("kernels", [])))
        program = "quantized program" if variant.recipe.recipe.quantizes else "exported program"
        numbers = _stage("numerics", lambda: _numerics(inputs.model, method, data.held_out, spec, program))
        extra.update(cell_findings(numbers["outputs"]))  # NaN/inf outputs, why figures are missing
        if set(numbers["outputs"]) != {SOLE_OUTPUT}:  # structured outputs: every leaf's figures, and which leads
            extra["output"] = numbers["output"]
            extra["outputs"] = {name: _json_figures(fig) for name, fig in numbers["outputs"].items()}
        # what each device's runner re-runs, so numerics come from the device that was timed
        _stage("numerics", lambda: save_inputs(staging, inputs.model, data.held_out, data.evaluation,
                                               spec.inputs[0].shape[0], spec.output))
        if data.evaluation is not None:
            on_stage("accuracy")
            leaf = [o["name"] for o in inputs.outputs].index(numbers["output"])  # the program's flat outputs
            numbers["accuracy"] = _stage("accuracy", lambda: _accuracy(lambda b: method.execute(list(b))[leaf],
                                                                       data, spec, inputs.metric))
    if "int4" in extra:  # what XNNPACK really took: the int4 linears' torchao ops inside or outside the delegate
        extra["int4"]["torchao_ops_delegated"] = _torchao_ops(lowered.delegation.get("delegated_by_op", {}))
        extra["int4"]["torchao_ops_not_delegated"] = _torchao_ops(lowered.delegation.get("not_delegated_by_op", {}))
    numbers["extra"] = _with_accuracy(extra, numbers.get("accuracy"))
    return Artifact(
        key=key, dir=staging, program="model.pte", kind="pte", program_bytes=lowered.pte_bytes,
        arena_bytes=lowered.arena_bytes, delegation=lowered.delegation, numerics=numbers,
        timings={"quantize_s": quantize_s, "export_s": export_s},
        etrecord="etrecord.bin" if profile_ops else None, outputs=inputs.outputs,
    )


def _with_accuracy(extra: dict, accuracy: dict | None) -> dict:
    if accuracy:
        extra = {**extra, "accuracy": {k: accuracy[k] for k in ("samples", "metric_name") if accuracy.get(k)}}
    return extra


def _torchao_ops(by_op: dict) -> dict:
    return {k: v for k, v in by_op.items() if k.startswith("torchao_")}


def _metric_ref(metric: str) -> str:
    return metric.split(":", 1)[1] if metric.startswith("python:") else metric


def _load_metric(metric: str):
    from qbench.user_code import load_callable

    return load_callable(_metric_ref(metric))


def _accuracy(run, data, spec, metric) -> dict | None:
    from qbench.collectors.accuracy import score

    return score(run, data.evaluation, spec.inputs[0].shape[0], model=spec.name, metric=metric,
                 metric_ref=spec.metric)


def _stage(stage: str, fn):
    """Run one step; any failure becomes a CellError naming the stage (the suite goes on)."""
    try:
        return fn()
    except CellError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise CellError(stage, f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")) from exc


def _write_inputs(path: Path, tensors) -> None:
    """Raw bytes of each input, concatenated in order (the runners' --inputs format)."""
    with open(path, "wb") as f:
        for t in tensors:
            f.write(t.contiguous().numpy().tobytes())


def _load_method(pte: Path, kernels: list[str]):
    """The program's `forward` on the host runtime (what numerics and accuracy run)."""
    from executorch.runtime import Runtime

    runtime = Runtime.get()
    try:
        return runtime.load_program(str(pte)).load_method("forward")
    except RuntimeError as exc:
        missing = sorted(set(kernels) - set(runtime.operator_registry.operator_names))
        if missing:
            # the program exported fine: it is loading it that fails, as it would on any device
            raise CellError("load", f"the runtime has no kernel for {', '.join(missing)} (not delegated to XNNPACK, "
                                    "and no portable kernel is linked): the .pte exports but cannot load") from exc
        raise


def _numerics(model, method, held_out, spec, program: str) -> dict:
    """The exported program itself (not the quantized torch graph) against the fp32 eager model,
    output leaf by output leaf; the headline figures are those of the chosen leaf."""
    import torch

    from qbench.collectors.numerics import compare_leaves
    from qbench.models.outputs import headline_name, output_leaves

    refs, outs = [], []
    with torch.no_grad():
        for batch in held_out:
            leaves = output_leaves(model(*batch))
            refs.append([leaf for _, leaf in leaves])
            outs.append(list(method.execute(list(batch))))
    per_output = compare_leaves(refs, outs, [name for name, _ in leaves], spec.task, program)
    headline = headline_name(leaves, spec.output)
    return {**per_output[headline], "output": headline, "outputs": per_output}


def _output_leaves(model, example, chosen: str | None) -> list[dict]:
    """{name, dtype, shape} of every output leaf, in the program's output order (checks `output:`)."""
    import torch

    from qbench.models.outputs import describe, headline_name, output_leaves

    with torch.no_grad():
        leaves = output_leaves(model(*example))
    headline_name(leaves, chosen)
    return describe(leaves)


def _json_figures(figures: dict) -> dict:
    """One leaf's figures for the `extra` JSON: an exact match (infinite SQNR) as 999 dB, like the column."""
    return {k: (999.0 if isinstance(v, float) and v == float("inf") else v) for k, v in figures.items()}


# What torch.export cannot capture is the model's code, not the recipe: say what to do instead.
EXPORT_HINT = ("torch.export cannot capture this model (data-dependent control flow, e.g. a detector's "
               "post-processing): measure its backbone, or a `python:` factory returning a module that wraps "
               "the part to measure")


def _export_stage(fn):
    """torch.export of the fp32 model: a failure is the model's, named in one line with a hint.

    torch prints the partial graph of a failed export on stderr (megabytes for a detector); it is
    captured and dropped, the reason is in the exception."""
    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return fn()
    except Exception as exc:
        raise CellError("export", f"{export_reason(exc)} — {EXPORT_HINT}") from exc


def export_reason(exc: Exception, limit: int = 200) -> str:
    """torch.export's reason in one line: the message's first line (long symbolic expressions
    shortened) and the user-code location torch names under "Caused by"."""
    import re

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    head = lines[0] if lines else ""
    head = re.sub(r"\s+", " ", head)
    if len(head) > limit:
        head = head[: limit - 1].rstrip() + "…"
    where = next((m.group(1) for line in lines if (m := re.match(r"Caused by: \((.+)\)$", line))), None)
    text = f"{type(exc).__name__}: {head}" if head else type(exc).__name__
    return text + (f" (at {where})" if where else "")
