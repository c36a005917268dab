"""Prepare a variant: build the model, apply the recipe, lower to .pte, compare numerics with fp32,
and score task accuracy on the model's dataset by running the .pte itself.

The result is an Artifact from the content-addressed cache; an unchanged variant is a cache hit and
costs nothing. Runs in the orchestrator's process (export is not what we measure).
"""

from __future__ import annotations

import time
from pathlib import Path

from qbench.errors import CellError
from qbench.export.cache import Artifact, ArtifactCache, artifact_code_digest, cache_key
from qbench.pipeline.grid import Variant
from qbench.suite.schema import NumericsSpec


def variant_key(variant: Variant, calibration, numerics: NumericsSpec, base_dir: Path, profile_ops: bool,
                dataset=None) -> str:
    from qbench.env import versions
    from qbench.hashing import file_sha256
    from qbench.models.loading import model_fingerprint
    from qbench.user_code import callable_fingerprint

    calib = calibration.model_dump() if calibration is not None else None
    if calib and calib["kind"] == "npz":
        p = Path(calib["path"])
        calib["digest"] = file_sha256(p if p.is_absolute() else base_dir / p)
    if calib and calib["kind"] == "python":
        calib["digest"] = callable_fingerprint(calib["fn"], base_dir)
    recipe = variant.recipe
    parts = {
        "model": model_fingerprint(variant.model, base_dir),
        "recipe": {"kind": recipe.kind, "options": recipe.options.model_dump()},
        # calibration changes nothing for recipes that do not calibrate
        "calibration": calib if recipe.recipe.needs_calibration or recipe.kind == "dynamic" else None,
        "numerics": numerics.model_dump(),
        "etrecord": profile_ops,
        "versions": versions(),
        "code": artifact_code_digest(),
    }
    if dataset is not None:  # its splits replace `calibration:` and the random held-out inputs
        from qbench.datasets import dataset_fingerprint

        parts["calibration"] = None
        parts["dataset"] = dataset_fingerprint(dataset, base_dir)
    if variant.model.metric:
        parts["metric"] = callable_fingerprint(_metric_ref(variant.model.metric), base_dir)
    return cache_key(parts)


def prepare_variant(variant: Variant, *, calibration, numerics: NumericsSpec, base_dir: Path,
                    cache: ArtifactCache, profile_ops: bool = False, on_stage=lambda stage: None,
                    dataset=None) -> Artifact:
    """`dataset`: the DatasetSpec the model names (or None); it overrides `calibration`."""
    on_stage("hash")
    try:
        key = variant_key(variant, calibration, numerics, base_dir, profile_ops, dataset)
    except Exception as exc:
        raise CellError("model", f"cannot fingerprint: {type(exc).__name__}: {exc}") from exc
    hit = cache.lookup(key)
    if hit is not None:
        return hit
    staging = cache.staging(key)
    try:
        artifact = _build(variant, key, staging, calibration, numerics, base_dir, profile_ops, on_stage, dataset)
        return cache.commit(staging, artifact)
    except BaseException:
        cache.discard(staging)
        raise


def _build(variant, key, staging, calibration, numerics, base_dir, profile_ops, on_stage, dataset=None) -> Artifact:
    import torch

    from qbench.models.loading import build_model
    from qbench.inputs import example_inputs
    from qbench.quantize.calibration import load_dataset_data, load_input_data

    spec, recipe = variant.model, variant.recipe
    on_stage("build model")
    model = _stage("model", lambda: build_model(spec, base_dir))
    example = example_inputs(spec.inputs)
    if dataset is not None:
        on_stage("dataset")
        trains = getattr(recipe.recipe, "trains", False)  # QAT learns from the train split, not calibration
        needs = ("eval",) + (("train",) if trains else ("calibration",) if recipe.recipe.needs_calibration else ())
        data = _stage("dataset", lambda: load_dataset_data(dataset, spec, numerics, base_dir, needs))
    else:
        data = _stage("calibration", lambda: load_input_data(calibration, spec.inputs, numerics, base_dir))
    data.example = example
    data.progress = on_stage
    metric = _stage("accuracy", lambda: _load_metric(spec.metric, base_dir)) if spec.metric else None
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
    extra = dict(getattr(quantized, "qbench_extra", None) or {})
    if data.dataset_record:
        extra["dataset"] = data.dataset_record
    if extra.get("qat", {}).get("loss_first") is not None:  # the flat keys earlier runs stored
        extra["qat_loss_first"], extra["qat_loss_last"] = extra["qat"]["loss_first"], extra["qat"]["loss_last"]

    if not recipe.recipe.lowers_to_pte:  # the eager reference: a torch.export program, run by PyTorch
        on_stage("export")
        t0 = time.perf_counter()
        _stage("export", lambda: torch.export.save(torch.export.export(model, example), str(staging / "model.pt2")))
        export_s = time.perf_counter() - t0
        numbers = {}
        if data.evaluation is not None:  # scored by PyTorch itself: the reference point for the .pte cells
            on_stage("accuracy")
            numbers["accuracy"] = _stage("accuracy", lambda: _accuracy(lambda b: model(*b), data, spec, metric))
        numbers["extra"] = _with_accuracy(extra, numbers.get("accuracy"))
        return Artifact(key=key, dir=staging, program="model.pt2", kind="pt2",
                        program_bytes=(staging / "model.pt2").stat().st_size, numerics=numbers,
                        timings={"quantize_s": quantize_s, "export_s": export_s})

    on_stage("lower")
    from qbench.export.lower import lower_to_pte

    t0 = time.perf_counter()
    etrecord = staging / "etrecord.bin" if profile_ops else None
    lowered = _stage("export", lambda: lower_to_pte(quantized, example, staging / "model.pte", etrecord))
    export_s = time.perf_counter() - t0

    on_stage("numerics")
    from qbench.runtime_log import runtime_log_captured

    with runtime_log_captured():  # the runtime's own log lines go to the qbench.runtime logger
        method = _stage("numerics", lambda: _load_method(staging / "model.pte", lowered.delegation.get("kernels", [])))
        numbers = _stage("numerics", lambda: _numerics(model, method, data.held_out, spec.task))
        if data.evaluation is not None:
            on_stage("accuracy")
            numbers["accuracy"] = _stage("accuracy", lambda: _accuracy(lambda b: method.execute(list(b)), data, spec, metric))
    if "int4" in extra:  # what XNNPACK really took: the int4 linears' torchao ops inside or outside the delegate
        extra["int4"]["torchao_ops_delegated"] = _torchao_ops(lowered.delegation.get("delegated_by_op", {}))
        extra["int4"]["torchao_ops_not_delegated"] = _torchao_ops(lowered.delegation.get("not_delegated_by_op", {}))
    numbers["extra"] = _with_accuracy(extra, numbers.get("accuracy"))
    return Artifact(
        key=key, dir=staging, program="model.pte", kind="pte", program_bytes=lowered.pte_bytes,
        arena_bytes=lowered.arena_bytes, delegation=lowered.delegation, numerics=numbers,
        timings={"quantize_s": quantize_s, "export_s": export_s},
        etrecord="etrecord.bin" if profile_ops else None,
    )


def quality_fields(art: Artifact) -> dict:
    """The cell columns for accuracy, and the `extra` JSON (dataset splits, QAT record, int4 notes)."""
    num = art.numerics or {}
    acc = num.get("accuracy") or {}
    return {"accuracy_top1": acc.get("top1"), "accuracy_top5": acc.get("top5"),
            "accuracy_metric": acc.get("metric"), "extra": num.get("extra") or None}


def _with_accuracy(extra: dict, accuracy: dict | None) -> dict:
    if accuracy:
        extra = {**extra, "accuracy": {k: accuracy[k] for k in ("samples", "metric_name") if accuracy.get(k)}}
    return extra


def _torchao_ops(by_op: dict) -> dict:
    return {k: v for k, v in by_op.items() if k.startswith("torchao_")}


def _metric_ref(metric: str) -> str:
    return metric.split(":", 1)[1] if metric.startswith("python:") else metric


def _load_metric(metric: str, base_dir: Path):
    from qbench.user_code import load_callable

    return load_callable(_metric_ref(metric), base_dir)


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
            raise CellError("export", f"no ExecuTorch kernel for {', '.join(missing)}: not delegated to XNNPACK, "
                                      "and the runtime has no portable kernel for it") from exc
        raise


def _numerics(model, method, held_out, task: str) -> dict:
    """The exported program itself (not the quantized torch graph) against the fp32 eager model."""
    import torch

    from qbench.collectors.numerics import compare_outputs, first_output, looks_like_classifier

    refs, outs = [], []
    with torch.no_grad():
        for batch in held_out:
            refs.append(first_output(model(*batch)))
            outs.append(first_output(method.execute(list(batch))))
    classifier = task == "classifier" or (task == "auto" and looks_like_classifier(refs[0]))
    return compare_outputs(refs, outs, classifier)
