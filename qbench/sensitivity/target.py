"""The `--target` of `qbench sensitivity`: a metric, a comparison and a threshold.

sqnr>=30             end-to-end SQNR (dB) of the headline output against fp32, on the held-out inputs
cosine>=0.99         cosine similarity of the headline output against fp32
accuracy>=0.9        the task metric on the model's dataset (top-1, or the model's `metric:`)
accuracy_drop<=0.5%  fp32's task metric minus the variant's; with `%`, in percentage points of a 0..1 metric
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qbench.errors import UsageError

# metric -> (the comparison it takes, the key of the evaluation that holds it)
METRICS = {"sqnr": (">=", "sqnr_db"), "cosine": (">=", "cosine"), "accuracy": (">=", "accuracy"),
           "accuracy_drop": ("<=", "accuracy_drop")}
_SYNTAX = re.compile(r"^\s*([a-z_]+)\s*(>=|<=)\s*([-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?|[-+]?\.\d+)\s*(%?)\s*$")
EXAMPLES = '"sqnr>=30", "cosine>=0.99", "accuracy>=0.9" or "accuracy_drop<=0.5%"'


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
    return Target(metric=metric, threshold=value, text=text.strip())
