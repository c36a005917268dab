"""The summary's columns for text-generation cells (report/generation.py makes the figures)."""

from __future__ import annotations


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


def perplexity_column():
    from qbench.report.generation import perplexity_text
    from qbench.report.table import Column

    return Column("ppl", "perplexity", "Generation", hint="perplexity of the data set's text (the fp32 eager "
                                                         "model's on the same windows)",
                  plain=lambda cell: perplexity_text(cell.get("generation")))


def with_generation(cols: list, cells: list[dict]) -> list:
    """`cols` with the generation columns after `median` when a cell generates (else unchanged)."""
    if not any(c.get("generation") for c in cells):
        return cols
    keys = [c.key for c in cols]
    at = keys.index("median") + 1 if "median" in keys else len(cols)
    extra = [perplexity_column()] if any((c.get("generation") or {}).get("perplexity") is not None
                                         for c in cells) else []
    return cols[:at] + generation_columns() + extra + cols[at:]
