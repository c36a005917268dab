"""The suites and device profiles that ship with qbench.

The repository's top-level suites/ and device_profiles/ are the source of truth; qbench/_data/ holds
symlinks to them, which setuptools follows when it builds a wheel (package data). So a checkout, an
editable install and a wheel installed anywhere find the same files here.
"""

from __future__ import annotations

from pathlib import Path

_DATA = Path(__file__).resolve().parent / "_data"


def suites_dir() -> Path | None:
    path = _DATA / "suites"
    return path if path.is_dir() else None


def profiles_dir() -> Path | None:
    path = _DATA / "device_profiles"
    return path if path.is_dir() else None


def suite_names() -> list[str]:
    folder = suites_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder else []


def find_suite(path: Path) -> Path | None:
    """A bundled suite for `smoke`, `smoke.yaml` or `suites/smoke.yaml` when no such file exists here."""
    folder = suites_dir()
    if folder is None or path.exists() or len(path.parts) > 2 or (len(path.parts) == 2 and path.parts[0] != "suites"):
        return None
    candidate = folder / (path.stem + ".yaml")
    return candidate.resolve() if candidate.is_file() and path.suffix in ("", ".yaml") else None
