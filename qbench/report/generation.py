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
