"""The `generation` block of a text-generation cell, as `--json`, the summary and the page show it.

One definition (pipeline/generation.py makes the figures): every rate and time is the median over
the trials used, and `ci` holds each one's 95% CI from the same two-level bootstrap as latency
(trials first, then generations or decode steps inside them).
"""

from __future__ import annotations

from qbench.results.columns import is_generative  # noqa: F401  (the store row's own test, re-used here)
from qbench.text import cell_label

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
        **({"weights": gen["weights"]} if gen.get("weights") else {}),  # "random": llama: without a checkpoint
        **perplexity_view(gen),
    }


def perplexity_view(gen: dict) -> dict:
    """The cell's perplexity on its `kind: text` data set and the fp32 eager model's on the same
    windows (both None without a data set)."""
    return {"perplexity": gen.get("perplexity"), "perplexity_fp32_eager": gen.get("perplexity_fp32_eager"),
            "perplexity_tokens": gen.get("perplexity_tokens"), "perplexity_from": gen.get("perplexity_from")}


def perplexity_text(gen: dict | None) -> str:
    """`12.3 (fp32 eager 12.1)`; '' without a perplexity."""
    value, fp32 = (gen or {}).get("perplexity"), (gen or {}).get("perplexity_fp32_eager")
    if value is None:
        return ""
    return _ppl(value) + (f" (fp32 eager {_ppl(fp32)})" if fp32 is not None else "")


def _ppl(value: float) -> str:
    """Plain decimals (scripts parse the summary), fewer as the figure grows."""
    return f"{value:.{2 if value < 100 else 1 if value < 10000 else 0}f}"


def tokens_per_s(ms_per_token: float | None) -> float | None:
    return 1000.0 / ms_per_token if ms_per_token else None


def decode_regression_reason(base_ms: float | None, new_ms: float | None, ratio_text: str, threshold: float) -> str:
    """The gate's line for a slower decode: in tokens/s, the unit users read (the CI is the ratio of
    ms per token, new/base, so above 1 means fewer tokens/s)."""
    base, new = tokens_per_s(base_ms), tokens_per_s(new_ms)
    return (f"decode tokens/s {base:.1f} → {new:.1f} (ms per token {ratio_text} new/base), "
            f"beyond +{threshold:.0%}")


# ---------------------------------------------------------------- the page


def position_medians(samples_ns, new_tokens: int) -> list[float]:
    """Median ms of each decode step position (1..new_tokens) over every generation of the cell:
    the samples are whole generations of new_tokens steps each, in order."""
    import numpy as np

    ns = np.asarray(samples_ns, dtype=np.float64)
    usable = ns[: ns.size - ns.size % new_tokens].reshape(-1, new_tokens)
    return (np.median(usable, axis=0) / 1e6).tolist() if usable.size else []


def generation_plots(cells: list[dict], colours: dict[str, str], legend) -> list[dict]:
    """The page's generation section (only in a run with text-generation cells)."""
    gen = [c for c in cells if c.get("generation") and c.get("status") == "ok"]
    if not gen:
        return []
    random = sorted({c["model"] for c in gen if c["generation"].get("weights") == "random"})
    note = f" Random weights (no checkpoint; its tokens mean nothing): {', '.join(random)}." if random else ""
    return _perplexity_plots(gen, colours, legend) + [
        {"id": "plot-tokens", "title": "Tokens per second",
         "caption": "Decode (one token per step, greedy) and prefill (prompt tokens per second of the prefill) "
                    "throughput, medians over the trials used with their 95% CI (whiskers)." + note,
         "legend": legend, "panels": _rate_panels(gen, colours), "empty": "No generation figures."},
        {"id": "plot-positions", "title": "Per-token latency vs position",
         "caption": "Median decode step time at each position of the generation, relative to the cell's median "
                    "step (1 = the median); a rising line is the attention over a growing KV cache.",
         "legend": "", "panels": _position_panels(gen, colours), "empty": "No decode samples."},
    ]


def _rate_panels(cells: list[dict], colours: dict[str, str]) -> list:
    from qbench.report.svg import Bar, BarGroup, hbar_panel

    panels = []
    for key, title in (("decode_tokens_per_s", "Decode tokens/s"), ("prefill_tokens_per_s", "Prefill tokens/s")):
        for device in dict.fromkeys(c["device"] for c in cells):
            groups = []
            for model in dict.fromkeys(c["model"] for c in cells if c["device"] == device):
                bars = []
                for c in (c for c in cells if (c["device"], c["model"]) == (device, model)):
                    g = c["generation"]
                    low, high = g["ci"][key]
                    bars.append(Bar(c["recipe"], g[key], colours.get(c["recipe"], "#888"), f"{g[key]:.0f}",
                                    tooltip=f"{cell_label(model, c['recipe'], device, c.get('sweep'))}: {g[key]:.1f} tokens/s, "
                                            f"95% CI [{low:.1f}, {high:.1f}]",
                                    ci=(low, high) if low is not None and high is not None else None))
                groups.append(BarGroup(model, bars))
            panels.append(hbar_panel(f"{title} · {device}", groups, unit="tokens/s"))
    return panels


def _position_panels(cells: list[dict], colours: dict[str, str]) -> list:
    from qbench.report.svg import Series, line_panel

    panels = []
    for device in dict.fromkeys(c["device"] for c in cells):
        series = []
        for c in (c for c in cells if c["device"] == device and c.get("decode_by_position")):
            steps, median = c["decode_by_position"], c["generation"]["decode_ms_per_token"]["median"]
            points = [(float(i + 1), ms / median, f"{cell_label(c['model'], c['recipe'], device, c.get('sweep'))}: step {i + 1}, {ms:.3f} ms")
                      for i, ms in enumerate(steps)]
            series.append(Series(f"{c['model']} · {c['recipe']}", colours.get(c["recipe"], "#888"), points))
        if series:
            panels.append(line_panel(f"Decode step time by position · {device}", series,
                                     xlabel="decode step", ylabel="× the median step"))
    return panels


def _perplexity_plots(cells: list[dict], colours: dict[str, str], legend) -> list[dict]:
    """Perplexity bars (lower is better), when the cells have a `kind: text` data set."""
    from qbench.report.svg import Bar, BarGroup, hbar_panel

    scored = [c for c in cells if c["generation"].get("perplexity") is not None]
    if not scored:
        return []
    panels = []
    for device in dict.fromkeys(c["device"] for c in scored):
        groups = []
        for model in dict.fromkeys(c["model"] for c in scored if c["device"] == device):
            bars = [Bar(c["recipe"], c["generation"]["perplexity"], colours.get(c["recipe"], "#888"),
                        _ppl(c["generation"]["perplexity"]),
                        tooltip=f"{cell_label(model, c['recipe'], device, c.get('sweep'))}: perplexity "
                                f"{perplexity_text(c['generation'])}, {c['generation']['perplexity_tokens']} tokens")
                    for c in scored if (c["device"], c["model"]) == (device, model)]
            groups.append(BarGroup(model, bars))
        panels.append(hbar_panel(f"Perplexity · {device}", groups, unit="perplexity"))
    return [{"id": "plot-perplexity", "title": "Perplexity",
             "caption": "exp(mean negative log-likelihood) of the data set's text, teacher-forced through each "
                        "program by the device's runner, in windows of max_seq_len tokens; lower is better. The "
                        "tooltip gives the fp32 eager model's on the same windows. A model with random weights "
                        "has a perplexity near its vocabulary size or above: it says nothing about a trained model.",
             "legend": legend, "panels": panels, "empty": "No perplexity."}]
