"""Run-over-run comparison: which cells got slower, less accurate, bigger or hungrier.

Latency is judged from the raw samples (ratio of medians, hierarchical bootstrap CI over trials,
see qbench/stats.py), never from two summary numbers. Size, memory and accuracy are one number per build,
so they are compared against plain thresholds. Cells are matched by (model, recipe, device); the
rest are listed, not dropped silently.

    >>> r = compare_runs("reports/qbench.db", "20251126-0300-ab12", "20251127-0300-cd34")
    >>> r.regressions, r.only_in_new
    >>> r.to_frame()            # one row per matched cell
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qbench.report import fmt
from qbench.report.data import (
    CellKey,
    cell_error,
    cell_key,
    cell_sweep,
    check_runs,
    json_safe,
    key_dict,
    key_label,
    make_key,
    reading,
    sketch_samples,
    trial_samples,
)
from qbench.results.columns import UNSTABLE_VERDICTS
from qbench.results.metrics import BY_COLUMN, compared
from qbench.results.store import ResultsStore
from qbench.stats import FASTER, SLOWER, Comparison, accuracy_drop, compare, relative_change
from qbench.text import safe
from qbench.units import parse_threshold



# --------------------------------------------------------------------------- notebook level


def compare_samples(
    base: Any,
    new: Any,
    *,
    threshold: float = 0.05,
    trials_base: Any = None,
    trials_new: Any = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Comparison:
    """Compare one cell's latency samples of two runs (pure: no store needed).

    `base` / `new` may each be
      - a dict {trial: [samples]} (what `ResultsStore.samples(cell_id)` returns),
      - a DataFrame with a `trial` column and `latency_ns` or `latency_ms` (`load_samples` rows of
        one cell), or
      - a flat array, optionally labelled per sample with `trials_base` / `trials_new`.
    Both sides must use the same unit. Trial labels turn on the hierarchical bootstrap, which is
    what keeps one unlucky process from reading as a regression.
    """
    x_base, t_base = _samples_and_trials(base, trials_base)
    x_new, t_new = _samples_and_trials(new, trials_new)
    return compare(x_base, x_new, trials_base=t_base, trials_new=t_new, threshold=threshold,
                   n_boot=n_boot, confidence=confidence, seed=seed)


def _samples_and_trials(values: Any, labels: Any) -> tuple[list, Any]:
    if isinstance(values, dict):
        flat, lab = [], []
        for trial, xs in values.items():
            flat.extend(xs)
            lab.extend([trial] * len(xs))
        return flat, lab
    if hasattr(values, "columns"):  # a DataFrame, without importing pandas here
        col = "latency_ns" if "latency_ns" in values.columns else "latency_ms"
        lab = values["trial"].to_numpy() if "trial" in values.columns else None
        return values[col].to_numpy(), lab
    return values, labels


# --------------------------------------------------------------------------- per cell and per run


@dataclass
class MetricChange:
    """One single-number metric of a matched cell: SQNR, top-1 agreement, size or memory."""

    name: str
    label: str
    base: float
    new: float
    change: float  # accuracy: drop in the metric's units (base - new); size/memory: relative growth
    threshold: float
    flagged: bool

    def describe(self) -> str:
        if self.name == "sqnr_db":
            return f"{self.label} {fmt.sqnr(self.base)} → {fmt.sqnr(self.new)}"
        metric = BY_COLUMN[self.name]
        if metric.compare == "drop":
            return f"{self.label} {self.base:.3f} → {self.new:.3f} (−{self.change:.3f})"
        return (f"{self.label} {fmt.metric(metric.text, self.base)} → {fmt.metric(metric.text, self.new)} "
                f"({fmt.pct_change(self.change)})")


@dataclass
class CellComparison:
    model: str
    recipe: str
    device: str
    base_status: str
    new_status: str
    base_median_ms: float | None = None
    new_median_ms: float | None = None
    latency: Comparison | None = None
    metrics: list[MetricChange] = field(default_factory=list)
    base_error: str | None = None
    new_error: str | None = None
    note: str | None = None  # why latency was not compared
    sweep: str = ""  # the sweep point ('' = none): part of the key
    generative: bool = False  # a text-generation cell: latency = decode ms per token (report/generation.py)
    perplexity: tuple[float | None, float | None] = (None, None)  # (base, new), a text-generation cell's data set

    @property
    def key(self) -> CellKey:
        return make_key(self.model, self.recipe, self.device, self.sweep)

    @property
    def verdict(self) -> str:
        """The latency verdict, or what stood in the way of one ("failed in new run", ...)."""
        return self.latency.verdict if self.latency else (self.note or "not compared")

    @property
    def newly_failed(self) -> bool:
        return self.base_status == "ok" and self.new_status == "failed"

    @property
    def flags(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.flagged]

    @property
    def is_regression(self) -> bool:
        return bool((self.latency and self.latency.verdict == SLOWER) or self.flags or self.newly_failed)

    @property
    def is_improvement(self) -> bool:
        return bool(self.latency and self.latency.verdict == FASTER)

    def reasons(self) -> list[str]:
        """One line per regression reason, for JUnit failure messages and the Markdown summary."""
        out = []
        if self.newly_failed:
            out.append(f"failed in new run: {fmt.first_line(self.new_error)}")
        if self.latency and self.latency.verdict == SLOWER and self.generative:
            from qbench.report.generation import decode_regression_reason

            out.append(decode_regression_reason(self.base_median_ms, self.new_median_ms,
                                                describe_latency(self.latency), self.latency.threshold))
        elif self.latency and self.latency.verdict == SLOWER:
            out.append(f"latency {describe_latency(self.latency)} ({fmt.ms(self.base_median_ms)} → "
                       f"{fmt.ms(self.new_median_ms)} ms), beyond +{self.latency.threshold:.0%}")
        out.extend(m.describe() for m in self.flags)
        return out

    def to_dict(self) -> dict:
        return {
            **key_dict(self.key),
            "base_status": self.base_status, "new_status": self.new_status,
            "base_median_ms": self.base_median_ms, "new_median_ms": self.new_median_ms,
            "verdict": self.verdict, "regression": self.is_regression,
            "latency": self.latency.to_dict() if self.latency else None,
            "metrics": [asdict(m) for m in self.metrics],
            "reasons": self.reasons(), "base_error": self.base_error, "new_error": self.new_error,
            **(self._decode_rates() if self.generative else {}),
        }

    def _decode_rates(self) -> dict:
        from qbench.report.generation import tokens_per_s

        return {"decode_tokens_per_s": {"base": tokens_per_s(self.base_median_ms),
                                        "new": tokens_per_s(self.new_median_ms)},
                "perplexity": {"base": self.perplexity[0], "new": self.perplexity[1]}}


def describe_latency(c: Comparison) -> str:
    return f"{c.ratio:.3f}× {fmt.ci(c.low, c.high)}"


@dataclass
class CompareResult:
    base_run: str
    new_run: str
    base_suite: str
    new_suite: str
    thresholds: dict[str, float]
    cells: list[CellComparison]
    only_in_base: list[CellKey]
    only_in_new: list[CellKey]
    warnings: list[str] = field(default_factory=list)
    # settings that differ between the runs: {name: {"base": value, "new": value}}; a cell's runner
    # or thread count measured differently is named as "runner (model/recipe/device)"
    settings_differ: dict[str, dict] = field(default_factory=dict)

    @property
    def regressions(self) -> list[CellComparison]:
        """Matched cells that got slower, less accurate, bigger, hungrier, or newly failed."""
        return [c for c in self.cells if c.is_regression]

    @property
    def improvements(self) -> list[CellComparison]:
        return [c for c in self.cells if c.is_improvement]

    def cell(self, model: str, recipe: str, device: str, sweep: str = "") -> CellComparison | None:
        return next((c for c in self.cells if c.key == make_key(model, recipe, device, sweep)), None)

    def counts(self) -> dict[str, int]:
        verdicts = [c.verdict for c in self.cells]
        return {
            "matched": len(self.cells), "slower": verdicts.count(SLOWER), "faster": verdicts.count(FASTER),
            "no_change": sum(1 for c in self.cells if c.latency and c.latency.verdict not in (SLOWER, FASTER)),
            "not_compared": sum(1 for c in self.cells if c.latency is None),
            "regressions": len(self.regressions), "only_in_base": len(self.only_in_base),
            "only_in_new": len(self.only_in_new),
        }

    def to_dict(self) -> dict:
        """Plain JSON-ready values (NaN and infinities become None)."""
        return json_safe({
            "base_run": self.base_run, "new_run": self.new_run, "base_suite": self.base_suite,
            "new_suite": self.new_suite, "thresholds": dict(self.thresholds), "warnings": list(self.warnings),
            "settings_differ": self.settings_differ,
            "counts": self.counts(), "cells": [c.to_dict() for c in self.cells],
            "only_in_base": [key_dict(k) for k in self.only_in_base],
            "only_in_new": [key_dict(k) for k in self.only_in_new],
        })

    def to_frame(self):
        """One row per matched cell: medians, ratio, CI, p, verdict, metric changes and flags."""
        import pandas as pd

        rows = []
        for c in self.cells:
            lat = c.latency
            row = {
                **key_dict(c.key),
                "base_status": c.base_status, "new_status": c.new_status,
                "base_median_ms": c.base_median_ms, "new_median_ms": c.new_median_ms,
                "ratio": lat.ratio if lat else None, "ci_low": lat.low if lat else None,
                "ci_high": lat.high if lat else None, "p_value": lat.p_value if lat else None,
                "verdict": c.verdict, "regression": c.is_regression,
            }
            for m in c.metrics:
                row[f"{m.name}_change"] = m.change
                row[f"{m.name}_flagged"] = m.flagged
            rows.append(row)
        return pd.DataFrame(rows)

    def to_text(self) -> str:
        """The terminal table `qbench compare` prints."""
        lines = [f"base {self.base_run} ({safe(self.base_suite)})  →  new {self.new_run} ({safe(self.new_suite)})",
                 f"latency: ratio of medians new/base (above 1: slower, below 1: faster), {_ci_label(self)} "
                 f"bootstrap CI over trials; "
                 f"threshold ±{self.thresholds['latency']:.0%}"]
        lines += [f"warning: {w}" for w in self.warnings]
        head = ("cell", "base ms", "new ms", "latency new/base [CI]", "verdict", "flags")
        table = [head]
        for c in self.cells:  # the cell's one spelling, its sweep point included (qbench.text.cell_label)
            table.append((key_label(c.key), fmt.ms(c.base_median_ms, "-"), fmt.ms(c.new_median_ms, "-"),
                          describe_latency(c.latency) if c.latency else "-", c.verdict,
                          "; ".join(m.describe() for m in c.flags) or ""))
        widths = [max(len(str(r[i])) for r in table) for i in range(len(head))]
        lines.append("")
        lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
        n = self.counts()
        lines.append("")
        lines.append(f"{n['matched']} matched: {n['slower']} slower, {n['faster']} faster, "
                     f"{n['no_change']} no significant change, {n['not_compared']} not compared; "
                     f"{n['regressions']} regression(s)")
        for name, keys in (("only in base", self.only_in_base), ("only in new", self.only_in_new)):
            if keys:
                lines.append(f"{name} ({len(keys)}): " + ", ".join(key_label(k) for k in keys))
        return "\n".join(lines)


def _ci_label(result: CompareResult) -> str:
    conf = next((c.latency.confidence for c in result.cells if c.latency), 0.95)
    return f"{conf:.0%}"


def compare_runs(
    db_path: str | Path | ResultsStore,
    base_run: str,
    new_run: str,
    threshold: float | str = 0.05,
    accuracy_drop_db: float = 1.0,
    top1_drop: float = 0.01,
    growth: float | str = 0.05,
    *,
    n_boot: int = 2000,
    seed: int | None = 0,
) -> CompareResult:
    """Compare every matched cell of `new_run` against `base_run` in the store at `db_path`.

    threshold: latency change that counts (0.05 = 5%); accuracy_drop_db: SQNR drop in dB;
    top1_drop: absolute drop of top-1 agreement (0.01 = one point); growth: relative .pte size /
    peak RSS / arena growth; threshold and growth may be written as on the command line ("5%").
    Runs are run references (results/runref.py). Runs of different suites are compared with a warning.
    """
    threshold, growth = parse_threshold(threshold), parse_threshold(growth)
    with reading(db_path) as store:
        base_run, new_run = check_runs(store, [base_run, new_run])
        base_info, new_info = store.run(base_run), store.run(new_run)
        warnings = []
        if base_info["suite"] != new_info["suite"]:
            warnings.append(f"runs are from different suites ({base_info['suite']!r} vs {new_info['suite']!r}); "
                            "comparing the cells they share")
        if base_run == new_run:
            warnings.append("base and new are the same run")
        base_cells = {cell_key(r): r for r in store.cells(base_run)}
        new_cells = {cell_key(r): r for r in store.cells(new_run)}
        limits = {"accuracy": {"sqnr_db": accuracy_drop_db, "top1_agreement": top1_drop}, "growth": growth}
        matched = [k for k in new_cells if k in base_cells]
        cells = [_compare_cell(store, base_cells[k], new_cells[k], threshold, limits, n_boot, seed) for k in matched]
        for run, row in (("base", base_info), ("new", new_info)):
            if row["status"] != "complete":
                warnings.append(f"{run} run {row['run_id']} is {row['status']}, not complete")
        differ = settings_differ(base_info, new_info, [(base_cells[k], new_cells[k]) for k in matched])
        if differ:
            warnings.append("measured with different settings, so part of any change may come from them: "
                            + describe_settings_differ(differ))
        if not cells:
            warnings.append("the runs share no cell (model, recipe, device, sweep point): nothing to compare")
        noisy = [k for k in matched if {_verdict(base_cells[k]), _verdict(new_cells[k])} & set(UNSTABLE_VERDICTS)]
        if noisy:  # their CIs are honest but wide: a "no significant change" there is weak evidence
            names = ", ".join(key_label(k) for k in noisy[:5])
            warnings.append(f"{len(noisy)} cell(s) not stable in one of the runs (disturbed or imprecise medians): "
                            f"{names}{' …' if len(noisy) > 5 else ''}")
        return CompareResult(
            base_run=base_run, new_run=new_run, base_suite=base_info["suite"], new_suite=new_info["suite"],
            thresholds={"latency": threshold, "sqnr_db": accuracy_drop_db, "top1_agreement": top1_drop,
                        "growth": growth},
            cells=cells,
            only_in_base=[k for k in base_cells if k not in new_cells],
            only_in_new=[k for k in new_cells if k not in base_cells],
            warnings=warnings,
            settings_differ=differ,
        )


# benchmark settings that change what a latency means (not `trials`: more trials only narrow the CI)
COMPARED_SETTINGS = ("threads", "affinity", "runner", "iterations", "min_seconds", "max_iterations", "warmup",
                     "warmup_seconds", "cooldown", "profile_ops")


def settings_differ(base_run, new_run, matched_cells=()) -> dict[str, dict]:
    """{setting: {"base", "new"}} for the suite settings that differ, then the runner and thread count
    each matched cell was really measured with (a device profile can override the suite)."""
    from qbench.report.data import json_field

    base, new = json_field(base_run["settings"]) or {}, json_field(new_run["settings"]) or {}
    out = {k: {"base": base.get(k), "new": new.get(k)} for k in COMPARED_SETTINGS
           if k in base and k in new and base.get(k) != new.get(k)}
    for b, n in matched_cells:
        if b["status"] != "ok" or n["status"] != "ok":
            continue
        for col in ("runner", "threads"):
            if b[col] is not None and n[col] is not None and b[col] != n[col] and col not in out:
                out[f"{col} ({key_label(cell_key(n))})"] = {"base": b[col], "new": n[col]}
    return out


def describe_settings_differ(differ: dict[str, dict], limit: int = 8) -> str:
    parts = [f"{k} {v['base']} → {v['new']}" for k, v in differ.items()]
    return ", ".join(parts[:limit]) + (f" and {len(parts) - limit} more" if len(parts) > limit else "")


def _compare_cell(store, base, new, threshold, limits, n_boot, seed) -> CellComparison:
    from qbench.report.generation import is_generative

    out = CellComparison(
        new["model"], new["recipe"], new["device"], sweep=cell_sweep(new),
        base_status=_status(base), new_status=_status(new),
        base_median_ms=base["latency_median_ms"], new_median_ms=new["latency_median_ms"],
        base_error=cell_error(base), new_error=cell_error(new), generative=is_generative(new),
        perplexity=(_perplexity(base), _perplexity(new)),
    )
    if base["status"] == "ok" and new["status"] == "ok":
        out.latency = _latency(store, base, new, threshold, n_boot, seed)
        out.note = None if out.latency else "no samples"
    else:
        out.note = {("ok", "failed"): "failed in new run", ("failed", "ok"): "fixed in new run",
                    ("failed", "failed"): "failed in both runs"}.get((base["status"], new["status"]), "not measured")
    out.metrics = _metric_changes(base, new, limits)
    return out


def _perplexity(row) -> float | None:
    import json

    extra = row["extra"] if "extra" in row.keys() else None
    extra = json.loads(extra) if isinstance(extra, str) else extra
    return ((extra or {}).get("generation") or {}).get("perplexity") if isinstance(extra, dict) else None


def _latency(store, base, new, threshold, n_boot, seed):
    """The cells' latency comparison from their raw samples; where a side's raw samples were pruned
    (`qbench prune --keep-samples-days`), both sides from their trials' quantile sketches, weighted by
    the trials' sample counts, with the cells' exact stored medians as the point estimate."""
    x_base, t_base = trial_samples(store, base["cell_id"])
    x_new, t_new = trial_samples(store, new["cell_id"])
    if x_base and x_new:
        return compare(x_base, x_new, trials_base=t_base, trials_new=t_new, threshold=threshold, n_boot=n_boot,
                       seed=seed)
    (s_base, l_base, n_base), (s_new, l_new, n_new) = sketch_samples(store, base["cell_id"]), \
        sketch_samples(store, new["cell_id"])
    if not n_base or not n_new or base["latency_median_ms"] is None or new["latency_median_ms"] is None:
        return None
    return compare(s_base, s_new, trials_base=l_base, trials_new=l_new, sizes_base=n_base, sizes_new=n_new,
                   medians=(base["latency_median_ms"], new["latency_median_ms"]), threshold=threshold,
                   n_boot=n_boot, seed=seed)


def _verdict(row) -> str | None:
    return row["stability_verdict"] if "stability_verdict" in row.keys() else None


def _status(row) -> str:
    return "not measured" if row["status"] == "pending" else row["status"]


def _metric_changes(base, new, limits) -> list[MetricChange]:
    """The registry's compared metrics (results/metrics.py): an accuracy figure flags an absolute drop,
    a size or memory figure a relative growth; an ungated one is shown, never flagged."""
    out = []
    for m in compared():
        b, n = _value(base, m.column), _value(new, m.column)
        if b is None or n is None:
            continue  # a metric measured on one side only has nothing to compare
        limit = limits["accuracy"][m.limit] if m.compare == "drop" else limits[m.limit]
        if m.compare == "drop":
            change, flagged = accuracy_drop(b, n, limit)
        else:
            change = relative_change(b, n)
            flagged = change > limit
        out.append(MetricChange(m.column, m.compare_label, b, n, change, limit, flagged and m.gated))
    return out


def _value(row, column: str):
    return row[column] if column in row.keys() else None  # a store read in place may predate the column
