"""qbench: measure the speed/memory/energy/accuracy trade of quantized PyTorch models on real devices.

Importing this package is cheap: torch and executorch load only when a pipeline stage runs.
"""

__version__ = "0.1.0"


def compare(base: str, new: str, db=None, **options):
    """Compare two runs cell by cell; a pandas DataFrame (ratio of medians, bootstrap CI, verdicts).

    >>> qbench.compare("20261127-080000-ab12", "20261128-080000-cd34", threshold=0.05)
    """
    from qbench.report.compare import compare_runs
    from qbench.results.frame import default_db

    return compare_runs(db or default_db(), base, new, **options).to_frame()
