"""One run in flight: what every stage of the orchestrator needs, passed as one value.

The suite (paths already resolved by the loader), the store and run id every result goes to, the
artifact cache, the progress sink, the stop flag raised on Ctrl-C, the cells' row ids, and the
models built for this run (each at most once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qbench.export.cache import ArtifactCache
    from qbench.models.loading import BuiltModels
    from qbench.pipeline.check import CheckedSuite
    from qbench.pipeline.grid import Cell
    from qbench.results.store import ResultsStore


class Progress:
    """What the orchestrator tells the outside world; the CLI draws it, tests ignore it."""

    def start(self, total: int) -> None: ...
    def stage(self, text: str) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def more(self, n: int = 1) -> None: ...  # n steps joined the plan (a replacement or an extra trial)
    def log(self, text: str) -> None: ...
    def cell_done(self, label: str, cell: dict) -> None: ...


@dataclass
class Run:
    checked: "CheckedSuite"
    store: "ResultsStore"
    run_id: str
    cache: "ArtifactCache"
    models: "BuiltModels"
    progress: Progress = field(default_factory=Progress)
    stop: threading.Event = field(default_factory=threading.Event)
    cell_ids: "dict[Cell, int]" = field(default_factory=dict)

    @property
    def suite(self):
        return self.checked.suite

    @property
    def bench(self):
        return self.checked.suite.benchmark

    def fail(self, cell: "Cell", exc: Exception) -> None:
        """Record a failed cell: the stage and the cause, never a traceback."""
        from qbench.errors import CellError
        from qbench.results.columns import failure_columns

        stage = exc.stage if isinstance(exc, CellError) else "internal"
        text = str(exc)
        message = text.split(": ", 1)[1] if isinstance(exc, CellError) and ": " in text else text
        self.store.update_cell(self.cell_ids[cell], **failure_columns(stage, message or type(exc).__name__))

    def trials_left(self, cells) -> int:
        # planned steps only (a cell past `trials` already, with replaced or extra trials, plans none)
        return sum(max(0, self.bench.trials - len(self.store.done_trials(self.cell_ids[c]))) for c in cells)
