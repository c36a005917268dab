"""Winners per model × device: the fastest, the smallest and the most accurate recipe, and the Pareto
front of latency against accuracy for that model alone (models are never ranked against each other:
their accuracies are not comparable).

"Most accurate" is task accuracy when the suite scored the model on a dataset (top-1 on the eval
split, else the model's own `metric:`, taken as higher-is-better), otherwise the numerics against
fp32 (SQNR, else cosine similarity) among the quantized recipes, fp32 being their reference. The card
says which. A "fastest" whose median CI overlaps the runner-up's is not crowned ("no clear winner"): the
two are within each other's measured noise (the stored stability CIs, see pipeline stability); one
drawn from a noisy cell is marked with its verdict word (trust.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from markupsafe import Markup

from qbench.report import fmt, trust
from qbench.report.svg import Point, scatter_panel
from qbench.report.views import speedup_text


@dataclass(frozen=True)
class Basis:
    key: str
    label: str  # what the card says "most accurate" means
    with_fp32: bool  # task accuracy ranks fp32 too; numerics are measured against it
    text: Callable[[float], str]


BASES = (
    Basis("accuracy_top1", "top-1 accuracy on the eval split", True, lambda v: fmt.share(v)),
    Basis("accuracy_metric", "the model's metric on the eval split (higher taken as better)", True,
          lambda v: fmt.num(v, 4)),
    Basis("sqnr_db", "SQNR vs fp32 (numerics; no dataset scored)", False, fmt.sqnr),
    Basis("cosine_similarity", "cosine similarity vs fp32 (numerics; no dataset scored)", False,
          lambda v: fmt.num(v, 4)),
)
SIZE_TIE = 0.005  # .pte sizes within 0.5% are the same program size


def accuracy_basis(cells: list[dict]) -> Basis | None:
    """The first basis any of these cells (one model) has a figure for."""
    for basis in BASES:
        if any(c.get(basis.key) is not None and (basis.with_fp32 or c["recipe_kind"] != "fp32") for c in cells):
            return basis
    return None


def winners(cells: list[dict], colours: dict[str, str], shapes: dict[str, str]) -> list[dict]:
    """One card per model × device (× sweep point: recipes compete at the same threads and batch) with
    measured or failed cells, in suite order; a model × device whose cells all failed gets a card that
    says so instead of a winner."""
    ok = [c for c in cells if c["status"] == "ok" and c.get("latency_ms")]
    cards = []
    for model in dict.fromkeys(c["model"] for c in cells):
        basis = accuracy_basis([c for c in ok if c["model"] == model])
        for device in dict.fromkeys(c["device"] for c in cells):
            for point in dict.fromkeys(c.get("sweep") or "" for c in cells):
                here = [c for c in cells if (c["model"], c["device"], c.get("sweep") or "") == (model, device, point)]
                group = [c for c in here if c in ok]
                failed = [c["recipe"] for c in here if c["status"] == "failed"]
                if group:
                    card = _card(model, device, group, basis, colours, shapes)
                elif failed:
                    card = {"model": model, "device": device, "rows": [], "basis": None, "pareto": None}
                else:
                    continue
                cards.append({**card, "sweep": point, "failed": failed})
    return cards


def _card(model: str, device: str, group: list[dict], basis: Basis | None, colours, shapes) -> dict:
    rows = [_fastest(sorted(group, key=lambda c: c["latency_ms"]["median"]))]
    sized = sorted((c for c in group if c.get("pte_bytes")), key=lambda c: c["pte_bytes"])
    if sized:
        ties = [c["recipe"] for c in sized[1:] if c["pte_bytes"] <= sized[0]["pte_bytes"] * (1 + SIZE_TIE)]
        rows.append({"what": "smallest", "recipe": sized[0]["recipe"], "figure": fmt.bytes_(sized[0]["pte_bytes"]),
                     "note": f"same size: {', '.join(ties)}" if ties else ""})
    scored = [c for c in group if basis and c.get(basis.key) is not None
              and (basis.with_fp32 or c["recipe_kind"] != "fp32")]
    if scored:
        best = max(scored, key=lambda c: c[basis.key])
        ties = [c["recipe"] for c in scored if c is not best and c[basis.key] == best[basis.key]]
        rows.append({"what": "most accurate", "recipe": best["recipe"], "figure": basis.text(best[basis.key]),
                     "note": f"same: {', '.join(ties)}" if ties else ""})
    return {"model": model, "device": device, "rows": rows, "basis": basis.label if basis else None,
            "pareto": _pareto(model, device, group, basis, colours, shapes)}


def _fastest(by_speed: list[dict]) -> dict:
    """The fastest recipe, or "no clear winner" when the fastest two overlap; a winner drawn from an
    unsure (noisy) cell is crowned only when the CIs still part, and then carries the verdict word."""
    fastest, runner_up = by_speed[0], (by_speed[1] if len(by_speed) > 1 else None)
    figure = f"{fmt.ms(fastest['latency_ms']['median'])} ms"
    unsure_ones = [c for c in (fastest, runner_up) if c is not None and trust.unsure(c)]
    word = trust.unsure_word(unsure_ones)
    if runner_up is not None and (_overlap(fastest, runner_up) or (unsure_ones and not _has_ci(fastest, runner_up))):
        why = "overlap (median CIs)" if _overlap(fastest, runner_up) else f"are {word}"
        return {"what": "fastest", "recipe": "no clear winner", "unclear": True, "mark": word if unsure_ones else "",
                "figure": f"{fastest['recipe']} {figure} · {runner_up['recipe']} "
                          f"{fmt.ms(runner_up['latency_ms']['median'])} ms",
                "note": f"the fastest two {why}"}
    speedup = speedup_text(fastest.get("speedup_vs_fp32"), fastest.get("speedup_ci"))
    return {"what": "fastest", "recipe": fastest["recipe"], "unclear": False, "mark": word if unsure_ones else "",
            "figure": figure + (f" · {speedup} vs fp32" if speedup else ""),
            "note": f"from {word} medians: the CIs part, but the medians may be off" if unsure_ones else ""}


def _has_ci(*cells: dict) -> bool:
    return all(None not in ((c.get("stability") or {}).get("median_ci_ms") or [None]) for c in cells)


def _overlap(a: dict, b: dict) -> bool:
    ca, cb = (a.get("stability") or {}).get("median_ci_ms"), (b.get("stability") or {}).get("median_ci_ms")
    if not ca or not cb or None in ca or None in cb:
        return False  # no CI stored: the medians are all there is
    return ca[1] >= cb[0]


def _pareto(model: str, device: str, group: list[dict], basis: Basis | None, colours, shapes) -> Markup | None:
    """Latency against the accuracy basis, this model on this device only; fp32 included (for numerics it
    is the exact reference, drawn on the top line)."""
    if basis is None:
        return None
    points = []
    for c in group:
        y = c.get(basis.key)
        if y is None:
            continue
        median = c["latency_ms"]["median"]
        tip = (f"{model} · {c['recipe']} · {device}\nmedian {fmt.ms(median)} ms, {basis.key} {basis.text(y)}"
               + (f", .pte {fmt.bytes_(c['pte_bytes'])}" if c.get("pte_bytes") else ""))
        points.append(Point(median, y, colours[c["recipe"]], shapes[model], c["recipe"], tip))
    if len(points) < 2:
        return None
    cap = fmt.SQNR_EXACT_DB if basis.key == "sqnr_db" else None
    ylabel = {"accuracy_top1": "top-1 accuracy", "accuracy_metric": "metric", "sqnr_db": "SQNR (dB)",
              "cosine_similarity": "cosine"}[basis.key]
    return scatter_panel(f"Pareto front: latency vs {ylabel}", points, xlabel="median latency (ms)", ylabel=ylabel,
                         y_cap=cap, width=420, height=230)
