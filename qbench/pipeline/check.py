"""Everything that can be known to be wrong before the first cell starts.

Schema errors come from loader.py; here: duplicate names, unknown sources/recipes/devices, missing
files, factories that are not in their file, recipe options, calibration that a recipe needs,
datasets (paths, functions, the names models refer to), metrics, and a preflight forward pass proving
each model builds offline, accepts its declared inputs and has the `output:` it names (and that a
recipe's `skip:` names modules that exist). All problems are reported together, each with file:line
and key. The user's code run here (importing a model's source, building it, the preflight pass) is
bounded by benchmark.timeout_seconds (time_limit.py), so a model that never returns is named instead
of hanging the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel, ValidationError

from qbench.devices.transports import is_local
from qbench.errors import SuiteError
from qbench.pipeline.resolve import resolve_paths
from qbench.pipeline.time_limit import TimeLimitExceeded, time_limit
from qbench.suite.loader import LoadedSuite, Problems
from qbench.suite.schema import NpzCalibration, PythonCalibration, RecipeSpec, Suite


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
    warnings: list[str] = field(default_factory=list)  # worth saying, not worth refusing the suite

    @property
    def suite(self):
        return self.loaded.suite

    def dataset_for(self, model):
        """The DatasetSpec a model names with `dataset:`, or None."""
        if model.dataset is None:
            return None
        return next(d for d in self.suite.datasets if d.name == model.dataset)


def check_suite(loaded: LoadedSuite, devices: list[str] | None = None, preflight: bool = True,
                models=None, prepared=None, resolve_devices: bool = True) -> CheckedSuite:
    """`models`: the run's BuiltModels, filled by the preflight so no model is built twice.
    `prepared(checked, model_spec)`: True when every variant of the model is already in the artifact
    cache; such a model passed this check when it was prepared (its file and inputs are in the key)
    and is neither imported nor built. `resolve_devices=False`: device profiles live elsewhere (a
    farm's workers own and check them)."""
    loaded = resolve_paths(loaded)
    suite, problems = loaded.suite, Problems(loaded.path, loaded.root)
    _unique(problems, "models", [m.name for m in suite.models])
    _unique(problems, "recipes", [r.name for r in suite.recipes])
    _unique(problems, "datasets", [d.name for d in suite.datasets])
    _check_datasets(problems, loaded)
    sources = _check_models(problems, loaded)
    from qbench.pipeline.check_generation import check_generation

    check_generation(problems, suite, sources)
    resolved = _resolve_recipes(problems, suite)
    device_names = devices or list(suite.devices)
    profiles, indexed = _load_profiles(problems, loaded, device_names if resolve_devices else [], devices, resolved)
    _check_host_affinity(problems, suite.benchmark, indexed, devices)
    checked = CheckedSuite(loaded, resolved, device_names)
    # a model whose every variant is cached passed this check when it was prepared (its file's
    # contents are in the key): importing it again would only cost time (and torch's import)
    cached = {i for i in sources if prepared is not None and prepared(checked, suite.models[i])}
    _import_sources(problems, suite, {i: src for i, src in sources.items() if i not in cached})
    problems.raise_if_any(f"{loaded.path}: suite has problems")
    from qbench.pipeline.thread_count import host_warnings

    checked = replace(checked, warnings=host_warnings(suite, profiles))
    if preflight:
        from qbench.models.loading import BuiltModels

        _preflight(checked, problems, models if models is not None else BuiltModels(), cached)
        problems.raise_if_any(f"{loaded.path}: models do not fit the suite (inputs, skipped modules)")
    return checked


def _check_models(problems: Problems, loaded: LoadedSuite) -> dict[int, tuple[str, str]]:
    """Each model's source spelling, weights file, calibration and data; returns model index ->
    (source kind, ref) for the sources that name a known kind (imported later, unless cached)."""
    from qbench.models import SOURCES, split_source

    suite = loaded.suite
    sources = {}
    for i, model in enumerate(suite.models):
        try:
            kind, ref = split_source(model.source)
            if kind not in SOURCES:
                problems.add(["models", i, "source"], f"unknown source kind {kind!r}; choose one of: {', '.join(SOURCES.names())}")
            else:
                sources[i] = kind, ref
        except ValueError as exc:
            problems.add(["models", i, "source"], str(exc))
        if model.weights and not Path(model.weights).is_file():
            problems.add(["models", i, "weights"], f"{model.weights}: no such file")
        if model.calibration is not None:
            _check_calibration(problems, loaded, ["models", i, "calibration"], model.calibration)
        _check_model_data(problems, loaded, i, model)
    if suite.calibration is not None:
        _check_calibration(problems, loaded, ["calibration"], suite.calibration)
    return sources


def _resolve_recipes(problems: Problems, suite: Suite) -> list[ResolvedRecipe]:
    """Each recipe's kind and validated options, and the calibration data it needs."""
    from qbench.quantize import RECIPES

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
            lacking = [m.name for m in suite.models if (m.calibration or suite.calibration or m.dataset) is None]
            if lacking:
                problems.add(
                    ["recipes", i],
                    f"recipe {spec.name!r} (kind {spec.kind}) needs calibration data, and model(s) "
                    f"{', '.join(map(repr, lacking))} have none: add e.g. `calibration: {{kind: random, samples: 32}}` "
                    "to the suite or to the model",
                )
    return resolved


def _load_profiles(problems: Problems, loaded: LoadedSuite, device_names: list[str], named: list[str] | None,
                   resolved: list[ResolvedRecipe]) -> tuple[list, dict]:
    """The device profiles by name: (the loaded ones, device index -> profile). `named`: devices from
    the command line (not in the file), whose problems are spelled `--device NAME`."""
    from qbench.devices.profiles import load_profile

    profiles, indexed = [], {}
    for j, name in enumerate(device_names):
        try:
            profile = load_profile(name, loaded.base_dir)
            profiles.append(profile)
            indexed[j] = profile
        except SuiteError as exc:
            if named:  # came from the command line, not the file
                problems.lines.append(f"--device {name}: {exc}")
            else:
                problems.add(["devices", j], str(exc))
            continue
        if not is_local(profile.transport) and any(not r.recipe.lowers_to_pte for r in resolved):
            problems.add(["recipes"], f"the eager reference runs only on the host, not on {name!r}")
    return profiles, indexed


def _import_sources(problems: Problems, suite: Suite, sources: dict[int, tuple[str, str]]) -> None:
    """Import each model's source (the user's file), bounded like the build."""
    from qbench.models import SOURCES

    limit = suite.benchmark.timeout_seconds
    for i, (kind, ref) in sources.items():
        try:
            with time_limit(limit, f"importing the source of model {suite.models[i].name!r}"):
                problem = SOURCES.get(kind).check(ref)
        except TimeLimitExceeded as exc:
            problem = str(exc)
        if problem is not None:
            problems.add(["models", i, "source"], problem)


def _check_host_affinity(problems: Problems, bench, profiles: dict, named: list[str] | None) -> None:
    """Core lists naming CPUs this host does not have (a remote device's are checked at session open,
    against the cores it reports). `named`: devices from the command line (not in the file)."""
    from qbench.pipeline.placement import host_affinity_problems

    for loc, message in host_affinity_problems(bench, profiles):
        if named and loc[0] == "devices":
            problems.lines.append(f"--device {named[loc[1]]}: {message}")
        else:
            problems.add(loc, message)


def _unique(problems: Problems, key: str, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            problems.add([key, i, "name"], f"duplicate name {name!r} (also {key}[{seen[name]}])")
        seen.setdefault(name, i)


def _check_calibration(problems: Problems, loaded: LoadedSuite, loc: list, spec) -> None:
    from qbench.user_code import check_callable

    if isinstance(spec, NpzCalibration) and not Path(spec.path).is_file():
        problems.add(loc + ["path"], f"{spec.path}: no such file")
    if isinstance(spec, PythonCalibration) and (problem := check_callable(spec.fn)):
        problems.add(loc + ["fn"], problem)


def _check_datasets(problems: Problems, loaded: LoadedSuite) -> None:
    from qbench.datasets import check_dataset

    for i, spec in enumerate(loaded.suite.datasets):
        if (found := check_dataset(spec)) is not None:
            problems.add(["datasets", i, found[0]], found[1])


def _check_model_data(problems: Problems, loaded: LoadedSuite, i: int, model) -> None:
    from qbench.user_code import check_callable

    names = [d.name for d in loaded.suite.datasets]
    if model.dataset is not None and model.dataset not in names:
        problems.add(["models", i, "dataset"], f"unknown dataset {model.dataset!r}; "
                     + (f"the suite defines: {', '.join(names)}" if names else "the suite has no `datasets:`"))
    if model.metric is not None:
        kind, _, ref = model.metric.partition(":")
        if kind != "python" or not ref:
            problems.add(["models", i, "metric"], f"a metric is python:FILE.py:FN (called as FN(outputs, labels)), "
                                                  f"got {model.metric!r}")
        elif (problem := check_callable(ref)) is not None:
            problems.add(["models", i, "metric"], problem)
        if model.dataset is None:
            problems.add(["models", i, "metric"], f"model {model.name!r} has a metric but no `dataset:` to score it on")


def _check_skips(loaded: LoadedSuite, problems: Problems, resolved: list[ResolvedRecipe], models: list) -> None:
    """A skip that names no module of any model is a typo that would silently quantize everything."""
    from qbench.quantize.skip import unknown_names

    for i, spec in enumerate(loaded.suite.recipes):
        recipe = next((r for r in resolved if r.spec is spec), None)
        skip = getattr(recipe.options, "skip", None) if recipe else None
        if not skip or not models:
            continue
        bad_names, bad_types = unknown_names(skip, models)
        for name in bad_names:
            problems.add(["recipes", i, "skip", "modules"], f"{name!r} is no module of any model in the suite")
        for name in bad_types:
            problems.add(["recipes", i, "skip", "module_types"], f"{name!r} is the type of no module in the suite's models")


def _check_output(problems: Problems, i: int, spec, out) -> None:
    """`output:` names one of the model's tensor leaves; a model must return at least one tensor."""
    from qbench.models.outputs import headline_name, output_leaves

    try:
        headline_name(output_leaves(out), spec.output)
    except ValueError as exc:
        problems.add(["models", i, "output" if spec.output else "source"], f"model {spec.name!r}: {exc}")


def _generator_ok(problems: Problems, i: int, spec, model) -> bool:
    """A text-generation model that can generate, and takes the preflight's forward pass of token ids
    (a module already exposing the cached forward(input_ids, cache_position) is not run here)."""
    from qbench.models.causal_lm import generation_problem, is_cached_module

    if (problem := generation_problem(model)) is not None:
        key, why = problem
        problems.add(["models", i, key], f"model {spec.name!r}: {why}")
        return False
    return not is_cached_module(model)


def _preflight(checked: CheckedSuite, problems: Problems, models, cached: set[int]) -> None:
    """Build each model not in `cached` (indices of models whose variants are all in the artifact
    cache) and run one forward pass with its declared inputs (cheap, catches bad shapes)."""
    loaded = checked.loaded
    if len(cached) == len(loaded.suite.models):
        return  # nothing to build, nothing to import (torch included)
    import torch

    from qbench.models.loading import DOWNLOAD_MESSAGE, DownloadAttempt, keyword_only_problem
    from qbench.inputs import example_inputs

    built = []
    limit = loaded.suite.benchmark.timeout_seconds
    for i, spec in enumerate(loaded.suite.models):
        if i in cached:
            continue
        try:
            with time_limit(limit, f"building model {spec.name!r}"):
                model = models.get(spec)
        except TimeLimitExceeded as exc:
            problems.add(["models", i, "source"], f"{exc}; does its factory wait for something?")
            continue
        except DownloadAttempt:
            problems.add(["models", i, "source"], DOWNLOAD_MESSAGE)
            continue
        except Exception as exc:
            problems.add(["models", i, "source"], f"building model {spec.name!r} failed: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(model, torch.nn.Module):
            kind = type(model).__name__ + (f" {model.__qualname__}" if hasattr(model, "__qualname__") else "")
            problems.add(["models", i, "source"], f"the source of model {spec.name!r} gave a {kind}, not a "
                         "torch.nn.Module: a factory returns the model itself (e.g. `return Net()`)")
            continue
        built.append(model)
        if spec.task == "text-generation" and not _generator_ok(problems, i, spec, model):
            continue
        if (problem := keyword_only_problem(model, spec.name, len(spec.inputs))) is not None:
            problems.add(["models", i, "inputs"], problem)
            continue
        shapes = ", ".join(f"{s.dtype}{s.shape}" for s in spec.inputs)
        try:
            with torch.no_grad(), time_limit(limit, f"one forward pass of model {spec.name!r} with inputs {shapes}"):
                out = model(*example_inputs(spec.inputs))
        except TimeLimitExceeded as exc:
            problems.add(["models", i, "inputs"], str(exc))
            continue
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.add(["models", i, "inputs"], f"model {spec.name!r} does not accept inputs {shapes}: {first}")
            continue
        _check_output(problems, i, spec, out)
    if not cached and len(built) == len(loaded.suite.models):  # judged against every model, or not at all
        _check_skips(loaded, problems, checked.recipes, built)
