"""Results: the SQLite store (store.py) and pandas views of it (frame.py).

    >>> import qbench.results
    >>> df = qbench.results.load("reports/qbench.db")          # one row per cell
    >>> raw = qbench.results.load_samples("reports/qbench.db")  # one row per iteration
    >>> t = qbench.results.trend("reports/qbench.db", "mobile", last=90)  # one row per cell × run
    >>> layers = qbench.results.load_layers("reports/qbench.db")  # one row per layer (qbench sensitivity)
    >>> df = qbench.results.load("reports/qbench.db", "last~1:mobile")  # runs named as on the command line

Run references (an id, a unique prefix, `last`, `last~N`, `last:SUITE`) are resolved by runref.py;
one naming no run raises RunRefError. See docs/python-api-and-gate.md.
"""

from qbench.results.frame import load, load_layers, load_samples  # noqa: F401


def trend(db=None, suite=None, *, last=None, since=None, threshold=0.05):
    """Per cell × run: median with CI, ratio against the cell's reference run, verdict, change point,
    speedup over fp32 (what `qbench trend` draws); threshold 0.05 or "5%"; see qbench.results.cell_trends."""
    from qbench.results.cell_trends import trend as _trend  # lazily: pandas is imported on first use

    return _trend(db, suite, last=last, since=since, threshold=threshold)
