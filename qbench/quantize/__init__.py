"""Quantization recipes (fp32, eager, ptq, dynamic, qat, int4-weight) registered in RECIPES, and calibration data."""

from qbench.quantize.base import RECIPES, Recipe  # noqa: F401
from qbench.quantize import fp32, ptq, dynamic, qat, int4_weight  # noqa: F401,E402
