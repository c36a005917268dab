"""Everything that can be known to be wrong before the first cell starts.

Schema errors come from loader.py; here: duplicate names, unknown sources/recipes/devices, missing
files, factories that are not in their file, recipe options, calibration that a recipe needs, and a
preflight forward pass proving each model accepts its declared inputs. All problems are reported
together, each with file:line and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from qbench.errors import SuiteError
from qbench.suite.loader import LoadedSuite, Problems
from qbench.suite.schema import NpzCalibration, PythonCalibration, RecipeSpec


@dataclass(frozen=True)
class ResolvedRecipe:
    name: str
    kind: str
    options: BaseModel
    spec: RecipeSpec

    @property
    def recipe(self):
        from qbench.quantize import RECIPES

        return RECIPES.get(self.kind)


@dataclass(frozen=True)
class CheckedSuite:
    loaded: LoadedSuite
    recipes: list[ResolvedRecipe]
    device_names: list[str]

    @property
    def suite(self):
        return self.loaded.suite


def check_suite(loaded: LoadedSuite, devices: list[str] | None = None, preflight: bool = True) -> CheckedSuite:
    from qbench.devices.profiles import load_profile
    from qbench.models import SOURCES, split_source
    from qbench.quantize import RECIPES

    suite, problems = loaded.suite, Problems(loaded.path, loaded.root)
    _unique(problems, "models", [m.name for m in suite.models])
    _unique(problems, "recipes", [r.name for r in suite.recipes])

    for i, model in enumerate(suite.models):
        try:
            kind, ref = split_source(model.source)
            if kind not in SOURCES:
                problems.add(["models", i, "source"], f"unknown source kind {kind!r}; choose one of: {', '.join(SOURCES.names())}")
            elif (problem := SOURCES.get(kind).check(ref, loaded.base_dir)) is not None:
                problems.add(["models", i, "source"], problem)
        except ValueError as exc:
            problems.add(["models", i, "source"], str(exc))
        if model.weights and not loaded.resolve(model.weights).is_file():
            problems.add(["models", i, "weights"], f"{loaded.resolve(model.weights)}: no such file")
        if model.calibration is not None:
            _check_calibration(problems, loaded, ["models", i, "calibration"], model.calibration)
    if suite.calibration is not None:
        _check_calibration(problems, loaded, ["calibration"], suite.calibration)

    resolved = []
    for i, spec in enumerate(suite.recipes):
        if spec.kind not in RECIPES:
            problems.add(["recipes", i, "kind"], f"unknown recipe kind {spec.kind!r}; choose one of: {', '.join(RECIPES.names())}")
            continue
        recipe = RECIPES.get(spec.kind)
        try:
            options = recipe.Options.model_validate(spec.options())
        except ValidationError as exc:
            problems.add_validation_error(exc, recipe.Options, base_loc=["recipes", i])
            continue
        resolved.append(ResolvedRecipe(spec.name, spec.kind, options, spec))
        if recipe.needs_calibration:
            lacking = [m.name for m in suite.models if (m.calibration or suite.calibration) is None]
            if lacking:
                problems.add(
                    ["recipes", i],
                    f"recipe {spec.name!r} (kind {spec.kind}) needs calibration data, and model(s) "
                    f"{', '.join(map(repr, lacking))} have none: add e.g. `calibration: {{kind: random, samples: 32}}` "
                    "to the suite or to the model",
                )

    device_names = devices or list(suite.devices)
    for j, name in enumerate(device_names):
        try:
            profile = load_profile(name, loaded.base_dir)
        except SuiteError as exc:
            if devices:  # came from the command line, not the file
                problems.lines.append(f"--device {name}: {exc}")
            else:
                problems.add(["devices", j], str(exc))
            continue
        if profile.transport != "host" and any(r.kind == "eager" for r in resolved):
            problems.add(["recipes"], f"the eager reference runs only on the host, not on {name!r}")

    problems.raise_if_any(f"{loaded.path}: suite has problems")
    if preflight:
        _preflight(loaded, problems)
        problems.raise_if_any(f"{loaded.path}: models do not accept their declared inputs")
    return CheckedSuite(loaded, resolved, device_names)


def _unique(problems: Problems, key: str, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            problems.add([key, i, "name"], f"duplicate name {name!r} (also {key}[{seen[name]}])")
        seen.setdefault(name, i)


def _check_calibration(problems: Problems, loaded: LoadedSuite, loc: list, spec) -> None:
    from qbench.models.python_source import check_callable

    if isinstance(spec, NpzCalibration) and not loaded.resolve(spec.path).is_file():
        problems.add(loc + ["path"], f"{loaded.resolve(spec.path)}: no such file")
    if isinstance(spec, PythonCalibration) and (problem := check_callable(spec.fn, loaded.base_dir)):
        problems.add(loc + ["fn"], problem)


def _preflight(loaded: LoadedSuite, problems: Problems) -> None:
    """Build each model and run one forward pass with its declared inputs (cheap, catches bad shapes)."""
    import torch

    from qbench.models.loading import build_model
    from qbench.quantize.calibration import example_inputs

    for i, spec in enumerate(loaded.suite.models):
        try:
            model = build_model(spec, loaded.base_dir)
        except Exception as exc:
            problems.add(["models", i, "source"], f"building model {spec.name!r} failed: {type(exc).__name__}: {exc}")
            continue
        shapes = ", ".join(f"{s.dtype}{s.shape}" for s in spec.inputs)
        try:
            with torch.no_grad():
                model(*example_inputs(spec.inputs))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.add(["models", i, "inputs"], f"model {spec.name!r} does not accept inputs {shapes}: {first}")
