"""A tiny Llama-architecture causal LM with random weights, offline: what suites/llm.yaml and the
tests measure (no checkpoint is downloaded; its tokens are meaningless, its shapes and ops those of
a Llama). Written as a transformers `save_pretrained` folder (`hf:`), or as ExecuTorch's own
params.json with an optional consolidated.00.pth checkpoint (`llama:`)."""

from __future__ import annotations

from pathlib import Path

TINY_LLAMA = dict(vocab_size=1024, hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                  initializer_range=0.2)  # wide enough that greedy tokens vary (0.02 repeats one token)


def make_tiny_llama(folder: Path, seed: int = 0, text: Path | None = None, **overrides) -> Path:
    """The model folder; with `text`, a word-level tokenizer.json learnt from it too (perplexity)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    if text is not None and not (folder / "tokenizer.json").is_file():
        write_word_tokenizer(folder, Path(text).read_text(encoding="utf-8"),
                             overrides.get("vocab_size", TINY_LLAMA["vocab_size"]))
    if (folder / "config.json").is_file() and not overrides:
        return folder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(**{**TINY_LLAMA, **overrides}))
    model.save_pretrained(folder)
    return folder


TINY_PARAMS = dict(dim=128, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=1024, hidden_dim=384, norm_eps=1e-5)


def make_tiny_llama_params(folder: Path, checkpoint: bool = False, seed: int = 1, **overrides) -> Path:
    """`folder`/params.json (ExecuTorch's ModelArgs) and, with `checkpoint`, `folder`/consolidated.00.pth:
    the seeded random weights of that Transformer, saved as ExecuTorch users' checkpoints are (a state_dict
    of the Transformer's parameters). Returns the params file."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = {**TINY_PARAMS, **overrides}
    (folder / "params.json").write_text(json.dumps(params, indent=1) + "\n")
    if checkpoint:
        _tiny_checkpoint(params, folder / "consolidated.00.pth", seed)
    return folder / "params.json"


def _tiny_checkpoint(params: dict, path: Path, seed: int) -> None:
    import torch
    from executorch.examples.models.llama.llama_transformer import construct_transformer
    from executorch.examples.models.llama.model_args import ModelArgs

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = construct_transformer(ModelArgs(**params))
    torch.save({name: p.detach().clone() for name, p in transformer.named_parameters()}, path)


def write_word_tokenizer(folder: Path, text: str, vocab_size: int) -> Path:
    """A word-level HF tokenizer (tokenizer.json) of the text's most frequent words and punctuation,
    at most vocab_size ids ([UNK] = 0), built offline and deterministically (ties: alphabetical)."""
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    pre = pre_tokenizers.Whitespace()
    counts = Counter(word for word, _ in pre.pre_tokenize_str(text.lower()))
    words = sorted(counts, key=lambda w: (-counts[w], w))[: vocab_size - 1]
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--params":  # python -m qbench.testing.tiny_llm --params FOLDER
        print(make_tiny_llama_params(Path(sys.argv[2]), checkpoint="--checkpoint" in sys.argv[3:]))
    else:  # python -m qbench.testing.tiny_llm [FOLDER [TEXT]]: the model and a tokenizer learned from TEXT
        target = Path(sys.argv[1] if len(sys.argv) > 1 else "suites/models/tiny-llama")
        text = Path(sys.argv[2] if len(sys.argv) > 2 else "suites/data/llm-text.txt")
        print(make_tiny_llama(target, text=text if text.is_file() else None))
