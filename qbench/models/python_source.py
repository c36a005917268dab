"""`python:path/to/file.py:factory` or `python:package.module:factory`: a user's factory function."""

from __future__ import annotations

from pathlib import Path

from qbench.models.base import SOURCES
from qbench.user_code import callable_fingerprint, check_callable, load_callable


class PythonSource:
    def check(self, ref: str, base_dir: Path) -> str | None:
        return check_callable(ref, base_dir)

    def build(self, ref: str, base_dir: Path):
        return load_callable(ref, base_dir)()

    def fingerprint(self, ref: str, base_dir: Path) -> str:
        return callable_fingerprint(ref, base_dir)


SOURCES.register("python")(PythonSource())
