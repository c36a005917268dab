"""Quantization recipes (fp32, eager, ptq, dynamic, qat) registered in RECIPES, and calibration data."""

from qbench.quantize.base import RECIPES, Recipe  # noqa: F401
from qbench.quantize import fp32, ptq, dynamic, qat  # noqa: F401,E402
