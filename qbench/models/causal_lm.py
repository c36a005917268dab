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
    """Bytes of the static cache's key and value buffers."""
    return int(sum(b.numel() * b.element_size() for name, b in module.named_buffers()
                   if name.rsplit(".", 1)[-1].startswith(("key_cache_", "value_cache_"))))


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
