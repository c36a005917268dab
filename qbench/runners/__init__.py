"""Runners: programs that time a model in a fresh process on a device (contract.md).

python_runner.py (executorch.runtime), eager_runner.py (PyTorch reference), native/ (C++), and
choice.py, which picks one per device.
"""
