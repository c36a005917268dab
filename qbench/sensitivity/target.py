"""The `--target` of `qbench sensitivity`: a metric, a comparison and a threshold.

sqnr>=30             end-to-end SQNR (dB) of the headline output against fp32, on the held-out inputs
cosine>=0.99         cosine similarity of the headline output against fp32
accuracy>=0.9        the task metric on the model's dataset (top-1, or the model's `metric:`)
accuracy_drop<=0.5%  fp32's task metric minus the variant's; with `%`, in percentage points of a 0..1 metric
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import math

from qbench.errors import UsageError

# metric -> (the comparison it takes, the key of the evaluation that holds it)
METRICS = {"sqnr": (">=", "sqnr_db"), "cosine": (">=", "cosine"), "accuracy": (">=", "accuracy"),
           "accuracy_drop": ("<=", "accuracy_drop")}
_SYNTAX = re.compile(r"^\s*([a-z_]+)\s*(>=|<=)\s*([-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?|[-+]?\.\d+)\s*(%?)\s*$")
EXAMPLES = '"sqnr>=30", "cosine>=0.99", "accuracy>=0.9" or "accuracy_drop<=0.5%"'
# The values a metric can take (None: any finite number). Accuracy's range holds for top-1 only: a
# model's own `metric:` may score on any scale (range_problem is told which one applies).
RANGES = {"cosine": (-1.0, 1.0, "a cosine similarity is between -1 and 1"),
          "accuracy": (0.0, 1.0, "top-1 accuracy is a fraction between 0 and 1 (or 0% to 100%)"),
          "accuracy_drop": (-1.0, 1.0, "a drop of top-1 accuracy is between -1 and 1 (or -100% to 100%)")}


@dataclass(frozen=True)
class Target:
    metric: str  # a key of METRICS
    threshold: float  # in the evaluation's own units (a % already divided by 100)
    text: str

    @property
    def key(self) -> str:
        return METRICS[self.metric][1]

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric][0] == ">="

    @property
    def needs_dataset(self) -> bool:
        return self.metric.startswith("accuracy")

    def range_problem(self, top1: bool) -> str | None:
        """Why no evaluation can reach this threshold (or every one does), or None. `top1`: the task
        metric is top-1 (no model `metric:`), whose range is known."""
        if not math.isfinite(self.threshold):
            return f"--target {self.text!r}: the threshold must be a finite number"
        if self.metric not in RANGES or (self.metric.startswith("accuracy") and not top1):
            return None
        low, high, why = RANGES[self.metric]
        if not low <= self.threshold <= high:
            return f"--target {self.text!r}: {why}; give a threshold in that range"
        return None

    def met(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def better(self, a: float | None, b: float | None) -> bool:
        """a is strictly better than b (None is worst)."""
        if a is None:
            return False
        if b is None:
            return True
        return a > b if self.higher_is_better else a < b


def parse_target(text: str) -> Target:
    m = _SYNTAX.match(text or "")
    if not m:
        raise UsageError(f"--target {text!r}: expected METRIC>=VALUE or METRIC<=VALUE, e.g. {EXAMPLES}")
    metric, op, number, percent = m.groups()
    if metric not in METRICS:
        raise UsageError(f"--target {text!r}: unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")
    want = METRICS[metric][0]
    if op != want:
        raise UsageError(f"--target {text!r}: {metric} is a {'floor' if want == '>=' else 'ceiling'}; "
                         f"write {metric}{want}{number}{percent}")
    value = float(number)
    if percent:
        if metric == "sqnr":
            raise UsageError(f"--target {text!r}: SQNR is in dB, not a percentage; e.g. sqnr>=30")
        value /= 100
    target = Target(metric=metric, threshold=value, text=text.strip())
    if (problem := target.range_problem(top1=metric == "cosine")) is not None:
        raise UsageError(problem)
    return target
