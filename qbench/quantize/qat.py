"""`qat`: quantization-aware training with fake-quant, then convert.

With a dataset (the model's `dataset:`), the fake-quantized model is fine-tuned on the train split:
cross-entropy against integer class labels, or MSE against the fp32 model's outputs when the labels
are not classes (qat_train.py). Without one, the loop distils from the fp32 model on the calibration
data: it minimises the MSE between the fake-quantized outputs and the fp32 outputs (the held-out
inputs are never used).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from qbench.quantize.base import RECIPES, Recipe
from qbench.quantize.skip import SkipSpec
from qbench.quantize.xnnpack import make_quantizer


class QatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    per_channel: bool = Field(True, description="weights: one scale per output channel (false: per tensor)")
    steps: PositiveInt = Field(20, description="distillation steps from the fp32 model (without a dataset)")
    epochs: PositiveInt = Field(1, description="passes over the train split (with a labelled dataset)")
    batch_size: PositiveInt = Field(32, description="training batch (with a dataset); the .pte keeps the "
                                                    "declared batch")
    lr: float = Field(1e-4, gt=0, description="learning rate")
    optimizer: Literal["sgd", "adam"] = Field("adam", description="the training optimizer")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    seed: int = Field(0, description="seed of the training order")
    # With the small batches of a calibration set, updating batch-norm statistics drifts away from fp32.
    freeze_bn_after: int = Field(0, ge=0, description="batch-norm running statistics are frozen after this "
                                                      "many steps (0: frozen from the start)")
    freeze_observers_after: Optional[NonNegativeInt] = Field(
        None, description="quantization ranges (observers) stop moving after this many steps; null: they "
                          "adapt throughout")
    skip: SkipSpec = Field(default_factory=SkipSpec, description="modules kept in fp32 (mixed precision)")


class Qat(Recipe):
    Options = QatOptions
    needs_calibration = True
    uses_calibration = True
    trains = True  # with a dataset, its train split must not be empty
    pt2e_graph = True

    def apply(self, graph, options: QatOptions, data, reference):
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        from qbench.quantize.qat_train import distill, train_on_split

        quantizer = make_quantizer(per_channel=options.per_channel, qat=True, skip=options.skip)
        if data.train is not None:
            prepared, record = train_on_split(graph, reference, options, data, quantizer)
        else:
            prepared, record = distill(graph, reference, options, data, quantizer)
        return convert_pt2e(prepared), {"qat": record}

    def options_for_one_export(self, options: QatOptions, data) -> QatOptions:
        """With a dataset, train at the model's declared batch: a larger training batch re-exports the
        model (qat_train._export_dynamic_batch)."""
        if data.train is not None:
            return options.model_copy(update={"batch_size": data.example[0].shape[0]})
        return options


RECIPES.register("qat")(Qat())
