"""Run trials until a cell's median is precise, replace disturbed trials, and say when it is not.

The core is pure (`judge_trial`, `next_step`, `stability` take plain values) so it is tested with
synthetic samples; `TrialPlan` feeds it from the store and yields the next (trial, cell) for one
device, round-robin across its cells so drift hits every recipe alike (A B A B, never A A B B).

Rules, per cell:
- a trial whose `interference_share` exceeds the threshold is kept (marked `disturbed`) and does not
  count: another trial runs in its place, with or without a precision target;
- a trial no interference signal can resolve (a phase too short for /proc/stat's ticks, the off-CPU
  stand-in unable to calibrate) counts as clean and says it was *not judged*;
- at least `trials` clean trials; then more until the 95% CI of the median is within ±precision of
  it (the suite's `precision`, else DEFAULT_PRECISION);
- never more than `trial_bound` trials in all (max_trials, else 3 × trials), disturbed ones included;
- the figures come from the clean trials (all trials if none was clean). The verdict is `stable`,
  `disturbed` (other work ran during the trials and clean ones ran out) or `imprecise` (enough clean
  trials, the CI still wider than the target at the bound). Stores from before the split say `noisy`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from qbench.collectors.interference import describe, summarize
from qbench.units import percent, trial_counts

# Without a precision target in the suite, a cell's median CI should still be within ±5%: more
# trials run (up to the bound) until it is, and a cell that does not get there says `imprecise`.
DEFAULT_PRECISION = 0.05
STABLE, DISTURBED, IMPRECISE = "stable", "disturbed", "imprecise"


@dataclass(frozen=True)
class Policy:
    min_trials: int
    max_trials: int
    precision: float | None = None  # relative CI half-width to reach, e.g. 0.02
    interference_threshold: float = 0.10

    @classmethod
    def from_benchmark(cls, bench) -> "Policy":
        return cls(bench.trials, bench.trial_bound, bench.precision, bench.interference_threshold)

    @property
    def judge_precision(self) -> float:
        """The CI half-width a cell's median should reach: the suite's precision, or the default."""
        return self.precision if self.precision is not None else DEFAULT_PRECISION


@dataclass(frozen=True)
class TrialRecord:
    trial: int
    samples_ns: Sequence[int]
    disturbed: bool = False
    interference_share: float | None = None
    why: str = ""  # what disturbed it, in words


@dataclass(frozen=True)
class Judgement:
    disturbed: bool
    share: float | None
    summary: dict = field(default_factory=dict)

    @property
    def why(self) -> str:
        return describe(self.summary)

    @property
    def judged(self) -> bool:
        return self.summary.get("judged_by") is not None

    def columns(self) -> dict:
        """The trial row's interference columns."""
        return {"disturbed": int(self.disturbed), "interference_share": self.share, "interference": self.summary}


@dataclass(frozen=True)
class Step:
    done: bool
    why: str


def judge_trial(report: dict, threshold: float) -> Judgement:
    """Is this trial disturbed? Other processes' share of the cores; with one thread and /proc/stat
    unable to resolve the phase, the calibrated share of wall time its thread spent off the CPU stands
    in. Where neither resolves it, the trial counts, not judged (`summary["judged_by"]` None)."""
    summary = summarize(report)
    share, by = summary["interference_share"], "proc_stat"
    if share is None and report.get("threads") == 1 and summary["offcpu_share"] is not None:
        share, by = summary["offcpu_share"], "offcpu"
    summary["judged_by"] = by if share is not None else None
    return Judgement(share is not None and share > threshold, share, summary)


def used_trials(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    clean = [t for t in trials if not t.disturbed]
    return clean or list(trials)


def median_ci_ms(trials: Sequence[TrialRecord]) -> tuple[float, float, float]:
    """(median, low, high) in ms over the given trials, two-level bootstrap (qbench/stats.py)."""
    import numpy as np

    from qbench.stats import median_ci, thin_for_ci

    parts = []
    for t in trials:
        parts.append(thin_for_ci(t.samples_ns))  # the CI is computed after every trial: keep it cheap
    labels = np.concatenate([np.full(x.size, t.trial) for t, x in zip(trials, parts)])
    _, lo, hi = median_ci(np.concatenate(parts), trials=labels)
    med = float(np.median(np.concatenate([np.asarray(t.samples_ns, dtype=np.float64) for t in trials])))
    return med / 1e6, lo / 1e6, hi / 1e6


def half_width(med: float, lo: float, hi: float) -> float:
    from qbench.stats import ci_half_width

    return ci_half_width(med, lo, hi)


def next_step(trials: Sequence[TrialRecord], policy: Policy) -> Step:
    """Whether a cell needs another trial, given the trials it has (pure)."""
    clean = [t for t in trials if not t.disturbed]
    if len(trials) >= policy.max_trials:
        return Step(True, f"max_trials ({policy.max_trials}) reached")
    if len(clean) < policy.min_trials:
        return Step(False, f"{len(clean)} of {policy.min_trials} clean trials")
    target = policy.judge_precision
    hw = half_width(*median_ci_ms(clean))
    if hw <= target:
        return Step(True, f"median CI ±{hw:.1%} within ±{percent(target)}")
    return Step(False, f"median CI ±{hw:.1%} wider than ±{percent(target)}")


def counts(trials: Sequence[TrialRecord]) -> dict:
    """Trial counts, one definition for every output: measured (all), clean (not disturbed), replaced
    (disturbed and followed by another trial), not judged (no interference signal resolved them)."""
    last = max((t.trial for t in trials), default=-1)
    return {"trials_measured": len(trials), "trials_clean": sum(1 for t in trials if not t.disturbed),
            "trials_replaced": sum(1 for t in trials if t.disturbed and t.trial < last),
            "trials_not_judged": sum(1 for t in trials if t.interference_share is None)}


def stability(trials: Sequence[TrialRecord], policy: Policy) -> dict:
    """The cell's `stability` object: verdict (stable | disturbed | imprecise), reason, median_ci_ms,
    trials_used, trials_replaced, trials_measured, trials_clean, trials_not_judged, interference_share
    (median over the trials used)."""
    import statistics

    used = used_trials(trials)
    n = counts(trials)
    med, lo, hi = median_ci_ms(used)
    hw, target = half_width(med, lo, hi), policy.judge_precision
    shares = [t.interference_share for t in used if t.interference_share is not None]
    share = statistics.median(shares) if shares else None
    verdict, problems = _verdict(trials, n, hw, policy)
    facts = [trial_counts(n["trials_measured"], n["trials_clean"], n["trials_replaced"], n["trials_not_judged"]),
             f"CV {_cv(used):.1%}"]  # a percentage, as everywhere
    if share is not None:
        facts.append(f"interference {share:.0%}")
    if n["trials_not_judged"]:
        facts.append(f"not judged: {_not_judged_why(trials)}")
    if len(used) == 1:
        facts.append("one trial: CI omits trial-to-trial variation")
    return {
        "verdict": verdict,
        "reason": "; ".join(problems or [f"median CI ±{hw:.1%} within ±{percent(target)}"]) + " (" + ", ".join(facts) + ")",
        "median_ci_ms": [lo, hi],
        "trials_used": len(used),
        **n,
        "interference_share": share,
    }


def _verdict(trials: Sequence[TrialRecord], n: dict, hw: float, policy: Policy) -> tuple[str, list[str]]:
    """disturbed: clean trials ran out because of other work; imprecise: enough clean trials, CI still wide."""
    problems, verdict = [], STABLE
    if not n["trials_clean"]:
        worst = max(trials, key=lambda t: t.interference_share or 0)
        problems.append(f"all {len(trials)} trials disturbed ({worst.why or 'interference'})")
        verdict = DISTURBED
    elif n["trials_clean"] < policy.min_trials:
        problems.append(f"only {n['trials_clean']} of {len(trials)} trials clean (trials: {policy.min_trials})")
        verdict = DISTURBED
    if hw > policy.judge_precision:
        problems.append(f"median CI ±{hw:.1%} wider than ±{percent(policy.judge_precision)}")
        verdict = IMPRECISE if verdict == STABLE else verdict
    return verdict, problems


def _not_judged_why(trials: Sequence[TrialRecord]) -> str:
    why = next((t.why for t in trials if t.interference_share is None and t.why), "")
    return why.removeprefix("not judged (").removesuffix(")") or "no interference signal"


def _cv(trials: Sequence[TrialRecord]) -> float:
    """Coefficient of variation of the trials' samples pooled (sample standard deviation)."""
    import numpy as np

    x = np.concatenate([np.asarray(t.samples_ns, dtype=np.float64) for t in trials]) if trials else np.empty(0)
    if x.size < 2:
        return 0.0
    mean = float(x.mean())
    return float(x.std(ddof=1)) / mean if mean else 0.0


# ------------------------------------------------------------------ fed from the store


def records(store, cell_id: int) -> list[TrialRecord]:
    """The cell's trials as the pure functions want them (a store from before this feature: all clean)."""
    by_trial = store.sample_arrays(cell_id)
    out = []
    for row in store.trials(cell_id):
        keys = row.keys()
        summary = json.loads(row["interference"]) if "interference" in keys and row["interference"] else {}
        out.append(TrialRecord(
            trial=row["trial"], samples_ns=by_trial.get(row["trial"], ()),
            disturbed=bool(row["disturbed"]) if "disturbed" in keys and row["disturbed"] else False,
            interference_share=row["interference_share"] if "interference_share" in keys else None,
            why=describe(summary) if summary else "",
        ))
    return [r for r in out if len(r.samples_ns)]


class TrialPlan:
    """(trial, cell) pairs for one device, in rounds over its cells, until every cell is done.

    A cell is done when `next_step` says so; `drop` takes out a failed cell. Trial numbers continue
    from what the store has, so a resumed run neither repeats nor overwrites a trial.
    """

    def __init__(self, cells: list, ids: dict, store, policy: Policy):
        self.cells, self.ids, self.store, self.policy = list(cells), ids, store, policy
        self.dropped: set = set()
        self._steps: dict = {}  # (cell, trials so far) -> Step: the bootstrap runs once per new trial

    def __iter__(self) -> Iterator[tuple[int, object]]:
        while True:
            active = [c for c in self.cells if c not in self.dropped and not self.finished(c)]
            if not active:
                return
            for cell in active:
                if cell not in self.dropped:
                    done = self.store.done_trials(self.ids[cell])
                    yield (max(done) + 1 if done else 0), cell

    def finished(self, cell) -> bool:
        key = (cell, len(self.store.done_trials(self.ids[cell])))
        if key not in self._steps:
            self._steps[key] = next_step(records(self.store, self.ids[cell]), self.policy)
        return self._steps[key].done

    def drop(self, cell) -> None:
        self.dropped.add(cell)
