"""A model's outputs as named leaves: dicts, tuples, lists and nested mixes (PyTorch pytrees).

Flattened exactly as torch.export and ExecuTorch flatten them (torch.utils._pytree: dict keys in
insertion order, sequences by index, None kept as a leaf), so leaf i of the eager model is output i
of the exported program and of the runners' `--outputs` file. A leaf is named by its path with dots:
`out`, `aux`, `0.logits`; a model that returns one plain tensor has the single leaf `output`.
"""

from __future__ import annotations

from typing import Any

SOLE_OUTPUT = "output"  # the name of a model's only output when it returns a bare tensor


def output_leaves(out) -> list[tuple[str, Any]]:
    """[(name, leaf)] in the exported program's output order; leaves may be None or numbers."""
    from torch.utils import _pytree as pytree

    flat, _ = pytree.tree_flatten_with_path(out)
    return [(_path_name(path), leaf) for path, leaf in flat]


def _path_name(path) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "idx", "name"):  # MappingKey, SequenceKey, GetAttrKey (dataclass outputs)
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return ".".join(parts) or SOLE_OUTPUT


def tensor_names(leaves: list[tuple[str, Any]]) -> list[str]:
    import torch

    return [name for name, leaf in leaves if isinstance(leaf, torch.Tensor)]


def headline_name(leaves: list[tuple[str, Any]], chosen: str | None) -> str:
    """The output the headline metrics use: the suite's `output:`, else the first tensor leaf."""
    names = tensor_names(leaves)
    if not names:
        raise ValueError("the model returns no tensor (its outputs: "
                         f"{', '.join(f'{n}={type(v).__name__}' for n, v in leaves) or 'nothing'})")
    if chosen is None:
        return names[0]
    if chosen not in names:
        raise ValueError(unknown_output(chosen, names))
    return chosen


def unknown_output(chosen: str, names: list[str]) -> str:
    return f"the model has no tensor output {chosen!r}; its outputs are: {', '.join(names)}"


def select_output(out, chosen: str | None):
    """The leaf the headline metrics use (the suite's `output:`, or the first tensor leaf)."""
    leaves = output_leaves(out)
    name = headline_name(leaves, chosen)
    return dict(leaves)[name]


def describe(leaves: list[tuple[str, Any]]) -> list[dict]:
    """{name, dtype, shape} per leaf: what an artifact records so a runner's flat outputs get names."""
    import torch

    out = []
    for name, leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            out.append({"name": name, "dtype": str(leaf.dtype).replace("torch.", ""), "shape": list(leaf.shape)})
        else:
            out.append({"name": name, "dtype": "none" if leaf is None else type(leaf).__name__, "shape": []})
    return out


def read_runner_outputs(blob: bytes, reported: list[dict]) -> list:
    """The flat output leaves a runner wrote with `--outputs`, split by the `{dtype, shape}` it reported
    per output (contract.md); a `none` output has no bytes and reads as None. Zip with the artifact's
    `outputs` names for `collectors.numerics.compare_leaves`."""
    import math

    import torch

    leaves, offset = [], 0
    for info in reported:
        if info["dtype"] == "none":
            leaves.append(None)
            continue
        dtype = getattr(torch, info["dtype"])
        count = math.prod(info["shape"])
        size = count * torch.empty((), dtype=dtype).element_size()
        chunk = bytearray(blob[offset: offset + size])
        if len(chunk) != size:
            raise ValueError(f"outputs file has {len(blob)} bytes, fewer than the reported outputs need")
        leaves.append(torch.frombuffer(chunk, dtype=dtype).reshape(info["shape"]) if count else
                      torch.empty(info["shape"], dtype=dtype))
        offset += size
    if offset != len(blob):
        raise ValueError(f"outputs file has {len(blob)} bytes, the reported outputs {offset}")
    return leaves
