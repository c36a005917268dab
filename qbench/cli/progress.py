"""Progress without a bar (stderr is a log file or a CI pipe): one line per finished cell and per
failure with its cause, each numbered against the run's steps, so a log shows how far a run got.
Every line also goes to the run's log file."""

from __future__ import annotations

import sys
import threading

from qbench.cli.logs import progress_line
from qbench.text import safe


def cell_line(label: str, cell: dict) -> str:
    """`tiny_mlp/fp32@host · median 0.123 ms · p90 0.13 ms · 4 trials (3 clean, 1 replaced) · stable`."""
    from qbench.report.fmt import ms, trial_counts

    parts = [label]
    if cell.get("latency_median_ms") is not None:
        parts.append(f"median {ms(cell['latency_median_ms'])} ms")
    if cell.get("latency_p90_ms") is not None:
        parts.append(f"p90 {ms(cell['latency_p90_ms'])} ms")
    if cell.get("trials_measured") is not None:
        parts.append(trial_counts(cell["trials_measured"], cell["trials_clean"], cell["trials_replaced"] or 0,
                                  cell.get("trials_not_judged") or 0))
    elif cell.get("trials"):
        parts.append(f"{cell['trials']} trial(s)")
    if cell.get("stability_verdict"):
        parts.append(cell["stability_verdict"])
    return " · ".join(parts)


class LineProgress:
    """The orchestrator's Progress as plain lines; `quiet` keeps them for the log file only (-q)."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()  # devices report from their own threads

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start(self, total: int) -> None:
        self.total = total

    def stage(self, text: str) -> None:
        pass  # stages are the bar's; a log gets the outcomes

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n

    def more(self, n: int = 1) -> None:
        with self._lock:  # a replaced or extra trial is a step of its own: [done/total] never runs past
            self.total += n

    def log(self, text: str) -> None:
        self._line(text)

    def cell_done(self, label: str, cell: dict) -> None:
        self._line("[ok] " + cell_line(label, cell))

    def _line(self, text: str) -> None:
        with self._lock:
            line = f"[{self.done}/{self.total}] {safe(text)}" if self.total else safe(text)  # one line each
            progress_line(line)
            if not self.quiet:
                self.stream.write(line + "\n")
                self.stream.flush()
