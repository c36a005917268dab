"""`python:path/to/file.py:factory` or `python:package.module:factory`: a user's factory function."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES
from qbench.user_code import callable_fingerprint, check_callable, load_callable, resolve_ref


class PythonSource:
    def resolve(self, ref: str, base_dir: Path) -> str:
        return resolve_ref(ref, base_dir)

    def check(self, ref: str) -> str | None:
        return check_callable(ref)

    def build(self, ref: str):
        return load_callable(ref)()

    def fingerprint(self, ref: str) -> str:
        return callable_fingerprint(ref)


SOURCES.register("python")(PythonSource())
