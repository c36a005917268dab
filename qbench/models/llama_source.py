"""`llama:PATH/params.json`: ExecuTorch's own Llama-family definition (`examples/models/llama`, shipped
in the executorch wheel), as ExecuTorch users have one: a params file (ModelArgs: dim, n_layers,
n_heads, n_kv_heads, vocab_size, …) and an optional checkpoint (`consolidated.00.pth`), given as
the model's `weights:`. Without a checkpoint the weights are seeded random ones.

The built model is the Transformer without a cache (its forward: token ids -> logits of the last
position); a text-generation cell rebuilds it with ExecuTorch's KVCache (mutable buffers, written
with index_copy_) for its `max_seq_len`, never with the custom SDPA / update_cache ops
(use_sdpa_with_kv_cache_op), which have no kernel library a native runner can link.
"""

from __future__ import annotations

import json
from pathlib import Path

from qbench.hashing import file_sha256
from qbench.models.base import SOURCES

REQUIRED_KEYS = ("dim", "n_layers", "n_heads", "vocab_size")
# what qbench sets itself, whatever the file says: no cache in the built model (a cell adds its own,
# of its max_seq_len), never the custom ops, logits of the last position only
LLAMA_HINT = ("ExecuTorch's Llama definition exports with its KVCache for plain Llama-family layers (attention_type "
              "mha, no moe or layer_types); for the others use ExecuTorch's export_llama, or measure one forward pass "
              "(task: other, inputs: token ids)")
NO_CACHE = dict(use_kv_cache=False, use_sdpa_with_kv_cache_op=False, enable_dynamic_shape=False,
                generate_full_logits=False, max_batch_size=1)


def read_params(path: Path) -> dict:
    """The params file as a dict; ValueError with the file, the key and the fix when it is unusable."""
    try:
        params = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the params file ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); a params file is ExecuTorch's params.json, "
                         'e.g. {"dim": 2048, "n_layers": 16, "n_heads": 32, "vocab_size": 128256}') from exc
    if not isinstance(params, dict):
        raise ValueError(f"{path}: a params file is a JSON object of ModelArgs fields, got {type(params).__name__}")
    if (problem := params_problem(params)) is not None:
        raise ValueError(f"{path}: {problem}")
    return params


def params_problem(params: dict) -> str | None:
    """The first missing or bad key, with the fix (None when the shapes can be built)."""
    for key in REQUIRED_KEYS:
        if key not in params:
            return f"missing key {key!r}: add it (ExecuTorch's ModelArgs needs {', '.join(REQUIRED_KEYS)})"
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            fix = " (Llama 2's -1 means 'from the tokenizer')" if key == "vocab_size" else ""
            return f"key {key!r} is {value!r}: set it to a positive integer{fix}"
    heads, kv_heads = params["n_heads"], params.get("n_kv_heads") or params["n_heads"]
    if isinstance(kv_heads, bool) or not isinstance(kv_heads, int) or kv_heads <= 0 or heads % kv_heads:
        return f"key 'n_kv_heads' is {kv_heads!r}: set it to a positive divisor of n_heads ({heads})"
    if "head_dim" not in params and params["dim"] % heads:
        return f"key 'dim' ({params['dim']}) is not a multiple of n_heads ({heads}): fix one of them or give head_dim"
    return None


def model_args(params: dict, path: Path, **overrides):
    """ExecuTorch's ModelArgs of the params file; an unknown key is named with the fix."""
    import dataclasses

    from executorch.examples.models.llama.model_args import ModelArgs

    fields = {f.name for f in dataclasses.fields(ModelArgs)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} (not a field of ExecuTorch's ModelArgs in executorch "
                         f"{_executorch_version()}): remove it or correct its spelling")
    return ModelArgs(**{**params, **overrides})


def _executorch_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("executorch")


def _definition(args):
    """The Transformer of `args` wrapped as qbench's model (built here so importing qbench never imports torch)."""
    import dataclasses

    import torch
    from executorch.examples.models.llama.llama_transformer import construct_transformer

    class LlamaDefinition(torch.nn.Module):
        """ExecuTorch's Llama Transformer, no cache: forward(input_ids) -> logits of the last position."""

        cache_hint = LLAMA_HINT

        def __init__(self):
            super().__init__()
            self.transformer = construct_transformer(args)
            self.vocab_size = args.vocab_size

        def forward(self, input_ids):
            return self.transformer(input_ids)

        def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
            """`weights:`, a checkpoint of the Transformer (consolidated.00.pth; a {"model": …} wrapper too)."""
            state = state_dict.get("model", state_dict) if isinstance(state_dict, dict) else state_dict
            checkpoint_problem(self.transformer, state)
            return self.transformer.load_state_dict(state, strict=False, assign=assign)

        def with_kv_cache(self, max_seq_len: int):
            """The same weights in a Transformer with ExecuTorch's KVCache of max_seq_len positions."""
            cached = dataclasses.replace(args, use_kv_cache=True, enable_dynamic_shape=True, max_seq_len=max_seq_len,
                                         max_context_len=max_seq_len, use_sdpa_with_kv_cache_op=False)
            return cached_generator(construct_transformer(cached), dict(self.transformer.named_parameters()), max_seq_len)

    return LlamaDefinition()


def checkpoint_problem(transformer, state: dict) -> None:
    """ValueError naming the first weight the checkpoint lacks or gives another shape than the params."""
    expected = dict(transformer.named_parameters())
    for name, param in expected.items():
        if name not in state:
            raise ValueError(f"the checkpoint has no tensor {name!r} that the params file's model needs "
                             f"({len(state)} tensors in it): it is not a checkpoint of this params file")
        shape = tuple(getattr(state[name], "shape", ()))
        if shape != tuple(param.shape):
            raise ValueError(f"checkpoint tensor {name!r} is {list(shape)}, the params file gives {list(param.shape)}: "
                             "the checkpoint and params.json are of different models")


def cached_generator(transformer, parameters: dict, max_seq_len: int):
    """`transformer` (built with use_kv_cache) holding `parameters`, as qbench's exported method
    forward(input_ids [1, T], cache_position [T]) -> logits [1, vocab]."""
    import warnings

    import torch

    # ExecuTorch's KVCache and RoPE call torch._check_is_size, deprecated in the pinned torch: a
    # FutureWarning per call site in every export and generation, about code the user cannot change
    warnings.filterwarnings("ignore", message="_check_is_size will be removed", category=FutureWarning)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            param.copy_(parameters[name])

    class LlamaGenerator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer
            self.max_seq_len = max_seq_len
            self.vocab_size = int(transformer.vocab_size)

        def forward(self, input_ids, cache_position):
            # ExecuTorch's dynamic-shape convention: input_pos is the first position, the cache and
            # RoPE are sliced from it for the T tokens
            return self.transformer(input_ids, {"input_pos": cache_position[:1]})

    return LlamaGenerator().eval()


def from_transformer(transformer, max_seq_len: int):
    """A user's ExecuTorch Llama Transformer (a `python:` factory's) rebuilt with the cache."""
    import dataclasses

    from executorch.examples.models.llama.llama_transformer import construct_transformer

    args = dataclasses.replace(transformer.params, use_kv_cache=True, enable_dynamic_shape=True,
                               max_seq_len=max_seq_len, max_context_len=max_seq_len, use_sdpa_with_kv_cache_op=False)
    return cached_generator(construct_transformer(args), dict(transformer.named_parameters()), max_seq_len)


class LlamaSource:
    def resolve(self, ref: str, base_dir: Path) -> str:
        path = Path(ref).expanduser()
        return str(path if path.is_absolute() else base_dir / ref)

    def check(self, ref: str) -> str | None:
        path = Path(ref)
        if not path.is_file():
            return f"{ref}: no such params file (llama:PATH names ExecuTorch's params.json)"
        try:
            read_params(path)
        except ValueError as exc:
            return str(exc)
        return None

    def build(self, ref: str):
        path = Path(ref)
        return _definition(model_args(read_params(path), path, **NO_CACHE))

    def fingerprint(self, ref: str) -> str:
        return f"executorch-llama-{_executorch_version()}:params={file_sha256(Path(ref))[:16]}"


SOURCES.register("llama")(LlamaSource())
