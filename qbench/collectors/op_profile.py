"""Per-operator time of one cell, from the runner's ETDump (+ the export's ETRecord).

The files are read by ExecuTorch's own `executorch.devtools.Inspector`; this module only folds its
events into one table. What the events are (runner with `--etdump`):

* inside a delegate, one event per delegate-internal op (XNNPACK: "Convolution (NHWC, QC8) IGEMM #3",
  `is_delegated_op`), wrapped by a `DELEGATE_CALL` event for the whole delegate call;
* outside, `native_call_<kernel>` (the kernel itself) wrapped by `OPERATOR_CALL` (+ dispatch).

A row is an op type: delegate-internal ops without their " #n" instance suffix, kernels by name
("cumsum.out"). Wrapper events are skipped when they have detail events (no double counting);
a delegate that reports no internal ops shows as one `DELEGATE_CALL` row. So `share` is of the
summed op time, without the runtime's own overhead.

The ETRecord is what names the delegate's backend ("XnnpackBackend"); without one `delegate` is None.
Every execution the runner traced is a "run" here (first inference and warm-up included): per-run
figures are medians over runs, so the cold first run does not skew them. Keep traced runs few: the
tracer also slows the run down, so profile in a separate process from the latency trials.
"""

from __future__ import annotations

import re
import statistics
import warnings
from collections import defaultdict
from pathlib import Path

from qbench.errors import QbenchError

COLUMNS = ("name", "kind", "delegate", "count", "total_ms", "median_ms", "share")
_INSTANCE = re.compile(r"\s+#\d+$")
_WRAPPERS = ("DELEGATE_CALL", "OPERATOR_CALL")
_KERNEL_PREFIX = "native_call_"


def op_table(etdump_path, etrecord_path=None):
    """A pandas DataFrame, one row per op type, sorted by time (largest first).

    Columns: name, kind ("delegate" | "operator"), delegate (backend name or None),
    count (instances per execution), total_ms (time per execution: the instances summed, median over
    runs), median_ms (median time of one call), share (total_ms / the sum of total_ms).
    `df.attrs["runs"]` is how many executions the ETDump holds.
    """
    import pandas as pd

    events = _inspector_events(Path(etdump_path), None if etrecord_path is None else Path(etrecord_path))

    groups = _op_groups(events)
    if not groups:
        raise QbenchError(
            f"the ETDump {etdump_path} has no operator or delegate timings "
            "(was it written by a runner built with the event tracer, after at least one execution?)"
        )

    rows, runs = _op_rows(groups)
    df = pd.DataFrame(rows)
    total = df["total_ms"].sum()
    df["share"] = df["total_ms"] / total if total > 0 else 0.0
    df = df.sort_values(["total_ms", "name"], ascending=[False, True], ignore_index=True)[list(COLUMNS)]
    df["delegate"] = df["delegate"].astype(object).where(df["delegate"].notna(), None)
    df.attrs["runs"] = runs
    return df


def _op_groups(events) -> dict[tuple, dict[tuple, list[float]]]:
    """(kind, delegate, name) -> instance key -> per-run ms. Wrapper events count only for an
    instruction that has no detail events (no double counting)."""
    groups: dict[tuple, dict[tuple, list[float]]] = defaultdict(dict)
    detailed: set[tuple] = set()  # instructions that have detail events
    wrappers: list[tuple] = []
    for block, event in events:
        raw = list(event.perf_data.raw) if event.perf_data is not None else []
        if not raw:
            continue
        where = (block, event._instruction_id)
        if event.is_delegated_op:
            key = ("delegate", event.delegate_backend_name, _INSTANCE.sub("", event.name))
            groups[key][(*where, event.name)] = raw
            detailed.add(where)
        elif event.name.startswith(_KERNEL_PREFIX):
            key = ("operator", None, event.name[len(_KERNEL_PREFIX) :])
            groups[key][where] = raw
            detailed.add(where)
        elif event.name in _WRAPPERS:
            wrappers.append((where, event, raw))
    for where, event, raw in wrappers:
        if where in detailed:
            continue
        if event.name == "DELEGATE_CALL":
            key = ("delegate", event.delegate_backend_name, "DELEGATE_CALL")
        else:
            key = ("operator", None, event.op_types[0] if event.op_types else "OPERATOR_CALL")
        groups[key][where] = raw
    return groups


def _op_rows(groups: dict[tuple, dict[tuple, list[float]]]) -> tuple[list[dict], int]:
    """One row per op type (medians over runs), and how many runs the ETDump holds."""
    runs = max(len(raw) for instances in groups.values() for raw in instances.values())
    rows = []
    for (kind, delegate, name), instances in groups.items():
        per_run = [sum(raw[r] for raw in instances.values() if r < len(raw)) for r in range(runs)]
        calls = [x for raw in instances.values() for x in raw]
        rows.append(
            {
                "name": name,
                "kind": kind,
                "delegate": delegate,
                "count": len(instances),
                "total_ms": float(statistics.median(per_run)),
                "median_ms": float(statistics.median(calls)),
            }
        )
    return rows, runs


def _inspector_events(etdump: Path, etrecord: Path | None):
    """(block name, Event) for every event the Inspector builds from the files."""
    if not etdump.is_file():
        raise QbenchError(f"no ETDump at {etdump}")
    if etrecord is not None and not etrecord.exists():
        raise QbenchError(f"no ETRecord at {etrecord}")
    from executorch.devtools import Inspector

    from qbench.runtime_log import runtime_log_captured

    try:
        with warnings.catch_warnings(), runtime_log_captured():
            warnings.simplefilter("ignore")  # "Output Buffer not found": we read timings only
            inspector = Inspector(etdump_path=str(etdump), etrecord=None if etrecord is None else str(etrecord))
    except Exception as e:  # the Inspector raises assorted types on a bad file
        raise QbenchError(f"cannot read ETDump {etdump}" + (f" with ETRecord {etrecord}" if etrecord else "") + f": {e}") from e
    return [(block.name, event) for block in inspector.event_blocks for event in block.events]


def export_with_etrecord(exported_program, pte_path, etrecord_path, partitioner=None):
    """Lower an ExportedProgram like the exporter does and write both the .pte and its ETRecord.

    The exporter's equivalent: pass `generate_etrecord=True` to `to_edge_transform_and_lower`, then
    after `.to_executorch()` call `.get_etrecord().save(path)` (ExecuTorch 1.5 attaches the
    ExecuTorch program's debug-handle map itself, which is what links runtime events to graph ops).
    Returns the ExecutorchProgramManager. `partitioner` defaults to [XnnpackPartitioner()].
    """
    from executorch.exir import to_edge_transform_and_lower

    if partitioner is None:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioner = [XnnpackPartitioner()]
    program = to_edge_transform_and_lower(
        exported_program, partitioner=partitioner, generate_etrecord=True
    ).to_executorch()
    with open(pte_path, "wb") as f:
        program.write_to_file(f)
    program.get_etrecord().save(str(etrecord_path))
    return program
