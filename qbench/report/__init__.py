"""Reports: the per-run summary page (summary_page.py), comparison statistics (stats.py)."""
