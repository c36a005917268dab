"""`fp32`: no quantization; the XNNPACK fp32 baseline every other recipe is compared with."""

from __future__ import annotations

from qbench.quantize.base import RECIPES, NoOptions, Recipe


class Fp32(Recipe):
    Options = NoOptions
    quantizes = False
    baseline = True

    def apply(self, graph, options, data, reference):
        return graph, {}


class Eager(Recipe):
    """`eager`: the fp32 model run by PyTorch itself (a reference point, host only)."""

    Options = NoOptions
    lowers_to_pte = False
    quantizes = False

    def apply(self, graph, options, data, reference):
        return graph, {}


RECIPES.register("fp32")(Fp32())
RECIPES.register("eager")(Eager())
