"""The sensitivity page's lead (`qbench sensitivity`): per model × recipe, the layers the suggestion keeps
in fp32 as the `skip:` to paste into the recipe, the layers that lose most, and the SQNR-by-layer chart.

Built from the stored per-layer rows alone (results store, layer_sensitivity), so a page regenerated
later says the same."""

from __future__ import annotations

from qbench.report import fmt, plots

WORST_SHOWN = 3


def suggestions(layers: list[dict]) -> list[dict]:
    """One entry per model × recipe with per-layer rows, in stored order."""
    out = []
    for key in dict.fromkeys((r["model"], r["recipe"]) for r in layers):
        rows = [r for r in layers if (r["model"], r["recipe"]) == key]
        kept = [r["module"] for r in rows if r["kept_fp32"]]
        scored = sorted((r for r in rows if r["sqnr_db"] is not None), key=lambda r: r["sqnr_db"])
        out.append({"model": key[0], "recipe": key[1], "target": rows[0]["target"] or "", "layers": len(rows),
                    "kept": kept, "skip": skip_line(kept),
                    "worst": [{"module": r["module"], "sqnr": fmt.sqnr(r["sqnr_db"])} for r in scored[:WORST_SHOWN]],
                    "panel": plots.layer_panels(rows)[0]})
    return out


def skip_line(modules: list[str]) -> str:
    """The recipe's `skip:` entry in YAML flow style, as the suite takes it (names quoted when needed)."""
    def quote(name: str) -> str:
        plain = name and all(ch.isalnum() or ch in "._-*" for ch in name)
        return name if plain else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "skip: {modules: [" + ", ".join(quote(m) for m in modules) + "]}"
