"""Load a suite file: YAML -> validated Suite, every error citing file:line and the key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError

from qbench.errors import SuiteError
from qbench.suite import yaml_nodes
from qbench.suite.echo import brief
from qbench.suite.schema import Suite


@dataclass(frozen=True)
class LoadedSuite:
    suite: Suite
    path: Path
    root: Any  # the YAML node tree, for citing lines in later checks

    @property
    def base_dir(self) -> Path:
        """Relative paths in a suite resolve from the suite's folder."""
        return self.path.parent

    def where(self, loc: Iterable[Any]) -> str:
        line, dotted = yaml_nodes.locate(self.root, loc)
        return f"{self.path}:{line}: {dotted}" if line else f"{self.path}: {dotted}"


MAX_PROBLEMS = 50  # listed per file; a generated file with a million bad keys is summarised
MAX_LINE = 400  # characters of one problem line


class Problems:
    """Collects every problem in a document so the user fixes them all in one go."""

    def __init__(self, path: Path, root: Any):
        self.path, self.root = path, root
        self.lines: list[str] = []
        self.unlisted = 0

    def add(self, loc: Iterable[Any], message: str, *, key: str | None = None) -> None:
        if len(self.lines) >= MAX_PROBLEMS:
            self.unlisted += 1
            return
        loc = list(loc)
        line, dotted = yaml_nodes.locate(self.root, loc)
        if key is not None:
            line = yaml_nodes.key_line(self.root, loc, key) or line
            dotted = f"{dotted}.{key}" if dotted else key
        prefix = f"{self.path}:{line}" if line else f"{self.path}"
        text = f"{prefix}: {dotted or '(top level)'}: {message}"
        self.lines.append(text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…")

    def add_validation_error(self, exc: ValidationError, model: type[BaseModel], base_loc=()) -> None:
        room = MAX_PROBLEMS - len(self.lines)
        if exc.error_count() > room:
            self.unlisted += exc.error_count() - max(room, 0)
        if room <= 0:
            return
        for err in exc.errors(include_url=False)[:room]:
            loc = list(base_loc) + list(err["loc"])
            if err["type"] == "extra_forbidden":
                parent, key = loc[:-1], str(loc[-1])
                allowed = _allowed_keys(model, [p for p in err["loc"][:-1]])
                hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
                self.add(parent, f"unknown key {brief(key)}{hint}", key=key)
            elif err["type"] == "missing":
                self.add(loc[:-1], f"missing required key {str(loc[-1])!r}")
            elif err["type"] == "union_tag_invalid":
                ctx = err.get("ctx", {})
                tags = str(ctx.get("expected_tags", "")).replace("'", "")
                self.add(loc + [ctx.get("discriminator", "kind").strip("'")],
                         f"unknown kind {brief(ctx.get('tag'))}; choose one of: {tags}")
            elif err["type"] == "literal_error":
                self.add(loc, _clean(err["msg"]) + f" (got {brief(err.get('input'))})")
            else:
                got = err.get("input")
                shown = f" (got {brief(got)})" if isinstance(got, (str, int, float, bool)) or got is None else ""
                self.add(loc, _clean(err["msg"]) + shown)

    def raise_if_any(self, title: str) -> None:
        if self.lines:
            self.lines.sort(key=_line_number)
            more = [f"… and {self.unlisted} more problem(s) not listed; fix these first"] if self.unlisted else []
            raise SuiteError(f"{title}\n" + "\n".join(f"  {line}" for line in self.lines + more))


def _line_number(text: str) -> int:
    """Problems are listed in file order; ones without a line (command-line flags) go last."""
    head = text.split(": ", 1)[0]
    tail = head.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 1 << 30


def _clean(msg: str) -> str:
    return msg.replace("Input should be", "should be").replace("Value error, ", "")


def _allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """Field names of the (sub)model at `loc`, for an 'unknown key' hint."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            continue
        if isinstance(current, list):  # a tagged union: pick the member whose `kind` is the tag
            current = next((m for m in current if _kind_of(m) == part), current)
            continue
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional/list; a union of several models becomes a list of them."""
    import typing

    for _ in range(6):
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated or origin in (list, tuple):
            annotation = args[0]
        elif origin is typing.Union or type(annotation).__name__ == "UnionType":
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if len(models) == 1:
                annotation = models[0]
            else:
                return models
        else:
            return annotation
    return annotation


def _kind_of(model: type[BaseModel]) -> Any:
    import typing

    field = model.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if args else None


def load_yaml(path: Path) -> tuple[Any, Any]:
    if not path.is_file():
        raise SuiteError(f"{path}: no such file")
    try:
        return yaml_nodes.parse(path)
    except yaml_nodes.NotYamlText as exc:
        raise SuiteError(str(exc)) from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml_nodes.YamlSyntaxError as exc:
        raise SuiteError(f"{exc.where}: malformed YAML: {str(exc).split(': ', 1)[-1]}") from None


def load_suite(path: str | Path) -> LoadedSuite:
    """Parse and validate the schema. Semantic checks (files, sources, recipes) live in pipeline/check.py."""
    path = Path(path)
    data, root = load_yaml(path)
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: a suite is a mapping with keys {', '.join(Suite.model_fields)}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems = Problems(path, root)
        problems.add_validation_error(exc, Suite)
        problems.raise_if_any(f"{path}: invalid suite")
        raise AssertionError("unreachable")
    return LoadedSuite(suite=suite, path=path, root=root)
