"""Retention: which runs `qbench prune` deletes, which lose their raw samples, and doing it.

- delete: whole runs beyond `keep_last` per suite, or started more than `older_than_days` ago;
- strip: of the runs kept, those started more than `keep_samples_days` ago lose their raw samples
  (trial_samples) and keep everything else: cells with their figures, trials with their summaries
  (count, median, quantile sketch), so trend, compare and the gate still work on them.
Never touched: a run still `running`, and per suite its newest complete run and the baseline that run
was compared with (the next nightly's baseline, and the one before it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

_CHUNK = 500


@dataclass
class Plan:
    delete: list[str] = field(default_factory=list)  # run ids
    strip: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    delete_bytes: int = 0  # raw sample bytes in the runs deleted
    strip_bytes: int = 0
    delete_cells: int = 0

    @property
    def empty(self) -> bool:
        return not self.delete and not self.strip


def protected_runs(store) -> set[str]:
    """Per suite: the newest complete run with measured cells, and its own baseline; plus running runs."""
    keep = {r["run_id"] for r in store.runs() if r["status"] == "running"}
    for suite in {r["suite"] for r in store.runs()}:
        newest = store.latest_run_id(suite)
        if newest:
            keep.add(newest)
            before = store.latest_run_id(suite, before=newest)
            keep.update([before] if before else [])
    return keep


def plan(store, *, keep_last: int | None = None, older_than_days: float | None = None,
         keep_samples_days: float | None = None, now: datetime | None = None) -> Plan:
    now = now or datetime.now(timezone.utc)
    runs = [dict(r) for r in store.db.execute(f"SELECT run_id, suite, started_at FROM runs "
                                             f"ORDER BY {store.backend.run_order}").fetchall()]
    guard = protected_runs(store)
    out = Plan(protected=sorted(guard & {r["run_id"] for r in runs}))
    doomed = set()
    if keep_last is not None:
        for suite in {r["suite"] for r in runs}:
            mine = [r["run_id"] for r in runs if r["suite"] == suite]
            doomed.update(mine[:max(0, len(mine) - keep_last)])
    if older_than_days is not None:
        doomed.update(r["run_id"] for r in runs if _age_days(r["started_at"], now) > older_than_days)
    out.delete = [r["run_id"] for r in runs if r["run_id"] in doomed - guard]
    if keep_samples_days is not None:
        out.strip = [r["run_id"] for r in runs if r["run_id"] not in doomed | guard
                     and _age_days(r["started_at"], now) > keep_samples_days and _has_samples(store, r["run_id"])]
    out.delete_bytes, out.delete_cells = _sample_bytes(store, out.delete), _cell_count(store, out.delete)
    out.strip_bytes = _sample_bytes(store, out.strip)
    return out


def _age_days(started_at: str | None, now: datetime) -> float:
    if not started_at:
        return 0.0
    when = datetime.fromisoformat(started_at)
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return (now - when) / timedelta(days=1)


def _cells_of(runs: list[str]) -> tuple[str, list[str]]:
    return f"SELECT cell_id FROM cells WHERE run_id IN ({', '.join('?' * len(runs))})", runs


def _chunks(ids: list[str]):
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def _sample_bytes(store, runs: list[str]) -> int:
    total = 0
    for part in _chunks(runs):
        sql, args = _cells_of(part)
        row = store.db.execute("SELECT SUM(length(latency_ns) + COALESCE(length(thread_cpu_ns), 0)) FROM trial_samples "
                               f"WHERE cell_id IN ({sql})", args).fetchone()
        total += int(row[0] or 0)
    return total


def _cell_count(store, runs: list[str]) -> int:
    return sum(int(store.db.execute(f"SELECT count(*) FROM ({_cells_of(p)[0]}) c", p).fetchone()[0])
               for p in _chunks(runs))


def _has_samples(store, run_id: str) -> bool:
    sql, args = _cells_of([run_id])
    return store.db.execute(f"SELECT 1 FROM trial_samples WHERE cell_id IN ({sql}) LIMIT 1", args).fetchone() is not None


def apply(store, p: Plan) -> str:
    """Delete and strip as planned, one transaction per chunk of runs, then give the space back (returns
    how: the backend's VACUUM)."""
    for part in _chunks(p.delete):
        sql, args = _cells_of(part)
        with store.transaction() as db:
            for table in ("trial_samples", "trials", "ops", "power_samples"):
                db.execute(f"DELETE FROM {table} WHERE cell_id IN ({sql})", args)
            db.execute(f"DELETE FROM cells WHERE run_id IN ({', '.join('?' * len(part))})", part)
            db.execute(f"DELETE FROM layer_sensitivity WHERE run_id IN ({', '.join('?' * len(part))})", part)
            db.execute(f"DELETE FROM runs WHERE run_id IN ({', '.join('?' * len(part))})", part)
    for part in _chunks(p.strip):
        sql, args = _cells_of(part)
        with store.transaction() as db:
            db.execute(f"DELETE FROM trial_samples WHERE cell_id IN ({sql})", args)
    return store.backend.vacuum()
