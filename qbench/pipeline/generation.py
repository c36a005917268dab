"""The pipeline's part for `task: text-generation` cells: their trial settings (generation mode)
and, when a cell's trials are in, its `generation` figures with CIs from the trials.

Every decode step is a sample (samples_ns), so the cell's latency statistics, stability verdict,
interference checks, comparisons and the gate are those of the decode ms per token; the per-trial
fixed costs (load, TTFT, prefill) are kept per trial in `trials.generation`.
"""

from __future__ import annotations

from dataclasses import replace


def cell_settings(settings, cell):
    """The trial settings of `cell`: generation mode for a text-generation model."""
    gen = cell.variant.model.generate
    if gen is None:
        return settings
    return replace(settings, generate=(gen.prompt_tokens, gen.new_tokens, gen.seed))


def _ci(values_by_trial: dict[int, list[float]]) -> dict:
    """{median, ci_low, ci_high} with the latency CIs' two-level bootstrap (trials, then values)."""
    import numpy as np

    from qbench.stats import median_ci

    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in values_by_trial.values()])
    labels = np.concatenate([np.full(len(v), t) for t, v in values_by_trial.items()])
    med, lo, hi = median_ci(values, trials=labels)
    return {"median": med, "ci_low": lo, "ci_high": hi}


def _per_generation(trial_gen: dict, samples_ns: list[int]) -> tuple[list[float], list[float]]:
    """(TTFT ms, prefill tokens/s) of each generation of one trial: TTFT = prefill + first decode step."""
    n, prompt = trial_gen["new_tokens"], trial_gen["prompt_tokens"]
    ttft = [(p + samples_ns[g * n]) / 1e6 for g, p in enumerate(trial_gen["prefill_ns"])]
    prefill = [prompt / (p / 1e9) for p in trial_gen["prefill_ns"]]
    return ttft, prefill


def generation_figures(trials: list, samples_by_trial: dict[int, list[int]], cell: dict, artifact_extra: dict) -> dict:
    """The cell's `generation` block (docs/llm.md): `trials` are the used trials' rows (with their
    `generation` record), `cell` the finished cell's columns (latency = decode ms per token)."""
    gens = {r["trial"]: _as_dict(r["generation"]) for r in trials if r["generation"]}
    if not gens:
        return {}
    first = next(iter(gens.values()))
    ttft, prefill = {}, {}
    for t, gen in gens.items():
        ttft[t], prefill[t] = _per_generation(gen, samples_by_trial[t])
    load = {r["trial"]: [(r["load_ms"] or 0) + (r["method_init_ms"] or 0)] for r in trials}
    per_token = {"median": cell["latency_median_ms"], "p90": cell["latency_p90_ms"],
                 "ci_low": cell.get("median_ci_low_ms"), "ci_high": cell.get("median_ci_high_ms")}
    info = artifact_extra.get("generation", {})
    return {
        "prompt_tokens": first["prompt_tokens"], "new_tokens": first["new_tokens"],
        "ttft_ms": _ci(ttft), "prefill_tokens_per_s": _ci(prefill),
        "decode_tokens_per_s": _inverse(per_token), "decode_ms_per_token": per_token,
        "load_ms": _ci(load), "kv_cache_bytes": info.get("kv_cache_bytes"), "cache": info.get("cache"),
        "peak_rss_bytes": cell.get("peak_rss_bytes"),
        "generations": sum(g["generations"] for g in gens.values()),
    }


def _inverse(per_token: dict) -> dict:
    """Decode tokens/s from ms per token; the CI's ends swap (a faster step is more tokens/s)."""
    def tps(ms):
        return 1000.0 / ms if ms else None

    return {"median": tps(per_token["median"]), "ci_low": tps(per_token["ci_high"]), "ci_high": tps(per_token["ci_low"])}


def _as_dict(value):
    import json

    return json.loads(value) if isinstance(value, str) else value


def record_generation(store, cell_id: int, art, session=None, settings=None, log=lambda text: None) -> None:
    """After finalize_cell: the cell's generation figures into extra.generation (beside the
    artifact's cache variant, KV-cache bytes and host quality), with quality from the device's own
    outputs when `session` is given (else the host runtime's, from prepare)."""
    from qbench.pipeline.adaptive import records, used_trials

    chosen = {r.trial: r.samples_ns for r in used_trials(records(store, cell_id))}
    rows = [dict(r) for r in store.trials(cell_id) if r["trial"] in chosen]
    extra = (art.numerics or {}).get("extra") or {}
    figures = generation_figures(rows, {t: list(s) for t, s in chosen.items()}, dict(store.cell(cell_id)), extra)
    if not figures:
        return
    quality, source = extra.get("generation", {}).get("host_quality") or {}, "host runtime (the .pte)"
    if session is not None:
        try:
            quality, source = device_quality(session, art, settings), "device"
            figures["device_quality"] = quality
        except Exception as exc:  # the timing stands; say why the device's figures are missing
            figures["device_quality_error"] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            log(f"[generation quality] {figures['device_quality_error']}")
    figures["token_agreement"] = quality.get("token_agreement")
    figures["logits_sqnr_db"] = (quality.get("logits_sqnr_db") or {}).get("median")
    figures["quality_from"] = source
    if (prepared := extra.get("generation", {}).get("perplexity")) is not None:
        figures.update(perplexity_figures(session, art, settings, prepared, log))
    store.merge_extra(cell_id, generation={**extra.get("generation", {}), **figures})


def device_quality(session, art, settings) -> dict:
    """One more generation by the device's runner, its tokens and logits per step against the fp32
    eager reference saved with the artifact (collectors/generation_quality.py)."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from qbench.collectors.generation_quality import REFERENCE, against_reference

    reference = np.load(art.dir / REFERENCE)
    device = session.device
    program, _ = session.push(art)
    remote = f"{device.workdir.rstrip('/')}/{art.key}.logits.bin"
    once = replace(settings, warmup=0, warmup_seconds=0.0, iterations=1, min_seconds=0.0, max_iterations=1)
    runner = session.runner_for(art)
    report = runner.parse(device.run(runner.argv(program, once, outputs=remote), timeout=settings.timeout), once)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "logits.bin"
        device.pull(remote, local)
        logits = np.fromfile(local, dtype=np.float32).reshape(len(reference["tokens"]), -1)
    return against_reference(reference, report["generation"]["tokens"], logits)


def perplexity_figures(session, art, settings, prepared: dict, log) -> dict:
    """The cell's perplexity: from the device's runner (scoring mode) when there is a session, else
    the host runtime's at prepare time; beside it the fp32 eager model's on the same windows."""
    value, source = prepared["host"], "host runtime (the .pte)"
    out = {}
    if session is not None:
        try:
            value, source = device_perplexity(session, art, settings, prepared["window"]), "device"
        except Exception as exc:  # the timing stands; say why the device's figure is missing
            out["perplexity_error"] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            log(f"[perplexity] {out['perplexity_error']}")
    return {**out, "perplexity": value, "perplexity_fp32_eager": prepared["fp32_eager"],
            "perplexity_tokens": prepared["tokens"], "perplexity_windows": prepared["windows"],
            "perplexity_from": source}


def device_perplexity(session, art, settings, window: int) -> float:
    """One runner process in scoring mode on the artifact's windows (contract.md "Scoring mode")."""
    from qbench.collectors.perplexity import TOKENS, perplexity

    device = session.device
    program, _ = session.push(art)
    remote = device.push(art.dir / TOKENS, f"{art.key}.{TOKENS}")
    plain = replace(settings, generate=None)
    runner = session.runner_for(art)
    argv = runner.argv(program, plain) + ["--score-tokens", remote, "--window", str(window)]
    report = runner.parse(device.run(argv, timeout=settings.timeout + 60), plain)
    score = report["generation"]
    return perplexity(score["nll_sum"], score["scored_tokens"])
