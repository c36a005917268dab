"""Reports: the per-run summary page (summary_page.py), compare, gate, JUnit, Markdown (statistics: qbench/stats.py)."""
