"""The cell pipeline: grid.py (which cells, in what order), prepare.py (model -> recipe -> artifact),
measure.py (one trial on a device), orchestrator.py (the run: store, resume, interruption)."""
