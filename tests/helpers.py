"""Plain functions the tests share: running the qbench CLI, writing small suites, process and socket
helpers. Tests import these from here; tests/conftest.py keeps only fixtures."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Variables that would make a test's outcome depend on the caller's shell rather than on the test:
# the terminal's width and kind, the user's default store and MLflow server. A test that wants one
# passes it in `env`.
NOT_INHERITED = ("COLUMNS", "TERM", "QBENCH_DB", "MLFLOW_TRACKING_URI")


Env = Mapping[str, str | None]


def cli_env(env: Env | None = None) -> dict[str, str]:
    """The environment a test's qbench runs in: this process's minus NOT_INHERITED, plus `env` (a None
    value removes that variable)."""
    merged = {**{k: v for k, v in os.environ.items() if k not in NOT_INHERITED}, **(env or {})}
    return {k: v for k, v in merged.items() if v is not None}


def python(*args, cwd=None, env: Env | None = None, timeout: float = 1200, input: str | None = None,
           check: bool = False) -> subprocess.CompletedProcess:
    """Run this interpreter with `args` (str()-ed) in `cli_env(env)`, text output captured. `check`: a
    non-zero exit fails the test with the command's stderr."""
    argv = [sys.executable, *map(str, args)]
    proc = subprocess.run(argv, cwd=cwd, env=cli_env(env), input=input, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv[1:])} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def qbench(*args, cwd=None, env: Env | None = None, timeout: float = 1200, input: str | None = None,
           check: bool = False) -> subprocess.CompletedProcess:
    """Run the qbench CLI in a subprocess as a user would (`python -m qbench ARGS`); see `python`. A test
    module that also imports the qbench package imports this as `qbench as qbench_cli`."""
    return python("-m", "qbench", *args, cwd=cwd, env=env, timeout=timeout, input=input, check=check)


def qbench_popen(*args, cwd=None, env: Env | None = None, stdout=subprocess.PIPE) -> subprocess.Popen:
    """Start the qbench CLI in the background (stdout and stderr piped, text), for tests that act mid-run."""
    return subprocess.Popen([sys.executable, "-m", "qbench", *map(str, args)], cwd=cwd, env=cli_env(env),
                            stdout=stdout, stderr=subprocess.PIPE, text=True)


def write_suite(folder: Path, text: str, name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


FP32 = "{name: fp32, kind: fp32}"


def tiny_suite(name: str, *, devices: str = "host", trials: int = 1, recipes: Iterable[str] = (FP32,), top: str = "",
               benchmark: str = "quiet_start: {max_wait_s: 0}", settings: Mapping[str, object] | None = None,
               model: str = "tiny_mlp", source: str = "models/tiny.py:tiny_mlp", shape: str = "1, 64") -> str:
    """The quickest real suite (for `suite_dir`): tiny_mlp with short fixed trials (max_trials = trials:
    no extra trial for precision, so counts do not depend on the machine's load). `recipes`: YAML flow
    items; `top`: more top-level YAML lines; `benchmark`: more `benchmark:` keys; `settings`: replaces
    these base `benchmark:` values (None leaves a key out); `model`, `source` (python:), `shape`: the model."""
    base = {"warmup": 2, "warmup_seconds": 0, "iterations": 5, "min_seconds": 0, "trials": trials,
            "max_trials": trials, "threads": 1, "timeout_seconds": 60, **(settings or {})}
    keys = ", ".join([f"{k}: {v}" for k, v in base.items() if v is not None] + ([benchmark] if benchmark else []))
    items = "".join(f"  - {r}\n" for r in recipes)
    return (f"name: {name}\nmodels:\n  - name: {model}\n    source: python:{source}\n"
            f"    inputs: [{{shape: [{shape}]}}]\nrecipes:\n{items}{top}devices: [{devices}]\n"
            f"benchmark: {{{keys}}}\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=10).stdout.split()


def wait_for(cond, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


def unique_sleep() -> str:
    """A float duration no other process uses, so `pgrep -f` finds exactly ours."""
    return f"{secrets.randbelow(400) + 500}.{secrets.randbelow(90000) + 10000}"


def halve_samples(db, run_id: str, recipe: str, model: str | None = None) -> None:
    """Plant a regression for the next run's gate: the run's stored samples of these cells become twice
    as fast (packed blobs and trial summaries rewritten the way the store writes them)."""
    speed_up_samples(db, run_id, 2, recipe, model)


def speed_up_samples(db, run_id: str, factor: int, recipe: str | None = None, model: str | None = None) -> None:
    """The run's stored samples (of these cells; None: all) become `factor` times as fast."""
    import sqlite3

    from qbench.results.packing import unpack
    from qbench.results.store import ResultsStore

    con = sqlite3.connect(db, isolation_level=None)
    rows = con.execute("SELECT s.cell_id, s.trial, s.latency_ns, s.thread_cpu_ns FROM trial_samples s JOIN cells c "
                       "USING (cell_id) WHERE c.run_id=? AND (? IS NULL OR c.recipe=?) AND (? IS NULL OR c.model=?)",
                       (run_id, recipe, recipe, model, model)).fetchall()
    assert rows, f"no samples of {run_id} {model or '*'}/{recipe or '*'}"
    con.execute("BEGIN")
    for cell_id, trial, ns, cpu in rows:
        ResultsStore.write_trial_samples(con, cell_id, trial, unpack(ns) // factor, None if cpu is None else unpack(cpu))
    con.execute("COMMIT")
    con.close()
