"""Runners: programs that time a model in a fresh process on a device (contract.md).

python_runner.py (executorch.runtime) and eager_runner.py (PyTorch reference): self-contained scripts
pushed to the device; python_launch.py starts them there; native/ (C++, built by native_build.py,
started by native_runner.py); choice.py picks one per device.
"""
