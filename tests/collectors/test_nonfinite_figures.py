"""The pieces behind 'non-finite outputs are a finding' (issue 23 item 2), without a run: the
figures, device judging, strict JSON and SVG scales fed NaN and inf."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qbench import strict_json
from qbench.collectors import device_numerics as dn
from qbench.collectors.numerics import cell_findings, compare_leaves, compare_outputs
from qbench.errors import CellError
from qbench.report import svg


def test_nan_in_the_reference_or_only_in_the_program_is_counted_and_worded():
    ref = [np.array([[1.0, np.nan, 2.0]]), np.array([[1.0, 2.0, 3.0]])]
    out = [np.array([[1.0, np.nan, 2.0]]), np.array([[1.0, np.inf, 3.0]])]
    fig = compare_outputs(ref, out, classifier=True, program="quantized program")
    assert fig["sqnr_db"] is fig["top1_agreement"] is fig["max_abs_error"] is None
    assert fig["nonfinite"] == {"values": 6, "fp32": 1, "program": 2}
    assert fig["reason"] == "NaN/inf in 1 of 6 values in fp32 (the model itself; the quantized program: 2)"
    only = compare_outputs([np.ones((1, 3))], [np.array([[1.0, -np.inf, 1.0]])], False, "quantized program")
    assert only["reason"] == "NaN/inf in 1 of 3 values only in the quantized program (fp32 has none)"


def test_structured_outputs_name_the_leaf_and_the_cell_lists_every_one():
    import torch

    ref = [[torch.ones(1, 4), torch.ones(1, 2)]]
    out = [[torch.ones(1, 4), torch.tensor([[float("nan"), 1.0]])]]
    per = compare_leaves(ref, out, ["logits", "aux"], program="quantized program")
    assert per["logits"]["sqnr_db"] == math.inf and "reason" not in per["logits"]
    found = cell_findings(per)
    assert found["nonfinite"] == [{"output": "aux", "values": 2, "fp32": 0, "program": 1}]
    assert found["numerics_reason"].startswith("output 'aux': NaN/inf in 1 of 2 values only in the quantized program")


def test_a_shape_that_changes_between_calls_is_one_line_naming_both_shapes():
    import torch

    ref = [[torch.ones(1, 4)], [torch.ones(1, 3)]]
    with pytest.raises(CellError) as err:
        compare_leaves(ref, ref, ["output"])
    assert str(err.value) == ("numerics: the fp32 model's output changes shape between calls ([1, 4] then [1, 3]): "
                              "numerics need an output whose shape depends only on the input's")


def test_an_all_zero_reference_has_no_sqnr_instead_of_minus_infinity():
    fig = compare_outputs([np.zeros((1, 3))], [np.ones((1, 3))], classifier=False)
    assert fig["sqnr_db"] is None and fig["max_abs_error"] == 1.0
    assert fig["reason"] == "the fp32 output is all zeros: SQNR is undefined"


def test_device_numerics_never_agree_on_nan():
    device = dn.compare(np.array([[[1.0, np.nan]]]), np.array([[[1.0, np.nan]]]), classifier=False)
    both = dn.judge(dict(device), {"nonfinite": {"values": 2, "fp32": 1, "program": 1}}, None)
    assert both["agrees_with_host"] is None and both["reason"].startswith("not compared (NaN/inf on the host too)")
    only_device = dn.judge(dict(device), {"sqnr_db": 40.0}, None)
    assert only_device["agrees_with_host"] is False
    assert only_device["disagreement"].startswith("the device's outputs hold NaN/inf, the host's do not")


def test_strict_json_writes_null_for_every_non_finite_float():
    value = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": (np.float32("nan"), np.float64(2.0)), "d": "NaN"}
    text = strict_json.dumps(value)
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {"a": None, "b": [None, None, 1.5],
                                                                        "c": [None, 2.0], "d": "NaN"}


@pytest.mark.parametrize("lo,hi", [(math.nan, 1.0), (0.0, math.inf), (-math.inf, math.inf), (math.nan, math.nan)])
def test_svg_scales_take_nan_and_inf(lo, hi):
    assert isinstance(svg.nice_ticks(lo, hi), list)
    axis = svg.Axis(lo, hi, 0, 100)
    for v in (lo, hi, 0.5):
        assert math.isfinite(axis(v))
    assert all(math.isfinite(t) for t in axis.ticks())


def test_number_formats_never_raise_on_inf_or_nan():
    from qbench.report import fmt

    for f in (fmt.ms, fmt.num, fmt.bytes_, fmt.ratio, fmt.share, fmt.sqnr, fmt.pct_change):
        assert f(math.inf) and f(-math.inf) and f(math.nan) == fmt.DASH
    assert fmt.ms(math.inf) == "∞" and fmt.sqnr(-math.inf) == "−∞ dB"
