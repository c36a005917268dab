"""The `generation` block of a text-generation cell, as `--json`, the summary and the page show it.

One definition (pipeline/generation.py makes the figures): every rate and time is the median over
the trials used, and `ci` holds each one's 95% CI from the same two-level bootstrap as latency
(trials first, then generations or decode steps inside them).
"""

from __future__ import annotations

# figure -> where it sits in extra.generation
_CI_FIGURES = ("ttft_ms", "prefill_tokens_per_s", "decode_tokens_per_s", "decode_ms_per_token", "load_ms")


def generation_view(extra: dict | None) -> dict | None:
    """The cell's `generation` for --json (None for a model that does not generate)."""
    gen = (extra or {}).get("generation")
    if not gen or "decode_ms_per_token" not in gen:
        return None
    per_token = gen["decode_ms_per_token"]
    return {
        "prompt_tokens": gen["prompt_tokens"], "new_tokens": gen["new_tokens"],
        "ttft_ms": gen["ttft_ms"]["median"], "prefill_tokens_per_s": gen["prefill_tokens_per_s"]["median"],
        "decode_tokens_per_s": gen["decode_tokens_per_s"]["median"],
        "decode_ms_per_token": {"median": per_token["median"], "p90": per_token["p90"]},
        "load_ms": gen["load_ms"]["median"], "kv_cache_bytes": gen.get("kv_cache_bytes"),
        "token_agreement": gen.get("token_agreement"), "logits_sqnr_db": gen.get("logits_sqnr_db"),
        "quality_from": gen.get("quality_from"), "cache": gen.get("cache"),
        "peak_rss_bytes": gen.get("peak_rss_bytes"), "generations": gen.get("generations"),
        "ci": {name: [gen[name].get("ci_low"), gen[name].get("ci_high")] for name in _CI_FIGURES},
    }


def is_generative(row) -> bool:
    """A cell row (store) of a text-generation model: its samples are decode steps."""
    import json

    extra = row["extra"] if "extra" in row.keys() else None
    extra = json.loads(extra) if isinstance(extra, str) else (extra or {})
    return "decode_ms_per_token" in (extra.get("generation") or {})


def tokens_per_s(ms_per_token: float | None) -> float | None:
    return 1000.0 / ms_per_token if ms_per_token else None


def decode_regression_reason(base_ms: float | None, new_ms: float | None, ratio_text: str, threshold: float) -> str:
    """The gate's line for a slower decode: in tokens/s, the unit users read (the CI is the ratio of
    ms per token, new/base, so above 1 means fewer tokens/s)."""
    base, new = tokens_per_s(base_ms), tokens_per_s(new_ms)
    return (f"decode tokens/s {base:.1f} → {new:.1f} (ms per token {ratio_text} new/base), "
            f"beyond +{threshold:.0%}")


def _figure(key: str, digits: int):
    def text(cell: dict) -> str:
        value = (cell.get("generation") or {}).get(key)
        return "" if value is None else f"{float(value):.{digits}f}"

    return text


def generation_columns():
    """The summary's columns for text-generation cells (their `median ms` is ms per decoded token)."""
    from qbench.report.table import Column

    return [
        Column("decode_tps", "decode tok/s", "Generation", hint="decode tokens per second (median)",
               plain=_figure("decode_tokens_per_s", 1)),
        Column("ttft", "TTFT ms", "Generation", hint="time to first token: prefill + first decode step",
               plain=_figure("ttft_ms", 2)),
        Column("prefill_tps", "prefill tok/s", "Generation", hint="prompt tokens per second of the prefill",
               plain=_figure("prefill_tokens_per_s", 0)),
        Column("agree", "tok agree", "Generation", hint="greedy tokens equal to the fp32 eager model's",
               plain=_figure("token_agreement", 3)),
    ]


def with_generation(cols: list, cells: list[dict]) -> list:
    """`cols` with the generation columns after `median` when a cell generates (else unchanged)."""
    if not any(c.get("generation") for c in cells):
        return cols
    keys = [c.key for c in cols]
    at = keys.index("median") + 1 if "median" in keys else len(cols)
    return cols[:at] + generation_columns() + cols[at:]
