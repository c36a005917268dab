"""Everything the HTML report shows, read once from the store into plain dicts and lists.

The per-cell fields come from `report.views.cell_views` (the view shared with `--json` and the
summary page, energy included), plus what only the report needs: raw-sample box statistics, ops, device info.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qbench.report import data
from qbench.report.svg import box_stats
from qbench.report.views import cell_views
from qbench.results.store import ResultsStore


@dataclass
class ReportData:
    runs: list[dict]
    cells: list[dict]  # every cell of every run, in run order then store order
    devices: list[dict]
    comparisons: list = field(default_factory=list)  # CompareResult of each later run vs the first
    layers: list[dict] = field(default_factory=list)  # per-layer rows of `qbench sensitivity` (primary run)

    @property
    def primary(self) -> dict:
        """The run the single-run charts show: the last one given (`qbench report BASE NEW`)."""
        return self.runs[-1]

    def cells_of(self, run_id: str) -> list[dict]:
        return [c for c in self.cells if c["run_id"] == run_id]


def gather(db_path: str | Path | ResultsStore, run_ids: list[str], *, threshold: float = 0.05,
           ops_top: int = 8, views: dict[str, list[dict]] | None = None) -> ReportData:
    """db_path: a store's path or URL, or a store already open (the run that just finished: its
    samples and speedup CIs are in memory already); `views`: {run id: its `--json` cells} made already."""
    with data.reading(db_path) as store:
        run_ids = list(dict.fromkeys(data.check_runs(store, run_ids)))  # the same run twice adds nothing
        runs = [data.run_info(store, r) for r in run_ids]
        cells = []
        for run_id in run_ids:
            made = (views or {}).get(run_id)
            for view, row in zip(cell_views(store, run_id) if made is None else made, store.cells(run_id)):
                cells.append(_cell(store, run_id, view, row, ops_top))
        devices = _devices(runs, cells)
        layers = [dict(r) for r in store.layers(run_ids[-1])]
        comparisons = []
        if len(run_ids) > 1:
            from qbench.report.compare import compare_runs

            comparisons = [compare_runs(store, run_ids[0], r, threshold=threshold) for r in run_ids[1:]]
    return ReportData(runs=runs, cells=cells, devices=devices, comparisons=comparisons, layers=layers)


def _cell(store, run_id: str, view: dict, row, ops_top: int) -> dict:
    cell = dict(view)
    cell.update(run_id=run_id, cell_id=row["cell_id"], device_info=data.json_field(row["device_info"]) or {},
                ops=data.ops(store, row["cell_id"], ops_top), box=None,
                stage=row["stage"] if row["status"] == "failed" else None)
    if row["status"] == "ok":
        ns, trials = data.trial_samples(store, row["cell_id"])
        if ns:
            cell["box"] = box_stats(np.asarray(ns, dtype=float) / 1e6, trials)
        if ns and cell.get("generation"):  # a text-generation cell: its samples are decode steps
            from qbench.report.generation import position_medians

            cell["decode_by_position"] = position_medians(ns, cell["generation"]["new_tokens"])
    return cell


def _devices(runs: list[dict], cells: list[dict]) -> list[dict]:
    """One entry per device name: what the device said about itself (from any cell that ran)."""
    names = list(dict.fromkeys([d for r in runs for d in r["devices"]] + [c["device"] for c in cells]))
    out = []
    for name in names:
        info = next((c["device_info"] for c in reversed(cells) if c["device"] == name and c["device_info"]), {})
        out.append({"name": name, **{k: info.get(k) for k in
                                     ("transport", "model", "soc", "os", "abi", "cores", "governor", "ram_bytes")},
                    "reported": bool(info)})
    return out
