"""XNNPACKQuantizer configuration shared by the int8 recipes."""

from __future__ import annotations

from qbench.quantize.skip import SkipSpec


def make_quantizer(*, per_channel: bool, dynamic: bool = False, qat: bool = False, skip: SkipSpec | None = None):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    from qbench.quantize.skip import node_filter

    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_dynamic=dynamic, is_qat=qat)
    quantizer = XNNPACKQuantizer().set_global(config)
    if skip:
        # A node filter rather than set_module_name(name, None): executorch 1.5's XNNPACKQuantizer
        # refuses a None config by name, and the filter covers types and names alike.
        quantizer.set_filter_function(node_filter(skip))
    return quantizer


def calibrate(prepared, batches) -> None:
    import torch

    with torch.no_grad():
        for batch in batches:
            prepared(*batch)
