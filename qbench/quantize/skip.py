"""Mixed precision: modules a recipe leaves in fp32, by type (`Linear`, `torch.nn.Conv2d`) or by
qualified name (`features.0`, as in `model.named_modules()`; a name covers everything inside it).

Two views of the same choice: a node filter for the PT2E quantizers (nodes remember the modules they
came from in `nn_module_stack`) and a module filter for torchao's `quantize_`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SkipSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    module_types: list[str] = Field(default_factory=list, description="module classes kept in fp32, e.g. "
                                                                       "Linear or torch.nn.Conv2d")
    modules: list[str] = Field(default_factory=list, description="qualified module names kept in fp32 (as in "
                                                                 "named_modules(); covers what is inside)")

    def __bool__(self) -> bool:
        return bool(self.module_types or self.modules)


class QuantizeOnly(SkipSpec):
    """Not suite syntax: `qbench sensitivity`'s "only this layer quantized" variants. Every node whose
    innermost module is not one of `layers` stays fp32 (a name here is exact, not a prefix: quantizing
    only `spiky` leaves its child `spiky.up` fp32). Passed in place of a recipe's `skip:`."""

    layers: list[str] = Field(default_factory=list)

    def __bool__(self) -> bool:
        return True


def _type_matches(type_name: str, wanted: str) -> bool:
    """`Linear` matches by class name; a dotted name matches the class it imports to (torch.nn.Linear is
    torch.nn.modules.linear.Linear)."""
    if "." not in wanted:
        return type_name.rsplit(".", 1)[-1] == wanted
    return type_name == _canonical(wanted)


def _canonical(dotted: str) -> str:
    import importlib

    module, _, attr = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
        return f"{cls.__module__}.{cls.__qualname__}"
    except (ImportError, AttributeError):
        return dotted


def _name_matches(path: str, wanted: str) -> bool:
    return path == wanted or path.startswith(wanted + ".")


def _normalize(path: str) -> str:
    return path[len("L['self']."):] if path.startswith("L['self'].") else path


def node_filter(skip: SkipSpec):
    """For XNNPACKQuantizer.set_filter_function: True = quantize this node."""
    if isinstance(skip, QuantizeOnly):
        return lambda node: innermost_module(node) in skip.layers

    def keep(node) -> bool:
        for path, type_name in node.meta.get("nn_module_stack", {}).values():
            type_name = type_name if isinstance(type_name, str) else f"{type_name.__module__}.{type_name.__qualname__}"
            if any(_type_matches(type_name, t) for t in skip.module_types):
                return False
            if any(_name_matches(_normalize(path), m) for m in skip.modules):
                return False
        return True

    return keep


def innermost_module(node) -> str:
    """The qualified name of the innermost module a graph node came from ('' for the root)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path, _ = list(stack.values())[-1]
    return _normalize(path)


def module_skipped(skip: SkipSpec, module, fqn: str) -> bool:
    """For torchao's quantize_ filter: a module inside a skipped name, or of a skipped type."""
    t = type(module)
    return any(_type_matches(f"{t.__module__}.{t.__qualname__}", w) for w in skip.module_types) or \
        any(_name_matches(fqn, m) for m in skip.modules)


def unknown_names(skip: SkipSpec, models) -> tuple[list[str], list[str]]:
    """Names and types that match no module of any of `models` (a typo leaves everything quantized)."""
    names, types = set(), set()
    for model in models:
        for fqn, mod in model.named_modules():
            names.add(fqn)
            types.add(f"{type(mod).__module__}.{type(mod).__qualname__}")
    bad_names = [m for m in skip.modules if not any(_name_matches(n, m) for n in names)]
    bad_types = [w for w in skip.module_types if not any(_type_matches(t, w) for t in types)]
    return bad_names, bad_types
