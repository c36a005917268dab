"""A year of nightlies, before and after packed samples (issue 26): store size per night, `trend` over
the year, `compare` of the last two nights, a gated cached rerun's extra time, `load_samples` of one
run; SQLite and PostgreSQL; and whether the figures agree.

    PYTHONPATH=. python benchmarks/nightly_year.py --before /path/to/worktree-of-main --work /tmp/ny \\
        [--nights 365] [--pg-url postgresql://...] [--pg-before-nights 365]

How: one real nightly of a small suite (the smoke suite's 8 cells, 3 trials of 10^4 iterations each) is
run with the *before* code into a SQLite store. The *after* store is a copy of that file opened by this
code (so the schema migrations convert it, and both hold the very same samples). Each store (and a
PostgreSQL copy of each) is then cloned in the database into N nights, a day apart, by
INSERT ... SELECT. Each measurement runs in a fresh process with the code of its side on PYTHONPATH.
A gated rerun (`--baseline last --fail-on-regression 5%`) and an ungated one run the suite again on
each SQLite year store (artifacts cached), and the difference of their wall times is reported beside
the gate's own step timed alone (compare_runs of the new run vs its baseline), since on a busy host the
difference of two end-to-end runs is mostly noise. Timings are wall clock; the machine's load average
is printed with them.

Phases (each also callable alone): nightly, clone, measure; the driver runs them all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "nightly"
BENCH = "{warmup: 20, warmup_seconds: 0, iterations: 10000, min_seconds: 0, trials: 3, threads: 1}"
TABLES = ("runs", "cells", "trials", "samples", "trial_samples", "ops", "power_samples", "layer_sensitivity")


def python(code: Path, *args, cwd=None, timeout=7200) -> str:
    """This script's phase `args` in a fresh process importing qbench from `code`."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERM")}
    env["PYTHONPATH"] = str(code)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} with {code} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


# ------------------------------------------------------------------------------------------ nightly
def write_suite(folder: Path) -> Path:
    shutil.copytree(REPO / "suites" / "models", folder / "models", dirs_exist_ok=True)
    text = (REPO / "suites" / "smoke.yaml").read_text().replace("name: smoke", f"name: {SUITE}")
    lines = [f"benchmark: {BENCH}" if ln.startswith("benchmark:") else ln for ln in text.splitlines()]
    path = folder / "nightly.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def qbench(*args, cwd: Path) -> float:
    """`qbench ARGS` with the code on this process's PYTHONPATH; its wall time in seconds."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERM")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "qbench", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if proc.returncode not in (0, 1, 3):  # 1: noisy/failed cells, 3: a regression: still a measurement
        raise SystemExit(f"qbench {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


# -------------------------------------------------------------------------------------------- clone
def _columns(store, table: str) -> list[str]:
    return sorted(store.backend.columns(table)) if table in store.backend.tables() else []


def copy_into(src: Path, target) -> None:
    """The SQLite file `src` into `target` (a new store of this code's schema): every row of every table."""
    import sqlite3

    from qbench.results.store import ResultsStore

    store = ResultsStore(target)
    con = sqlite3.connect(src)
    try:
        for table in TABLES:
            cols = _columns(store, table)
            have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
            cols = [c for c in cols if c in have]
            if not cols:
                continue
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            store.db.execute("DELETE FROM " + table)
            store.db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                 rows)
        if hasattr(store.backend, "pg"):
            store.db.execute("SELECT setval(pg_get_serial_sequence('cells', 'cell_id'), (SELECT max(cell_id) FROM cells))")
    finally:
        con.close()
        store.close()


def clone(target, nights: int) -> None:
    """The store's one run becomes `nights` runs, a day apart (INSERT ... SELECT in the database)."""
    from datetime import datetime, timedelta

    from qbench.results.store import ResultsStore

    store = ResultsStore(target)
    try:
        [run] = [dict(r) for r in store.runs()]
        cells = [r[0] for r in store.db.execute("SELECT cell_id FROM cells WHERE run_id=? ORDER BY cell_id",
                                                (run["run_id"],))]
        lo, span = min(cells), max(cells) - min(cells) + 1
        start = datetime.fromisoformat(run["started_at"])
        for night in range(1, nights):
            rid = f"{run['run_id']}-n{night:03d}"
            when = (start + timedelta(days=night)).isoformat()
            offset = night * span
            with store.transaction() as db:
                _clone_rows(store, db, run["run_id"], rid, when, offset, lo, lo + span)
        if hasattr(store.backend, "pg"):
            store.db.execute("SELECT setval(pg_get_serial_sequence('cells', 'cell_id'), (SELECT max(cell_id) FROM cells))")
    finally:
        store.close()


def _clone_rows(store, db, src: str, rid: str, when: str, offset: int, lo: int, hi: int) -> None:
    for table in TABLES:
        cols = [c for c in _columns(store, table) if c != "run_seq"]
        if not cols:
            continue
        swap = {"run_id": "?", "started_at": "?", "ended_at": "?", "cell_id": f"cell_id + {offset}"}
        select = ", ".join(swap.get(c, c) for c in cols)
        args = [{"run_id": rid, "started_at": when, "ended_at": when}[c] for c in cols if c in
                ("run_id", "started_at", "ended_at")]
        where = "run_id = ?" if "run_id" in cols else f"cell_id >= {lo} AND cell_id < {hi}"
        db.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table} WHERE {where}", args + [src]
                   if "run_id" in cols else args)


# ------------------------------------------------------------------------------------------ measure
def store_bytes(target) -> int:
    from qbench.results.store import ResultsStore

    if str(target).startswith("postgresql://"):
        store = ResultsStore(target)
        try:
            return int(store.db.execute("SELECT pg_database_size(current_database())").fetchone()[0])
        finally:
            store.close()
    import sqlite3

    con = sqlite3.connect(target)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return Path(target).stat().st_size


def measure(target, out: Path, trend_last: int | None = None) -> dict:
    """Size, trend, compare and load_samples on the year store; the figures for the agreement check."""
    import resource

    import qbench.results
    from qbench.report.compare import compare_runs
    from qbench.results.store import ResultsStore

    import qbench.report.trend  # noqa: F401  (imports are not what is measured: ~5 s on a busy host)

    store = ResultsStore(target)
    runs = [r["run_id"] for r in store.runs()]
    store.close()
    res = {"nights": len(runs), "store_bytes": store_bytes(target), "load": load()}
    qbench.results.trend(target, last=2)  # warm: lazy imports and caches are not the year's cost
    t0 = time.perf_counter()
    df = qbench.results.trend(target, last=trend_last)  # the store holds one suite
    res["trend_s"] = time.perf_counter() - t0
    res["trend_rows"], res["trend_nights"] = len(df), int(df["run_id"].nunique())
    t0 = time.perf_counter()
    report = compare_runs(target, runs[-2], runs[-1])
    res["compare_s"] = time.perf_counter() - t0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    frame = qbench.results.load_samples(target, runs[-1])
    res["load_samples_s"] = time.perf_counter() - t0
    res["load_samples_rows"] = len(frame)
    res["load_samples_frame_mib"] = frame.memory_usage(deep=True).sum() / 2**20
    res["load_samples_peak_rss_growth_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    last = df[df["run_id"] == runs[-1]]
    res["trend_last_night"] = {f"{r.model}/{r.recipe}": [r.median_ms, r.ci_low_ms, r.ci_high_ms]
                               for r in last.itertuples()}
    res["compare_last_two"] = {f"{c.model}/{c.recipe}": [c.latency.ratio, c.latency.low, c.latency.high,
                                                         c.latency.verdict] for c in report.cells if c.latency}
    out.write_text(json.dumps(res, indent=1))
    return res


def gate_step(target) -> dict:
    """The gate's own work after a rerun: compare_runs of the newest run against its baseline."""
    from qbench.report.compare import compare_runs
    from qbench.results.store import ResultsStore

    store = ResultsStore(target)
    new = store.runs()[-1]
    base, new = store.latest_run_id(new["suite"], before=new["run_id"]), new["run_id"]
    store.close()
    t0 = time.perf_counter()
    compare_runs(target, base, new)
    return {"gate_compare_s": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------- driver
def one_night(code: Path, folder: Path, night_db: Path) -> Path:
    """The nightly's store in this side's layout (the after code migrates the before file on open)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "night.db"
    shutil.copy(night_db, path)
    t0 = time.perf_counter()
    python(code, "clone", path, 1)  # one night: opening it is all that happens
    (folder / "open_s.txt").write_text(f"{time.perf_counter() - t0:.2f}")
    return path


def sqlite_year(code: Path, folder: Path, night_db: Path, nights: int, trend_last: int | None = None) -> dict:
    night = one_night(code, folder, night_db)
    year = folder / "year.db"
    shutil.copy(night, year)
    first = json.loads(python(code, "size", year))["bytes"]
    t0 = time.perf_counter()
    python(code, "clone", year, nights)
    return {"one_night_bytes": first, "clone_s": time.perf_counter() - t0,
            **json.loads(python(code, "measure", year, folder / "sqlite.json", *([trend_last] if trend_last else [])))}


def pg_year(code: Path, folder: Path, night_db: Path, nights: int, pg_url: str, trend_last: int | None = None) -> dict:
    url = pg_database(pg_url, f"ny_{folder.name}")
    python(code, "copy", one_night(code, folder, night_db), url)
    first = json.loads(python(code, "size", url))["bytes"]
    t0 = time.perf_counter()
    python(code, "clone", url, nights)
    return {"one_night_bytes": first, "clone_s": time.perf_counter() - t0,
            **json.loads(python(code, "measure", url, folder / "pg.json", *([trend_last] if trend_last else [])))}


def reruns(code: Path, folder: Path) -> dict:
    """An ungated and a gated cached rerun of the suite on the SQLite year store, and the gate's step alone."""
    suite, year = write_suite(folder), folder / "year.db"
    out = {"ungated_rerun_s": json.loads(python(code, "rerun", suite, year, "plain", cwd=folder))["wall_s"],
           "gated_rerun_s": json.loads(python(code, "rerun", suite, year, "gated", cwd=folder))["wall_s"],
           "load": load()}
    return {**out, **json.loads(python(code, "gate-step", year))}


def pg_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def agreement(before: dict, after: dict) -> dict:
    """Medians (exact?), the cells' CI bands and the last two nights' ratio CIs, before vs after."""
    tb, ta = before["trend_last_night"], after["trend_last_night"]
    cb, ca = before["compare_last_two"], after["compare_last_two"]
    rel = lambda a, b: abs(a - b) / abs(b) if b else 0.0  # noqa: E731
    return {
        "median_max_rel_diff": max(rel(ta[k][0], tb[k][0]) for k in tb),
        "median_identical": all(ta[k][0] == tb[k][0] for k in tb),
        "ci_band_max_rel_diff": max(max(rel(ta[k][1], tb[k][1]), rel(ta[k][2], tb[k][2])) for k in tb),
        "cells": {k: {"before": tb[k], "after": ta[k]} for k in tb},
        "compare": {k: {"before": cb[k], "after": ca.get(k)} for k in cb},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="phase", required=True)
    d = sub.add_parser("all")
    d.add_argument("--before", type=Path, required=True, help="a worktree of the code to compare with (main)")
    d.add_argument("--work", type=Path, required=True)
    d.add_argument("--nights", type=int, default=365)
    d.add_argument("--pg-url", default=None, help="a PostgreSQL server to measure on too (databases are created)")
    d.add_argument("--pg-before-nights", type=int, default=None, help="nights of the before layout on PostgreSQL")
    d.add_argument("--night", type=Path, default=None, help="reuse a nightly's SQLite store written by --before")
    d.add_argument("--skip-reruns", action="store_true", help="no gated/ungated reruns of the suite")
    d.add_argument("--before-trend-last", type=int, default=None,
                   help="the before code's trend over the newest N nights only (it loads every raw sample of its "
                        "window into one frame: a year of 10^4-sample trials does not fit in memory)")
    for name, nargs in (("nightly", 1), ("clone", 2), ("measure", "+"), ("copy", 2), ("gate-step", 1), ("rerun", 3),
                        ("size", 1)):
        sub.add_parser(name).add_argument("args", nargs=nargs)
    a = ap.parse_args()
    if a.phase == "nightly":
        folder = Path(a.args[0])
        print(json.dumps({"wall_s": qbench("run", write_suite(folder), "--db", folder / "night.db", cwd=folder)}))
    elif a.phase == "clone":
        clone(_target(a.args[0]), int(a.args[1]))
    elif a.phase == "copy":
        copy_into(Path(a.args[0]), _target(a.args[1]))
    elif a.phase == "measure":
        print(json.dumps(measure(_target(a.args[0]), Path(a.args[1]), *(int(x) for x in a.args[2:]))))
    elif a.phase == "size":
        print(json.dumps({"bytes": store_bytes(_target(a.args[0]))}))
    elif a.phase == "gate-step":
        print(json.dumps(gate_step(_target(a.args[0]))))
    elif a.phase == "rerun":
        suite, db, how = a.args
        gate = ["--baseline", "last", "--fail-on-regression", "5%"] if how == "gated" else []
        print(json.dumps({"wall_s": qbench("run", suite, "--db", db, *gate, cwd=Path(suite).parent)}))
    else:
        drive(a)


def _target(text: str):
    return text if text.startswith("postgresql://") else Path(text)


def drive(a) -> None:
    """Steps in order of importance, the result file rewritten after each (a long run can be stopped)."""
    a.work.mkdir(parents=True, exist_ok=True)
    night = a.night
    if night is None:
        (a.work / "night").mkdir(exist_ok=True)
        python(a.before, "nightly", a.work / "night", cwd=a.work / "night")
        night = a.work / "night" / "night.db"
    result: dict = {"load_at_start": load(), "before": {}, "after": {}}
    steps = [("after", "sqlite", lambda: sqlite_year(REPO, a.work / "after", night, a.nights)),
             ("before", "sqlite", lambda: sqlite_year(a.before, a.work / "before", night, a.nights, a.before_trend_last))]
    if a.pg_url:
        steps += [("after", "postgresql", lambda: pg_year(REPO, a.work / "after", night, a.nights, a.pg_url)),
                  ("before", "postgresql", lambda: pg_year(a.before, a.work / "before", night,
                                                           a.pg_before_nights or a.nights, a.pg_url, a.before_trend_last))]
    if not a.skip_reruns:
        steps += [("after", "reruns", lambda: reruns(REPO, a.work / "after")),
                  ("before", "reruns", lambda: reruns(a.before, a.work / "before"))]
    for who, what, step in steps:
        result[who][what] = step()
        if who == "before" and what == "sqlite":
            result["agreement_sqlite"] = agreement(result["before"]["sqlite"], result["after"]["sqlite"])
        result["load_now"] = load()
        (a.work / "result.json").write_text(json.dumps(result, indent=1))
        print(f"{who} {what}: done ({load()})", file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
