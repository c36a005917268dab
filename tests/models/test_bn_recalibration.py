"""Batch-norm recalibration of random-weight models (issue 23 item 7): the model runs in eval mode,
only its BN layers learn their statistics, so a model that runs at batch 1 in eval (a detector's 1×1
feature maps) is never refused; where train mode can run, the statistics are the ones it gives."""

from __future__ import annotations

import pytest
import torch

from qbench.inputs import random_inputs
from qbench.models.loading import build_model, recalibrate_batch_norm
from qbench.suite.schema import ModelSpec


def spec(source: str, shape: list[int]) -> ModelSpec:
    return ModelSpec(name="m", source=source, inputs=[{"shape": shape}])


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.BatchNorm1d(4))


def test_statistics_equal_what_train_mode_gives_where_it_can_run():
    s = spec("torchvision:x", [4, 3, 12, 12])
    ours, theirs = small_cnn(), small_cnn()
    recalibrate_batch_norm(ours, s)
    norms = [m for m in theirs.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    theirs.train()
    with torch.no_grad():
        for batch in random_inputs(s.inputs, 8, seed=4321):
            theirs(*batch)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-6), name
    assert not ours.training and all(m.momentum == 0.1 for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d))


def pooled_head() -> torch.nn.Module:
    """A BN on a 1×1 feature map (as a detector's extra blocks have): one value per channel at batch 1."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.BatchNorm2d(4))


def test_one_value_per_channel_at_batch_1_is_pooled_across_passes_not_refused():
    model = pooled_head()
    s = spec("torchvision:x", [1, 3, 12, 12])
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        pooled_head().train()(torch.randn(1, 3, 12, 12))  # what train mode says (and main said)
    recalibrate_batch_norm(model, s)
    norm = model[-1]
    assert int(norm.num_batches_tracked) == 8
    # its input over the 8 passes, one value per channel each: their mean and unbiased variance
    with torch.no_grad():
        seen = torch.cat([model[:-1](*batch).flatten(1) for batch in random_inputs(s.inputs, 8, seed=4321)])
    assert torch.allclose(norm.running_mean, seen.mean(0), atol=1e-6)
    assert torch.allclose(norm.running_var, seen.var(0), rtol=1e-4)


@pytest.mark.slow
def test_ssdlite_at_batch_1_builds_and_passes_the_check(tmp_path, capsys):
    """The real torchvision detector (random weights, no download) as the issue reported it."""
    from qbench.cli import main
    from tests.helpers import write_suite

    model = build_model(spec("torchvision:ssdlite320_mobilenet_v3_large", [1, 3, 320, 320]))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not model.training and all(int(m.num_batches_tracked) == 8 for m in norms)
    assert sum(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in norms) == len(norms)
    path = write_suite(tmp_path, """
        name: ssd
        models:
          - name: ssdlite
            source: torchvision:ssdlite320_mobilenet_v3_large
            inputs: [{shape: [1, 3, 320, 320]}]
        recipes: [{name: fp32, kind: fp32}, {name: int8, kind: ptq}]
        calibration: {kind: random, samples: 2}
        """)
    assert main(["run", str(path), "--check"]) == 0, capsys.readouterr().err
