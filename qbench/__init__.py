"""qbench: measure the speed/memory/energy/accuracy trade of quantized PyTorch models on real devices.

Importing this package is cheap: torch and executorch load only when a pipeline stage runs.
"""

__version__ = "0.1.0"
