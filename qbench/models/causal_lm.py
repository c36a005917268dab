"""A causal language model (`task: text-generation`) made exportable with its KV cache.

The cache variant is "static cache, mutable buffers": transformers' StaticCache registered as
buffers of the module (transformers.integrations.executorch), written in place by each call, so the
program carries its own cache and needs only standard ATen ops. ExecuTorch's LLM custom ops
(custom SDPA, update_cache) have no kernel library in the pinned wheel a native runner could link,
so they are not used.

The exported method is `forward(input_ids int64 [1, T], cache_position int64 [T]) -> logits
float32 [1, vocab]` (the last position's logits only): the prefill passes the whole prompt (T =
prompt tokens), each decode step one token (T = 1). Cheap to import (no torch at module level).
"""

from __future__ import annotations

CACHE_VARIANT = "static cache, mutable buffers"
CAUSAL_NEEDED = "task text-generation needs a decoder-only causal LM (e.g. LlamaForCausalLM)"
CACHE_HINT = ("a static KV cache needs a transformers decoder-only model with attention layers StaticCache "
              "supports (the Llama, Qwen2, Mistral, Phi-3 families); for another architecture, measure its single "
              "forward pass instead (task: other, inputs: token ids)")


def causal_problem(config) -> str | None:
    """Why a transformers config is not a causal LM (None when it is one)."""
    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return None
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model, not a decoder-only causal LM"
    what = ", ".join(archs) if archs else f"model_type {getattr(config, 'model_type', '?')!r}"
    return f"{what} is not a causal language model (no *ForCausalLM architecture)"


def load_causal_lm(folder):
    """The transformers causal LM of a save_pretrained folder, offline, eager attention, fp32."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    problem = causal_problem(config)
    if problem:
        raise ValueError(problem)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True,
                                                              attn_implementation="eager", dtype="float32")
    return model.eval()


def generation_module(model, max_seq_len: int):
    """`model` (a transformers causal LM) wrapped with a static KV cache of max_seq_len positions."""
    import torch
    from transformers.integrations.executorch import TorchExportableModuleWithStaticCache

    model.generation_config.use_cache = True
    model.generation_config.cache_implementation = "static"
    cached = TorchExportableModuleWithStaticCache(model, batch_size=1, max_cache_len=max_seq_len)

    class Generator(torch.nn.Module):
        """forward(input_ids [1, T], cache_position [T]) -> logits of the last position [1, vocab]."""

        def __init__(self, inner):
            super().__init__()
            self.cached = inner
            self.max_seq_len = max_seq_len
            self.vocab_size = int(model.config.get_text_config().vocab_size)

        def forward(self, input_ids, cache_position):
            return self.cached(input_ids=input_ids, cache_position=cache_position)[:, -1, :]

    return Generator(cached).eval()


def kv_cache_bytes(module) -> int:
    """Bytes of the cache's key and value buffers: transformers' StaticCache (key_cache_N), ExecuTorch's
    KVCache (k_cache), else any buffer named *cache* (a `python:` module's own)."""
    buffers = [(name.rsplit(".", 1)[-1], b) for name, b in module.named_buffers()]
    known = [b for name, b in buffers if name.startswith(("key_cache_", "value_cache_")) or name in ("k_cache", "v_cache")]
    chosen = known or [b for name, b in buffers if "cache" in name]
    return int(sum(b.numel() * b.element_size() for b in chosen))


GENERATOR_CONTRACT = ("a text-generation model is a transformers causal LM (*ForCausalLM), ExecuTorch's Llama "
                      "Transformer, or an nn.Module with forward(input_ids int64 [1, T], cache_position int64 [T]) -> "
                      "logits [1, vocab], its KV cache in buffers, and int attributes max_seq_len and vocab_size")
MODULE_HINT = ("a cached module must pass torch.export.export(module, (input_ids, cache_position), strict=True) with "
               "a dynamic sequence length (1 … max_seq_len-1); try that on it")


def generator_for(model, max_seq_len: int):
    """A built model as qbench's cached generator (forward(input_ids, cache_position) -> logits [1, vocab]).
    ValueError when it cannot be one (what it is, what is expected)."""
    if callable(getattr(model, "with_kv_cache", None)):  # hf:FOLDER and llama:PARAMS
        return model.with_kv_cache(max_seq_len)
    if _transformers_model(model):
        if (problem := causal_problem(model.config)) is not None:
            raise ValueError(problem)
        return generation_module(model, max_seq_len)
    if _executorch_llama(model):
        from qbench.models.llama_source import from_transformer

        return from_transformer(model, max_seq_len)
    if is_cached_module(model):
        if model.max_seq_len < max_seq_len:
            raise ValueError(f"the module's KV cache holds {model.max_seq_len} positions, fewer than max_seq_len "
                             f"{max_seq_len}: lower generate.max_seq_len or build the module with a longer cache")
        return model
    raise ValueError(generation_problem(model)[1])


def generation_problem(model) -> tuple[str, str] | None:
    """(the suite key to blame, why) when a built model cannot generate; None when it can, as far as
    can be told without building its cache."""
    if callable(getattr(model, "with_kv_cache", None)) or _executorch_llama(model) or is_cached_module(model):
        return None
    if _transformers_model(model):
        problem = causal_problem(model.config)
        return None if problem is None else ("task", f"{problem}; {CAUSAL_NEEDED}")
    what = f"{type(model).__module__}.{type(model).__qualname__}"
    return "source", f"it gave a {what}, which cannot generate: {GENERATOR_CONTRACT}"


def cache_hint(model) -> str:
    """What to try when `model`'s cached generator does not export (its source may say it: `cache_hint`)."""
    if isinstance(getattr(model, "cache_hint", None), str):
        return model.cache_hint
    if _transformers_model(model):
        return CACHE_HINT
    if _executorch_llama(model):
        from qbench.models.llama_source import LLAMA_HINT

        return LLAMA_HINT
    return MODULE_HINT


def is_cached_module(model) -> bool:
    """A module already exposing the cached forward (the `python:` contract's third form)."""
    import inspect

    if not all(isinstance(getattr(model, a, None), int) for a in ("max_seq_len", "vocab_size")):
        return False
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 2


def _transformers_model(model) -> bool:
    import sys

    transformers = sys.modules.get("transformers")  # a transformers model was built: it is imported
    return transformers is not None and isinstance(model, transformers.PreTrainedModel)


def _executorch_llama(model) -> bool:
    cls = type(model)
    return cls.__module__ == "executorch.examples.models.llama.llama_transformer" and cls.__name__ == "Transformer"


def example_inputs(prompt_tokens: int):
    """The prefill's inputs (token ids 0..: only shapes matter for export)."""
    import torch

    return (torch.zeros(1, prompt_tokens, dtype=torch.long), torch.arange(prompt_tokens, dtype=torch.long))


def dynamic_shapes(max_seq_len: int):
    """The sequence length is dynamic: prefill (T = prompt) and decode (T = 1) run one method."""
    import torch

    seq = torch.export.Dim("seq", min=1, max=max_seq_len - 1)
    return ({1: seq}, {0: seq})


_LCG_MUL, _LCG_ADD, _MASK = 6364136223846793005, 1442695040888963407, (1 << 64) - 1


def prompt_ids(seed: int, count: int, vocab: int) -> list[int]:
    """The seeded prompt every runner builds (the same 64-bit LCG in python_runner.py and the native
    runner's generate.h): token ids in [0, vocab)."""
    state, ids = (seed * _LCG_MUL + _LCG_ADD) & _MASK, []
    for _ in range(count):
        state = (state * _LCG_MUL + _LCG_ADD) & _MASK
        ids.append((state >> 33) % vocab)
    return ids
