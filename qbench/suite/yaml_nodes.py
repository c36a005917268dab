"""YAML parsing that remembers where every value came from, so errors can cite file:line.

We keep PyYAML's node tree next to the plain data and walk it with a pydantic error location.
Duplicate keys are rejected (PyYAML would silently keep the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml


class YamlSyntaxError(Exception):
    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def parse(path: Path) -> tuple[Any, yaml.Node | None]:
    """Return (data, root node). Raises YamlSyntaxError citing path:line:column."""
    text = path.read_text(encoding="utf-8")
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise YamlSyntaxError(where, f"{exc.problem or exc}" + (f" ({exc.context})" if exc.context else "")) from None
    finally:
        loader.dispose()
    return data, node


def locate(root: yaml.Node | None, loc: Iterable[Any]) -> tuple[int | None, str]:
    """Follow a pydantic-style location into the node tree.

    Returns (1-based line of the deepest node reached, dotted path like `models[0].source`). Location
    parts that are not in the document (pydantic's union tags, a missing key) are skipped for the
    line but kept in the path when they are real keys.
    """
    node, path = root, ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            if isinstance(node, yaml.SequenceNode) and 0 <= part < len(node.value):
                node = node.value[part]
            continue
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    path += f".{part}" if path else str(part)
                    node = value_node
                    break
            else:
                # a missing required key, or a union tag pydantic put in the location
                if part not in _UNION_TAGS:
                    path += f".{part}" if path else str(part)
        else:
            if part not in _UNION_TAGS:
                path += f".{part}" if path else str(part)
    line = node.start_mark.line + 1 if node is not None else None
    return line, path


def key_line(root: yaml.Node | None, loc: Iterable[Any], key: str) -> int | None:
    """Line of `key` itself inside the mapping at `loc` (for 'unknown key' errors)."""
    node = root
    for part in loc:
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode) and part < len(node.value):
            node = node.value[part]
        elif isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), node)
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return key_node.start_mark.line + 1
    return None


# pydantic adds these to an error's location for tagged unions and function validators
_UNION_TAGS = {"random", "npz", "python", "sklearn", "imagefolder", "function-after", "function-before", "function-wrap"}
