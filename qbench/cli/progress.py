"""Progress without a bar (stderr is a log file or a CI pipe): one line per finished cell and per
failure with its cause, each numbered against the run's steps, so a log shows how far a run got.
Every line also goes to the run's log file. A step that runs long without a line (a QAT model's training,
a big export, a slow trial) gets a line of its own every HEARTBEAT_S seconds, so a piped log is never
silent for a minute."""

from __future__ import annotations

import sys
import threading
import time

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


HEARTBEAT_S = 30.0


class LineProgress:
    """The orchestrator's Progress as plain lines; `quiet` keeps them for the log file only (-q)."""

    def __init__(self, stream=None, quiet: bool = False, heartbeat_s: float = HEARTBEAT_S):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()  # devices report from their own threads
        self._heartbeat_s = heartbeat_s
        self._stage, self._stage_since, self._last_line = "", time.monotonic(), time.monotonic()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self):
        if not self.quiet:
            self._beat = threading.Thread(target=self._heartbeat, name="qbench-progress-heartbeat", daemon=True)
            self._beat.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=2)
        return False

    def start(self, total: int) -> None:
        self.total = total

    def stage(self, text: str) -> None:
        with self._lock:  # the outcomes are the log's lines; a long stage also gets heartbeat lines
            self._stage, self._stage_since = text, time.monotonic()

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(1.0, self._heartbeat_s / 4)):
            now = time.monotonic()
            if self._stage and now - self._last_line >= self._heartbeat_s:
                self._line(f"… {self._stage}: {now - self._stage_since:.0f} s so far")

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
            self._last_line = time.monotonic()
            line = f"[{self.done}/{self.total}] {safe(text)}" if self.total else safe(text)  # one line each
            progress_line(line)
            if not self.quiet:
                self.stream.write(line + "\n")
                self.stream.flush()
