"""Results: the SQLite store (store.py) and pandas views of it (frame.py).

    >>> import qbench.results
    >>> df = qbench.results.load("reports/qbench.db")          # one row per cell
    >>> raw = qbench.results.load_samples("reports/qbench.db")  # one row per iteration
    >>> layers = qbench.results.load_layers("reports/qbench.db")  # one row per layer (qbench sensitivity)
"""

from qbench.results.frame import load, load_layers, load_samples  # noqa: F401
