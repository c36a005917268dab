"""A tiny Llama-architecture causal LM with random weights, written as a transformers
`save_pretrained` folder, offline: what suites/llm.yaml and the tests measure (no checkpoint is
downloaded; its tokens are meaningless, its shapes and ops those of a Llama)."""

from __future__ import annotations

from pathlib import Path

TINY_LLAMA = dict(vocab_size=1024, hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                  initializer_range=0.2)  # wide enough that greedy tokens vary (0.02 repeats one token)


def make_tiny_llama(folder: Path, seed: int = 0, **overrides) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    if (folder / "config.json").is_file() and not overrides:
        return folder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(**{**TINY_LLAMA, **overrides}))
    model.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    import sys

    print(make_tiny_llama(Path(sys.argv[1] if len(sys.argv) > 1 else "suites/models/tiny-llama")))
