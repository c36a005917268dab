"""Relative paths in a suite resolve from the suite's folder, once, before anything uses them.

Afterwards every stage reads paths as they stand in the suite object (no `base_dir` threaded
through the pipeline). Each model source says which part of its ref is a path.
"""

from __future__ import annotations

from pathlib import Path

from qbench.suite.loader import LoadedSuite
from qbench.suite.schema import (ImageFolderDataset, NpzCalibration, NpzDataset, PythonCalibration, PythonDataset,
                                 TextDataset)


def resolve_paths(loaded: LoadedSuite) -> LoadedSuite:
    from dataclasses import replace

    base = loaded.base_dir
    suite = loaded.suite
    update = {
        "models": [_model(m, base) for m in suite.models],
        "datasets": [_dataset(d, base) for d in suite.datasets],
    }
    if suite.calibration is not None:
        update["calibration"] = _calibration(suite.calibration, base)
    return replace(loaded, suite=suite.model_copy(update=update))


def _path(text: str, base: Path) -> str:
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else base / p)


def _model(spec, base: Path):
    from qbench.models import SOURCES, split_source
    from qbench.user_code import resolve_ref

    update = {}
    try:
        kind, ref = split_source(spec.source)
        if kind in SOURCES:
            update["source"] = f"{kind}:{SOURCES.get(kind).resolve(ref, base)}"
    except ValueError:
        pass  # the check reports a malformed source with its line
    if spec.weights:
        update["weights"] = _path(spec.weights, base)
    if spec.calibration is not None:
        update["calibration"] = _calibration(spec.calibration, base)
    if spec.metric and spec.metric.startswith("python:"):
        update["metric"] = "python:" + resolve_ref(spec.metric.split(":", 1)[1], base)
    return spec.model_copy(update=update)


def _calibration(spec, base: Path):
    from qbench.user_code import resolve_ref

    if isinstance(spec, NpzCalibration):
        return spec.model_copy(update={"path": _path(spec.path, base)})
    if isinstance(spec, PythonCalibration):
        return spec.model_copy(update={"fn": resolve_ref(spec.fn, base)})
    return spec


def _dataset(spec, base: Path):
    from qbench.user_code import resolve_ref

    if isinstance(spec, (NpzDataset, ImageFolderDataset, TextDataset)):
        return spec.model_copy(update={"path": _path(spec.path, base)})
    if isinstance(spec, PythonDataset):
        return spec.model_copy(update={"fn": resolve_ref(spec.fn, base)})
    return spec
