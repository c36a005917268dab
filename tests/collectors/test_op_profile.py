"""Per-operator profiles: the native runner writes an ETDump, ExecuTorch's Inspector reads it (with
the ETRecord written at export), and op_table folds it into one row per op type."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qbench.collectors.op_profile import COLUMNS, export_with_etrecord, op_table
from qbench.errors import QbenchError
from qbench.runners.native_build import build_runner


@pytest.fixture(scope="session")
def runner(tmp_path_factory) -> Path:
    # The same cache as tests/runners uses (QBENCH_CACHE from tests/conftest.py), so one build per session.
    cache = os.environ.get("QBENCH_CACHE") or tmp_path_factory.getbasetemp() / "qbench-cache"
    return build_runner("host", cache_dir=Path(cache))


def profile(runner: Path, pte: Path, etdump: Path, runs: int = 2) -> Path:
    """A short traced run: first inference + `runs` measured iterations, no warm-up."""
    args = ["--model", pte, "--etdump", etdump, "--threads", 1, "--warmup", 0, "--warmup-seconds", 0,
            "--iterations", runs, "--min-seconds", 0, "--json"]  # fmt: skip
    proc = subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return etdump


@pytest.fixture(scope="module")
def mobilenet_int8(tmp_path_factory):
    """torchvision mobilenet_v2 (random weights), static int8 with XNNPACKQuantizer, lowered to XNNPACK."""
    import torch
    import torchvision
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    example = (torch.randn(1, 3, 224, 224),)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, example).module(), quantizer)
    prepared(*example)
    ep = torch.export.export(convert_pt2e(prepared), example)
    folder = tmp_path_factory.mktemp("mobilenet")
    export_with_etrecord(ep, folder / "mv2.pte", folder / "mv2.etrecord")
    return folder / "mv2.pte", folder / "mv2.etrecord"


@pytest.fixture(scope="module")
def partly_delegated(tmp_path_factory):
    """Two linears around a cumsum, which XNNPACK does not take: two delegate calls + one kernel."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(64, 64)
            self.b = torch.nn.Linear(64, 8)

        def forward(self, x):
            return self.b(torch.cumsum(torch.relu(self.a(x)), dim=-1))

    torch.manual_seed(0)
    example = (torch.randn(4, 64),)
    folder = tmp_path_factory.mktemp("partly")
    export_with_etrecord(torch.export.export(Net().eval(), example), folder / "net.pte", folder / "net.etrecord")
    return folder / "net.pte", folder / "net.etrecord"


@pytest.mark.slow
def test_mobilenet_v2_int8_names_the_xnnpack_blocks(runner, mobilenet_int8, tmp_path):
    pte, etrecord = mobilenet_int8
    df = op_table(profile(runner, pte, tmp_path / "mv2.etdump"), etrecord)
    assert tuple(df.columns) == COLUMNS
    assert df.attrs["runs"] == 3  # first inference + 2 measured
    delegated = df[df["kind"] == "delegate"]
    assert set(delegated["delegate"]) == {"XnnpackBackend"}
    names = set(delegated["name"])
    # XNNPACK's own operator names, instance suffix " #n" folded away.
    assert any(n.startswith("Convolution (NHWC, QC8)") for n in names), names
    assert any(n.startswith("Fully Connected") for n in names), names
    assert not any("#" in n for n in names)
    # mobilenet_v2 has 52 convolutions: depthwise + pointwise (as GEMMs) + the stem.
    assert df.loc[df["name"].str.contains("DWConv"), "count"].sum() == 17
    assert df["share"].sum() == pytest.approx(1.0)
    assert (df["total_ms"] >= 0).all() and df["total_ms"].iloc[0] > 0.1
    assert list(df["total_ms"]) == sorted(df["total_ms"], reverse=True)


@pytest.mark.slow
def test_op_outside_the_delegate_is_an_operator_row(runner, partly_delegated, tmp_path):
    pte, etrecord = partly_delegated
    etdump = profile(runner, pte, tmp_path / "net.etdump", runs=3)
    df = op_table(etdump, etrecord)
    by_name = df.set_index("name")
    assert by_name.loc["cumsum.out", "kind"] == "operator"
    assert by_name.loc["cumsum.out", "delegate"] is None
    assert by_name.loc["cumsum.out", "count"] == 1
    assert by_name.loc["cumsum.out", "total_ms"] > 0
    fc = by_name.loc["Fully Connected (NC, F32) GEMM"]
    assert (fc["kind"], fc["delegate"], fc["count"]) == ("delegate", "XnnpackBackend", 2)  # one per delegate call
    assert df.attrs["runs"] == 4
    assert df["share"].sum() == pytest.approx(1.0)

    # Without the ETRecord the same rows come back; only the backend's name is unknown.
    bare = op_table(etdump)
    assert set(bare["name"]) == set(df["name"])
    assert bare.loc[bare["kind"] == "delegate", "delegate"].isna().all()
    np.testing.assert_allclose(bare.set_index("name").loc[df["name"], "total_ms"], df["total_ms"])


def test_missing_etdump_is_a_clear_error(tmp_path):
    with pytest.raises(QbenchError, match="no ETDump at"):
        op_table(tmp_path / "nothing.etdump")


def test_corrupt_etdump_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.etdump"
    bad.write_bytes(np.random.default_rng(3).bytes(2048))
    with pytest.raises(QbenchError, match="cannot read ETDump"):
        op_table(bad)
