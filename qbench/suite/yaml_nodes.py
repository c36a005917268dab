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


class NotYamlText(YamlSyntaxError):
    """The file is not UTF-8 text (binary junk, or saved in another encoding), or far too large to be a suite."""


# A suite or profile names its data by path; hand-written ones are a few KiB. The cap keeps a
# generated or hostile file (a million keys) from costing minutes and gigabytes to parse.
MAX_FILE_BYTES = 2 << 20


class _UniqueKeys:
    def construct_mapping(self, node, deep=False):
        from qbench.suite.echo import brief

        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a plain value, not {brief(key)}", key_node.start_mark) from None
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {brief(key)} (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


class _Loader(_UniqueKeys, yaml.SafeLoader):
    """The pure-Python parser: its messages are the clearer ones."""


# libyaml's parser when PyYAML was built with it: 3-4x faster on a large (generated) file
_FastLoader = type("_FastLoader", (_UniqueKeys, yaml.CSafeLoader), {}) if hasattr(yaml, "CSafeLoader") else _Loader


def parse(path: Path) -> tuple[Any, yaml.Node | None]:
    """Return (data, root node). Raises YamlSyntaxError citing path:line:column."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise NotYamlText(str(path), f"{size / 2**20:.1f} MiB is too large for a suite or device profile "
                                      f"(at most {MAX_FILE_BYTES >> 20} MiB; data belongs in the files it names)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise NotYamlText(f"{path}:{line}", f"not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at offset "
                                             f"{exc.start}); save it as UTF-8 YAML") from None
    try:
        return _compose(text, _FastLoader)
    except yaml.MarkedYAMLError as exc:
        error = exc
    if _FastLoader is not _Loader:  # say what is wrong in the pure parser's words
        try:
            _compose(text, _Loader)
        except yaml.MarkedYAMLError as exc:
            error = exc
    mark = error.problem_mark or error.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    raise YamlSyntaxError(where, f"{error.problem or error}" + (f" ({error.context})" if error.context else ""))


def _compose(text: str, loader_class) -> tuple[Any, yaml.Node | None]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


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
            found = _entries(node).get(part)
            if found is not None:
                path += f".{part}" if path else str(part)
                node = found[1]
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
            found = _entries(node).get(part)
            node = found[1] if found is not None else node
    if isinstance(node, yaml.MappingNode):
        found = _entries(node).get(key)
        if found is not None:
            return found[0].start_mark.line + 1
    return None


def _entries(node: yaml.MappingNode) -> dict:
    """Key text -> (key node, value node), built once per mapping: locating each of N problems in
    a mapping of N keys stays linear, not quadratic."""
    index = getattr(node, "_qbench_entries", None)
    if index is None:
        index = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                index.setdefault(key_node.value, (key_node, value_node))
        node._qbench_entries = index
    return index


# pydantic adds these to an error's location for tagged unions and function validators
_UNION_TAGS = {"random", "npz", "python", "sklearn", "imagefolder", "function-after", "function-before", "function-wrap"}
