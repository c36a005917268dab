"""Prepare a variant: build the model, apply the recipe, lower to .pte, compare numerics with fp32.

The result is an Artifact from the content-addressed cache; an unchanged variant is a cache hit and
costs nothing. Runs in the orchestrator's process (export is not what we measure).
"""

from __future__ import annotations

import time
from pathlib import Path

from qbench.errors import CellError
from qbench.export.cache import Artifact, ArtifactCache, cache_key
from qbench.pipeline.grid import Variant
from qbench.suite.schema import NumericsSpec


def variant_key(variant: Variant, calibration, numerics: NumericsSpec, base_dir: Path, profile_ops: bool) -> str:
    from qbench.env import versions
    from qbench.models.base import file_digest
    from qbench.models.loading import model_fingerprint
    from qbench.models.python_source import callable_fingerprint

    calib = calibration.model_dump() if calibration is not None else None
    if calib and calib["kind"] == "npz":
        p = Path(calib["path"])
        calib["digest"] = file_digest(p if p.is_absolute() else base_dir / p)
    if calib and calib["kind"] == "python":
        calib["digest"] = callable_fingerprint(calib["fn"], base_dir)
    recipe = variant.recipe
    return cache_key({
        "model": model_fingerprint(variant.model, base_dir),
        "recipe": {"kind": recipe.kind, "options": recipe.options.model_dump()},
        # calibration changes nothing for recipes that do not calibrate
        "calibration": calib if recipe.recipe.needs_calibration or recipe.kind == "dynamic" else None,
        "numerics": numerics.model_dump(),
        "etrecord": profile_ops,
        "versions": versions(),
    })


def prepare_variant(variant: Variant, *, calibration, numerics: NumericsSpec, base_dir: Path,
                    cache: ArtifactCache, profile_ops: bool = False, on_stage=lambda stage: None) -> Artifact:
    on_stage("hash")
    try:
        key = variant_key(variant, calibration, numerics, base_dir, profile_ops)
    except Exception as exc:
        raise CellError("model", f"cannot fingerprint: {type(exc).__name__}: {exc}") from exc
    hit = cache.lookup(key)
    if hit is not None:
        return hit
    staging = cache.staging(key)
    try:
        artifact = _build(variant, key, staging, calibration, numerics, base_dir, profile_ops, on_stage)
        return cache.commit(staging, artifact)
    except BaseException:
        cache.discard(staging)
        raise


def _build(variant, key, staging, calibration, numerics, base_dir, profile_ops, on_stage) -> Artifact:
    import torch

    from qbench.models.loading import build_model
    from qbench.quantize.calibration import example_inputs, load_input_data

    spec, recipe = variant.model, variant.recipe
    on_stage("build model")
    model = _stage("model", lambda: build_model(spec, base_dir))
    example = example_inputs(spec.inputs)
    data = _stage("calibration", lambda: load_input_data(calibration, spec.inputs, numerics, base_dir))
    data.example = example
    _write_inputs(staging / "inputs.bin", example)

    on_stage("quantize")
    t0 = time.perf_counter()

    def quantize():
        import copy

        # a copy: the exported graph shares parameters with its module, and QAT trains them
        graph = torch.export.export(copy.deepcopy(model), example).module()
        return recipe.recipe.apply(graph, recipe.options, data, reference=model)

    quantized = _stage("quantize", quantize)
    quantize_s = time.perf_counter() - t0
    extra = {}
    if hasattr(quantized, "qbench_training_losses"):
        losses = quantized.qbench_training_losses
        extra["qat_loss_first"], extra["qat_loss_last"] = losses[0], losses[-1]

    if not recipe.recipe.lowers_to_pte:  # the eager reference: a torch.export program, run by PyTorch
        on_stage("export")
        t0 = time.perf_counter()
        _stage("export", lambda: torch.export.save(torch.export.export(model, example), str(staging / "model.pt2")))
        return Artifact(key=key, dir=staging, program="model.pt2", kind="pt2",
                        program_bytes=(staging / "model.pt2").stat().st_size,
                        timings={"quantize_s": quantize_s, "export_s": time.perf_counter() - t0, **extra})

    on_stage("lower")
    from qbench.export.lower import lower_to_pte

    t0 = time.perf_counter()
    etrecord = staging / "etrecord.bin" if profile_ops else None
    lowered = _stage("export", lambda: lower_to_pte(quantized, example, staging / "model.pte", etrecord))
    export_s = time.perf_counter() - t0

    on_stage("numerics")
    numbers = _stage("numerics", lambda: _numerics(model, staging / "model.pte", data.held_out, spec.task,
                                                   lowered.delegation.get("kernels", [])))
    return Artifact(
        key=key, dir=staging, program="model.pte", kind="pte", program_bytes=lowered.pte_bytes,
        arena_bytes=lowered.arena_bytes, delegation=lowered.delegation, numerics=numbers,
        timings={"quantize_s": quantize_s, "export_s": export_s, **extra},
        etrecord="etrecord.bin" if profile_ops else None,
    )


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


def _numerics(model, pte: Path, held_out, task: str, kernels: list[str]) -> dict:
    """The exported program itself (not the quantized torch graph) against the fp32 eager model."""
    import torch
    from executorch.runtime import Runtime

    from qbench.collectors.numerics import compare_outputs, first_output, looks_like_classifier

    runtime = Runtime.get()
    try:
        method = runtime.load_program(str(pte)).load_method("forward")
    except RuntimeError as exc:
        missing = sorted(set(kernels) - set(runtime.operator_registry.operator_names))
        if missing:
            raise CellError("export", f"no ExecuTorch kernel for {', '.join(missing)}: not delegated to XNNPACK, "
                                      "and the runtime has no portable kernel for it") from exc
        raise
    refs, outs = [], []
    with torch.no_grad():
        for batch in held_out:
            refs.append(first_output(model(*batch)))
            outs.append(first_output(method.execute(list(batch))))
    classifier = task == "classifier" or (task == "auto" and looks_like_classifier(refs[0]))
    return compare_outputs(refs, outs, classifier)
