"""Recipe controls on real PT2E/torchao graphs: modules kept in fp32, int4-weight (8da4w) lowering to
XNNPACK, and the QAT schedule (batch-norm statistics and observers frozen after K steps)."""

from __future__ import annotations

import torch
from torch import nn

from qbench.quantize.skip import SkipSpec, module_skipped, node_filter, unknown_names


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)).eval()


def quantized_linears(skip: SkipSpec) -> list[str]:
    """Which linear modules got an int8 (dequantized) weight after PTQ with this skip."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from qbench.quantize.xnnpack import calibrate, make_quantizer

    graph = torch.export.export(mlp(), (torch.randn(1, 64),)).module()
    prepared = prepare_pt2e(graph, make_quantizer(per_channel=True, skip=skip))
    calibrate(prepared, [(torch.randn(1, 64),) for _ in range(4)])
    converted = convert_pt2e(prepared)
    out = []
    for node in converted.graph.nodes:
        if node.target == torch.ops.aten.linear.default:
            weight = node.args[1]
            if weight.op == "call_function" and "dequantize" in str(weight.target):
                out.append(list(node.meta["nn_module_stack"].values())[-1][0])
    return out


def test_skip_by_name_and_by_type_keeps_those_linears_fp32():
    assert quantized_linears(SkipSpec()) == ["0", "2", "4"]
    assert quantized_linears(SkipSpec(modules=["0", "4"])) == ["2"]
    assert quantized_linears(SkipSpec(module_types=["torch.nn.Linear"])) == []  # = torch.nn.modules.linear.Linear


def test_skip_names_cover_submodules_and_typos_are_found():
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
    assert module_skipped(SkipSpec(modules=["features"]), model.features[0], "features.0")
    assert not module_skipped(SkipSpec(modules=["feat"]), model.features[0], "features.0")
    assert module_skipped(SkipSpec(module_types=["Conv2d"]), model.features[0], "features.0")
    assert module_skipped(SkipSpec(module_types=["torch.nn.Conv2d"]), model.features[0], "features.0")
    assert not module_skipped(SkipSpec(module_types=["ReLU"]), model.features[0], "features.0")
    assert unknown_names(SkipSpec(modules=["features.0", "features.7"], module_types=["Conv2d", "Linear"]), [model]) \
        == (["features.7"], ["Linear"])
    keep = node_filter(SkipSpec(modules=["features"]))

    class Node:
        meta = {"nn_module_stack": {"a": ("L['self'].features.0", "torch.nn.modules.conv.Conv2d")}}

    assert keep(Node()) is False


def test_int4_weight_lowers_into_the_xnnpack_delegate(tmp_path):
    from qbench.export.lower import lower_to_pte
    from qbench.quantize import RECIPES
    from qbench.quantize.int4_weight import Int4WeightOptions

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(48 + 16, 10),
                          nn.ReLU(), nn.Linear(10, 10)).eval()
    x = torch.randn(1, 64)
    recipe = RECIPES.get("int4-weight")
    q, record = recipe.apply(None, Int4WeightOptions(skip=SkipSpec(modules=["4"])), data=None, reference=model)
    assert record["int4"] == {"linears": 2, "kept_fp32": [
        {"module": "4", "why": "skip"}, {"module": "6", "why": "in_features 10 not a multiple of 32"}]}
    int4 = lower_to_pte(q, (x,), tmp_path / "int4.pte")
    fp32 = lower_to_pte(torch.export.export(model, (x,)).module(), (x,), tmp_path / "fp32.pte")
    d = int4.delegation
    assert d["not_delegated_by_op"] == {} and d["delegated_ops"] == d["total_ops"]
    # the 8da4w pattern itself went into XNNPACK: per-token activation quantization and int4 weights
    assert d["delegated_by_op"]["torchao_choose_qparams_affine_default"] == 2
    assert d["delegated_by_op"]["torchao_dequantize_affine_default"] == 4
    assert int4.pte_bytes < 0.5 * fp32.pte_bytes
    from executorch.runtime import Runtime

    out = Runtime.get().load_program(str(tmp_path / "int4.pte")).load_method("forward").execute([x])[0]
    ref = model(x)
    assert torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), dim=0) > 0.98


def test_training_mode_keeps_the_models_dropout_rate():
    """torchao 0.18's move_exported_model_to_train rewrites every dropout to p=0.5; ours keeps 0.2."""
    from torchao.quantization.pt2e import move_exported_model_to_train

    from qbench.quantize.qat_train import set_training

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2), nn.Linear(4, 2)).eval()

    def dropouts(g):
        return [n.args[1:] for n in g.graph.nodes if n.target == torch.ops.aten.dropout.default]

    ours = torch.export.export(model, (torch.randn(2, 4),)).module()
    set_training(ours, dropout=True)
    assert dropouts(ours) == [(0.2, True)]
    theirs = torch.export.export(model, (torch.randn(2, 4),)).module()
    move_exported_model_to_train(theirs)
    assert dropouts(theirs) == [(0.5, True)]  # when this starts failing, torchao fixed it


def test_freeze_helpers_flip_batch_norm_and_observers():
    from torchao.quantization.pt2e import FakeQuantizeBase
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from qbench.quantize.qat_train import freeze_bn_stats, freeze_observers, set_training
    from qbench.quantize.xnnpack import make_quantizer

    # linear + batch norm: the same batch-norm op as a CNN's, without conv-bn fusion's slow pattern matching
    model = nn.Sequential(nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).eval()
    prepared = prepare_qat_pt2e(torch.export.export(model, (torch.randn(1, 16),)).module(),
                                make_quantizer(per_channel=True, qat=True))
    set_training(prepared, dropout=True, batch_norm=True)

    def bn_training():
        return [n.args[5] for n in prepared.graph.nodes if n.target == torch.ops.aten.batch_norm.default]

    assert bn_training() == [True]
    x = torch.randn(1, 16)  # the graph was exported for one sample
    freeze_bn_stats(prepared)
    assert bn_training() == [False]
    before = {k: v.clone() for k, v in prepared.state_dict().items() if "running_mean" in k}
    prepared(x)
    after = {k: v for k, v in prepared.state_dict().items() if "running_mean" in k}
    assert before and all(torch.equal(before[k], after[k]) for k in before)  # statistics no longer move
    fq = [m for m in prepared.modules() if isinstance(m, FakeQuantizeBase)]
    assert fq and all(m.observer_enabled.item() == 1 for m in fq)
    freeze_observers(prepared)
    assert all(m.observer_enabled.item() == 0 for m in fq)


def test_qat_on_a_labeled_split_trains_with_cross_entropy_and_reports_progress():
    from qbench.datasets import load_dataset, split_dataset
    from qbench.datasets.batches import fit_to_inputs
    from qbench.quantize import RECIPES
    from qbench.quantize.calibration import InputData
    from qbench.quantize.qat import QatOptions
    from qbench.suite.schema import InputSpec, SklearnDataset

    spec = SklearnDataset(name="digits", kind="sklearn", load="digits", splits={"train": 200, "calibration": 0, "eval": 50})
    splits = split_dataset(load_dataset(spec), spec)
    inputs = [InputSpec(shape=[1, 64])]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10)).eval()
    seen: list[str] = []
    data = InputData(calibration=[], held_out=[], example=(torch.randn(1, 64),),
                     train=fit_to_inputs(splits.train, inputs, "mlp"), progress=seen.append)
    graph = torch.export.export(model, data.example).module()
    options = QatOptions(epochs=3, batch_size=32, lr=1e-2, freeze_observers_after=10)
    converted, extra = RECIPES.get("qat").apply(graph, options, data, reference=model)
    record = extra["qat"]
    assert record["mode"] == "labels" and record["loss"] == "cross_entropy" and record["batch_size"] == 32
    assert record["steps"] == 18 and len(record["loss_per_epoch"]) == 3  # 6 full batches (8 left over: dropped)
    assert record["loss_per_epoch"][-1] < record["loss_per_epoch"][0]  # it learns the digits
    assert record["observers_frozen_at_step"] == 10 and record["bn_frozen_at_step"] == 0
    assert any(s.startswith("qat epoch 3/3") for s in seen)
    assert converted(torch.randn(1, 64)).shape == (1, 10)  # trained at 32, runs at the declared batch


def test_integer_scalar_arithmetic_stays_integer_through_the_quantizer():
    """executorch 1.5.1's XNNPACKQuantizer lifts add/mul scalars to float constants; position-id
    arithmetic must stay int64 (it indexes), while float math is still quantized."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from qbench.quantize.xnnpack import make_quantizer

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.randn(20, 8))
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            positions = torch.arange(x.shape[1]) + 2  # integer index arithmetic
            return self.fc(x + self.table[positions] * 0.5)

    torch.manual_seed(0)
    net, x = Net().eval(), torch.randn(1, 6, 8)
    graph = torch.export.export(net, (x,)).module()
    prepared = prepare_pt2e(graph, make_quantizer(per_channel=True))
    prepared(x)
    out = convert_pt2e(prepared)(x)
    assert out.shape == (1, 6, 4) and (out - net(x)).abs().max() < 0.1
    targets = {str(n.target) for n in prepared.graph.nodes}
    assert "aten.add.Scalar" in targets  # the integer add, moved to the overload the quantizer ignores
