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
    if "inputs" not in data and isinstance(prompt, int) and not isinstance(prompt, bool) and prompt > 0:
        data["inputs"] = [{"shape": [1, prompt], "dtype": "int64", "range": [0, 2]}]
    return data
