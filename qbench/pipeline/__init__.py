"""The cell pipeline: check.py (the suite, before cell 1), grid.py (which cells, in what order),
prepare.py (model -> recipe -> artifact), measure.py (one trial on a device), orchestrator.py (the
run: store, resume, interruption) and the passes it makes per cell after the trials
(device_numerics_pass.py, generation.py)."""
