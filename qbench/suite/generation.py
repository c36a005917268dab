"""`task: text-generation` in a suite: what the schema fills in for such a model.

Its inputs are the prefill's token ids (`generate.prompt_tokens` of them), so the suite need not
spell them; `generate:` defaults apply when it is left out. Cheap to import.
"""

from __future__ import annotations


def generation_defaults(data):
    """A model mapping with `task: text-generation` gets `generate: {}` and `inputs` (token ids
    [1, prompt_tokens]) unless it gives them; anything else is returned as is."""
    if not isinstance(data, dict) or data.get("task") != "text-generation":
        return data
    data = dict(data)
    generate = data.setdefault("generate", {})
    prompt = generate.get("prompt_tokens", 128) if isinstance(generate, dict) else 128
    prompt = prompt[0] if isinstance(prompt, list) and prompt else prompt  # a sweep: the preflight takes the first
    if "inputs" not in data and isinstance(prompt, int) and not isinstance(prompt, bool) and prompt > 0:
        data["inputs"] = [{"shape": [1, prompt], "dtype": "int64", "range": [0, 2]}]
    return data


AXES = ("prompt_tokens", "new_tokens", "max_seq_len")


def _values(spec, axis: str) -> list:
    value = getattr(spec, axis)
    return list(value) if isinstance(value, list) else [value]


def points(spec) -> list:
    """Every combination of a GenerateSpec's values, each a GenerateSpec of single values (in order)."""
    import itertools

    combos = itertools.product(*(_values(spec, a) for a in AXES))
    return [spec.model_copy(update=dict(zip(AXES, combo))) for combo in combos]


def swept(spec) -> tuple[str, ...]:
    return tuple(a for a in AXES if len(_values(spec, a)) > 1)


def label(point, axes: tuple[str, ...]) -> str:
    """`prompt_tokens=32 new_tokens=64` (swept axes only); '' when nothing is swept."""
    return " ".join(f"{a}={getattr(point, a)}" for a in axes)


def model_points(spec) -> list[tuple[object, str]]:
    """(the model spec with one generate point, its sweep label) for each point; (spec, '') for a
    model without `generate:`."""
    if spec.generate is None:
        return [(spec, "")]
    axes = swept(spec.generate)
    return [(spec.model_copy(update={"generate": p}), label(p, axes)) for p in points(spec.generate)]
