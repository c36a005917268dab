"""Results: the SQLite store (store.py) and pandas views of it (frame.py).

    >>> import qbench.results
    >>> df = qbench.results.load("reports/qbench.db")          # one row per cell
    >>> raw = qbench.results.load_samples("reports/qbench.db")  # one row per iteration
"""

from qbench.results.frame import load, load_samples  # noqa: F401
