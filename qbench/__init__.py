"""qbench: measure the speed/memory/energy/accuracy trade of quantized PyTorch models on real devices.

Importing this package is cheap: torch and executorch load only when a pipeline stage runs.

    >>> df = qbench.load("reports/qbench.db", "last")            # one row per cell of the newest run
    >>> cmp = qbench.compare("last~1", "last", threshold="5%")   # as `qbench compare last~1 last`

Runs are named as on the command line (an id, a unique prefix, `last`, `last~N`, `last:SUITE`); one
that names no run raises qbench.errors.UsageError (the CLI's exit 2). See docs/python-api-and-gate.md.
"""

from qbench.version import __version__  # noqa: F401


def load(db=None, run_id=None, *, parse_json: bool = True):
    """One row per cell, as qbench.results.load (typed columns, run_status, speedup_vs_fp32)."""
    from qbench.results.frame import load as _load

    return _load(db, run_id, parse_json=parse_json)


def compare(base: str, new: str, db=None, **options):
    """Compare two runs cell by cell; a pandas DataFrame (ratio of medians, bootstrap CI, verdicts).
    `threshold` and `growth` take what the CLI takes ("5%", 0.05).

    >>> qbench.compare("20261127-080000-ab12", "last", threshold="5%")
    """
    from qbench.report.compare import compare_runs
    from qbench.results.frame import default_db

    return compare_runs(db or default_db(), base, new, **options).to_frame()
