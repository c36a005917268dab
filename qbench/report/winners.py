"""Winners per model × device: the fastest, the smallest and the most accurate recipe, and the Pareto
front of latency against accuracy for that model alone (models are never ranked against each other:
their accuracies are not comparable).

"Most accurate" is task accuracy when the suite scored the model on a dataset (top-1 on the eval
split, else the model's own `metric:`, taken as higher-is-better), otherwise the numerics against
fp32 (SQNR, else cosine similarity) among the quantized recipes, fp32 being their reference. The card
says which. A "fastest" whose median CI overlaps the runner-up's is called a tie: the two are within
each other's measured noise (the stored stability CIs, see pipeline stability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from markupsafe import Markup

from qbench.report import fmt
from qbench.report.svg import Point, scatter_panel
from qbench.report.views import speedup_text
from qbench.text import cell_label


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
    measured cells, in suite order."""
    ok = [c for c in cells if c["status"] == "ok" and c.get("latency_ms")]
    cards = []
    for model in dict.fromkeys(c["model"] for c in ok):
        basis = accuracy_basis([c for c in ok if c["model"] == model])
        for device in dict.fromkeys(c["device"] for c in ok):
            for point in dict.fromkeys(c.get("sweep") or "" for c in ok):
                group = [c for c in ok if (c["model"], c["device"], c.get("sweep") or "") == (model, device, point)]
                if group:
                    cards.append({**_card(model, device, group, basis, colours, shapes), "sweep": point})
    return cards


def _card(model: str, device: str, group: list[dict], basis: Basis | None, colours, shapes) -> dict:
    by_speed = sorted(group, key=lambda c: c["latency_ms"]["median"])
    fastest = by_speed[0]
    tie = by_speed[1]["recipe"] if len(by_speed) > 1 and _overlap(fastest, by_speed[1]) else None
    speedup = speedup_text(fastest.get("speedup_vs_fp32"), fastest.get("speedup_ci"))
    rows = [{"what": "fastest", "recipe": fastest["recipe"],
             "figure": f"{fmt.ms(fastest['latency_ms']['median'])} ms" + (f" · {speedup} vs fp32" if speedup else ""),
             "note": f"tied with {tie} (overlapping median CIs)" if tie else ""}]
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
        tip = (f"{cell_label(model, c['recipe'], device, c.get('sweep'))}\nmedian {fmt.ms(median)} ms, {basis.key} {basis.text(y)}"
               + (f", .pte {fmt.bytes_(c['pte_bytes'])}" if c.get("pte_bytes") else ""))
        points.append(Point(median, y, colours[c["recipe"]], shapes[model], c["recipe"], tip))
    if len(points) < 2:
        return None
    cap = fmt.SQNR_EXACT_DB if basis.key == "sqnr_db" else None
    ylabel = {"accuracy_top1": "top-1 accuracy", "accuracy_metric": "metric", "sqnr_db": "SQNR (dB)",
              "cosine_similarity": "cosine"}[basis.key]
    return scatter_panel(f"Pareto front: latency vs {ylabel}", points, xlabel="median latency (ms)", ylabel=ylabel,
                         y_cap=cap, width=420, height=230)
