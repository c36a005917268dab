"""Shared bits of the benchmark scripts: building artifacts through qbench, and a bare timing loop."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def artifact(source: str, shape: list[int], recipe_kind: str, **options):
    """A (cached) artifact built by qbench's own prepare stage."""
    from qbench.export.cache import ArtifactCache
    from qbench.models.loading import BuiltModels
    from qbench.pipeline.grid import Variant
    from qbench.pipeline.prepare import prepare_variant
    from qbench.quantize import RECIPES
    from qbench.pipeline.check import ResolvedRecipe
    from qbench.suite.schema import ModelSpec, NumericsSpec, RandomCalibration, RecipeSpec

    spec = ModelSpec(name=source, source=source, inputs=[{"shape": shape}])
    recipe = ResolvedRecipe(recipe_kind, recipe_kind, RECIPES.get(recipe_kind).Options(**options),
                            RecipeSpec(name=recipe_kind, kind=recipe_kind))
    return prepare_variant(Variant(spec, recipe), calibration=RandomCalibration(kind="random", samples=16),
                           numerics=NumericsSpec(samples=2), cache=ArtifactCache(), models=BuiltModels())


def bare_loop_median_ms(pte: Path, inputs_file: Path, threads: int, seconds: float = 3.0, warmup: int = 10) -> float:
    """The floor: execute the program in this process, nothing around it but the clock."""
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    portable_lib._unsafe_reset_threadpool(threads)
    method = Runtime.get().load_program(str(pte)).load_method("forward")
    meta = method.metadata
    blob, tensors, off = inputs_file.read_bytes(), [], 0
    for i in range(meta.num_inputs()):
        info = meta.input_tensor_meta(i)
        tensors.append(torch.frombuffer(bytearray(blob[off:off + info.nbytes()]), dtype=torch.float32).reshape(list(info.sizes())))
        off += info.nbytes()
    for _ in range(warmup):
        method.execute(tensors)
    samples, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 20:
        t0 = time.perf_counter_ns()
        method.execute(tensors)
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e6
