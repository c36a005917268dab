"""Suite checks for `task: text-generation` models (called from check.py), one line each:
the source must be one that can give a causal LM (a transformers folder, ExecuTorch's Llama params
file, a factory), a transformers folder's config a causal LM, and every recipe one that the KV-cache
export supports. What a factory returns is judged when it is built (check.py's preflight)."""

from __future__ import annotations

from qbench.models.causal_lm import CAUSAL_NEEDED
from qbench.quantize.generation import GENERATION_KINDS
from qbench.suite.loader import Problems

GENERATION_SOURCES = ("hf", "llama", "python")


def check_generation(problems: Problems, suite, sources: dict) -> None:
    """`sources`: model index -> (source kind, ref) of the models whose source kind is known."""
    _check_text_datasets(problems, suite, sources)
    generators = [i for i, m in enumerate(suite.models) if m.task == "text-generation"]
    if not generators:
        return
    for j, recipe in enumerate(suite.recipes):
        if recipe.kind not in GENERATION_KINDS:
            names = ", ".join(repr(suite.models[i].name) for i in generators)
            problems.add(["recipes", j, "kind"], f"recipe kind {recipe.kind!r} is not supported for text-generation "
                         f"model(s) {names}: use one of {', '.join(GENERATION_KINDS)}")
    for i in generators:
        if i not in sources:
            continue
        kind, ref = sources[i]
        if kind not in GENERATION_SOURCES:
            problems.add(["models", i, "source"], f"task text-generation needs an hf:FOLDER causal LM (a transformers "
                                                  "save_pretrained folder), llama:PARAMS.json (ExecuTorch's Llama "
                                                  f"definition) or a python: factory, got {kind}:")
            continue
        if kind == "hf" and (problem := _causal_problem(ref)) is not None:
            problems.add(["models", i, "task"], f"model {suite.models[i].name!r}: {problem}; {CAUSAL_NEEDED}")


def _causal_problem(ref: str) -> str | None:
    """The config's verdict; a folder that does not load is left to the source's own check."""
    import json
    from pathlib import Path

    from qbench.models.causal_lm import causal_problem

    config_path = Path(ref).expanduser() / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return None
    class Config:  # the two attributes causal_problem reads, without importing transformers
        architectures = config.get("architectures")
        is_encoder_decoder = config.get("is_encoder_decoder", False)
        model_type = config.get("model_type")
    return causal_problem(Config)


def _check_text_datasets(problems: Problems, suite, sources: dict) -> None:
    """A `kind: text` data set goes with a text-generation model (its perplexity), and such a model's
    data set is text its folder's tokenizer can cut into at least one window."""
    from qbench.suite.generation import points

    by_name = {d.name: d for d in suite.datasets}
    for i, model in enumerate(suite.models):
        spec = by_name.get(model.dataset)
        if spec is None:
            continue
        is_text = spec.kind == "text"
        if is_text != (model.task == "text-generation"):
            problems.add(["models", i, "dataset"], f"dataset {spec.name!r} is kind {spec.kind}: a `kind: text` data "
                         "set (perplexity) goes with `task: text-generation` models, and only such a one")
            continue
        if i in sources and sources[i][0] == "hf":
            window = max(p.max_seq_len for p in points(model.generate))
            if (problem := _text_problem(spec, sources[i][1], window)) is not None:
                problems.add(["models", i, "dataset"], problem)


def _text_problem(spec, ref: str, window: int) -> str | None:
    import json
    from pathlib import Path

    from qbench.datasets.text import check_text, text_problem

    if check_text(spec) is not None:
        return None  # the data set's own check says so
    try:
        vocab = json.loads((Path(ref).expanduser() / "config.json").read_text()).get("vocab_size")
    except (OSError, ValueError):
        return None  # the source's own check says so
    return text_problem(spec, ref, window, vocab)
