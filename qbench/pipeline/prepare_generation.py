"""Prepare a `task: text-generation` variant: the causal LM with a static KV cache, the recipe
(quantize/generation.py), the .pte (export/generation.py), and its generation quality on the host
runtime (token agreement and logits SQNR against the fp32 eager model on the seeded prompt).

Called by prepare.py on a cache miss; the artifact records the cache variant and KV-cache bytes.
"""

from __future__ import annotations

import time

from qbench.errors import CellError
from qbench.export.cache import Artifact


def build_generation_pte(variant, key, staging, models, on_stage, dataset=None) -> Artifact:
    """`dataset`: the model's `kind: text` data set (perplexity), or None."""
    from qbench.models.causal_lm import CACHE_VARIANT, cache_hint, kv_cache_bytes

    spec, recipe = variant.model, variant.recipe
    gen = spec.generate
    on_stage("build model")
    built = _stage("model", lambda: models.get(spec))
    module = _generator(built, gen.max_seq_len)
    on_stage("quantize")
    t0 = time.perf_counter()
    quantized, record = _stage("quantize", lambda: _quantize(recipe, module))
    quantize_s = time.perf_counter() - t0
    on_stage("lower")
    t0 = time.perf_counter()
    lowered = _lower(quantized, gen, staging, cache_hint(built))
    export_s = time.perf_counter() - t0
    on_stage("numerics")
    quality = _stage("numerics", lambda: _quality(built, staging / "model.pte", gen))
    extra = {**record, "generation": {"cache": CACHE_VARIANT, "kv_cache_bytes": kv_cache_bytes(module),
                                      "max_seq_len": gen.max_seq_len, "vocab_size": module.vocab_size,
                                      "host_quality": quality, **_random_weights(spec)}}
    if dataset is not None:
        on_stage("perplexity")
        extra["generation"]["perplexity"] = _stage("dataset", lambda: _perplexity(
            built, staging / "model.pte", spec, dataset))
    return Artifact(key=key, dir=staging, program="model.pte", kind="pte", program_bytes=lowered.pte_bytes,
                    arena_bytes=lowered.arena_bytes, delegation=lowered.delegation,
                    numerics={"extra": extra}, timings={"quantize_s": quantize_s, "export_s": export_s},
                    outputs=[{"name": "logits", "dtype": "float32", "shape": [1, module.vocab_size]}])


def _generator(built, max_seq_len: int):
    """The model with its KV cache; a model whose cache cannot be made says why and what to try."""
    from qbench.models.causal_lm import cache_hint, generator_for

    try:
        return generator_for(built, max_seq_len)
    except Exception as exc:
        raise CellError("export", f"cannot export with a KV cache: {_first_line(exc)} — {cache_hint(built)}") from exc


def _random_weights(spec) -> dict:
    """`weights: random` for ExecuTorch's Llama definition without a checkpoint (its seeded initialisation);
    an hf folder or a factory carries its own weights, whatever they are."""
    from qbench.models import split_source

    return {"weights": "random"} if split_source(spec.source)[0] == "llama" and not spec.weights else {}


def _quantize(recipe, module):
    from qbench.quantize.generation import quantize_generator

    return quantize_generator(recipe.kind, recipe.options, module)


def _lower(module, gen, staging, hint: str):
    """torch.export with the cache, then XNNPACK; a model that cannot export says why and what to try."""
    import contextlib
    import io

    from qbench.export.generation import lower_generator

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return lower_generator(module, gen.prompt_tokens, gen.max_seq_len, staging / "model.pte")
    except Exception as exc:
        raise CellError("export", f"cannot export with a KV cache: {_first_line(exc)} — {hint}") from exc


def _stage(stage: str, fn):
    """One step; any failure becomes a CellError naming the stage (as prepare.py's steps)."""
    try:
        return fn()
    except CellError:
        raise
    except Exception as exc:
        raise CellError(stage, _first_line(exc)) from exc


def _first_line(exc: Exception, limit: int = 200) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    head = lines[0][:limit] if lines else ""
    return f"{type(exc).__name__}: {head}" if head else type(exc).__name__


def _quality(built, pte, gen) -> dict:
    """The .pte on the host runtime against the fp32 eager model, on the seeded prompt."""
    from executorch.runtime import Runtime

    from qbench.collectors.generation_quality import compare, greedy, method_step, save_reference, torch_step
    from qbench.models.causal_lm import generator_for, prompt_ids
    from qbench.runtime_log import runtime_log_captured

    eager = generator_for(built, gen.max_seq_len)
    prompt = prompt_ids(gen.seed, gen.prompt_tokens, eager.vocab_size)
    with runtime_log_captured():
        method = Runtime.get().load_program(str(pte)).load_method("forward")
        tokens, logits = greedy(method_step(method), prompt, gen.new_tokens)
    save_reference(pte.parent, torch_step(eager), prompt, gen.new_tokens)  # what each device is judged against
    return compare(torch_step(eager), prompt, tokens, logits)


def _perplexity(built, pte, spec, dataset) -> dict:
    """The text's windows (kept in the artifact for each device), and the perplexity of the fp32 eager
    model and of the .pte on the host runtime over them."""
    from executorch.runtime import Runtime

    from qbench.collectors.generation_quality import method_step
    from qbench.collectors.perplexity import eager_nlls, perplexity, step_nlls, write_tokens
    from qbench.datasets.text import token_ids, windows
    from qbench.models import split_source
    from qbench.runtime_log import runtime_log_captured

    window = spec.generate.max_seq_len
    cut = windows(token_ids(dataset, split_source(spec.source)[1]), window, dataset.windows)
    if not cut:
        raise CellError("dataset", f"dataset {dataset.name!r} is shorter than one window of {window} tokens")
    write_tokens(pte.parent, cut)
    eager = eager_nlls(built.model, cut)
    with runtime_log_captured():
        host = step_nlls(method_step(Runtime.get().load_program(str(pte)).load_method("forward")), cut)
    return {"dataset": dataset.name, "window": window, "windows": len(cut), "tokens": len(eager),
            "fp32_eager": perplexity(sum(eager), len(eager)), "host": perplexity(sum(host), len(host))}
