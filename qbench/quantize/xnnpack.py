"""XNNPACKQuantizer configuration shared by the int8 recipes."""

from __future__ import annotations


def make_quantizer(*, per_channel: bool, dynamic: bool = False, qat: bool = False):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=per_channel, is_dynamic=dynamic, is_qat=qat)
    return XNNPACKQuantizer().set_global(config)


def calibrate(prepared, batches) -> None:
    import torch

    with torch.no_grad():
        for batch in batches:
            prepared(*batch)
