"""`qat`: quantization-aware training with fake-quant, then convert.

Without labels the loop distils from the fp32 model: it minimises the MSE between the fake-quantized
model's outputs and the fp32 outputs on the calibration data (the held-out inputs are never used).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from qbench.quantize.base import RECIPES
from qbench.quantize.xnnpack import make_quantizer


class QatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    per_channel: bool = True
    steps: PositiveInt = 20
    lr: float = Field(1e-4, gt=0)
    optimizer: Literal["sgd", "adam"] = "adam"
    seed: int = 0
    # Batch-norm running statistics are frozen after this many steps (0: frozen from the start).
    # With the small batches of a calibration set, updating them drifts away from the fp32 model.
    freeze_bn_after: int = Field(0, ge=0)


class Qat:
    Options = QatOptions
    needs_calibration = True
    lowers_to_pte = True

    def apply(self, graph, options: QatOptions, data, reference):
        import torch
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

        torch.manual_seed(options.seed)
        prepared = prepare_qat_pt2e(graph, make_quantizer(per_channel=options.per_channel, qat=True))
        with torch.no_grad():
            targets = [_first(reference(*batch)) for batch in data.calibration]
        params = [p for p in prepared.parameters() if p.requires_grad]
        opt = (torch.optim.Adam if options.optimizer == "adam" else torch.optim.SGD)(params, lr=options.lr)
        # prepare_qat_pt2e leaves batch norm in training mode; we start in eval (frozen statistics)
        # unless asked to let them adapt for the first `freeze_bn_after` steps.
        move_exported_model_to_eval(prepared)
        losses = []
        for step in range(options.steps):
            if step == 0 and options.freeze_bn_after > 0:
                move_exported_model_to_train(prepared)
            if step == options.freeze_bn_after and step > 0:
                move_exported_model_to_eval(prepared)
            i = step % len(data.calibration)
            loss = torch.nn.functional.mse_loss(_first(prepared(*data.calibration[i])), targets[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        move_exported_model_to_eval(prepared)
        prepared.qbench_training_losses = losses
        return convert_pt2e(prepared)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


RECIPES.register("qat")(Qat())
