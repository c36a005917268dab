"""A bug in qbench itself (here: injected into one device's session) fails that device's cells with
"internal error" and its traceback in the log; the other device measures on, and the run exits 1."""

from __future__ import annotations

import json

from qbench.cli import main
from qbench.pipeline.device_session import DeviceSession
from tests.conftest import write_suite

SUITE = """
name: bug
models:
  - name: mlp
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64]}]
recipes:
  - {name: fp32, kind: fp32}
calibration: {kind: random, samples: 2, seed: 0}
devices: [host, host-b]
benchmark: {warmup: 1, warmup_seconds: 0, iterations: 3, min_seconds: 0, trials: 1, threads: 1}
"""


def test_a_bug_while_opening_one_device_fails_only_its_cells(suite_dir, monkeypatch, capsys, caplog):
    (suite_dir / "device_profiles").mkdir()
    (suite_dir / "device_profiles" / "host-b.yaml").write_text("transport: host\n")
    real_open = DeviceSession.open

    def open_with_a_bug(self):
        if self.name == "host-b":
            raise KeyError("runner_settings")  # what a real slip in qbench's own code raises
        return real_open(self)

    monkeypatch.setattr(DeviceSession, "open", open_with_a_bug)
    monkeypatch.chdir(suite_dir)  # the run writes reports/<run>/ here, not into the checkout
    suite = write_suite(suite_dir, SUITE)
    code = main(["run", str(suite), "--db", str(suite_dir / "r.db"), "--json"])
    out, _ = capsys.readouterr()
    assert code == 1
    cells = {c["device"]: c for c in json.loads(out)["cells"]}
    assert cells["host"]["status"] == "ok"
    assert cells["host-b"]["status"] == "failed"
    assert cells["host-b"]["error"].startswith("device: host-b: internal error: KeyError: 'runner_settings'")
    # the traceback goes to the log (stderr for the CLI, which configures no handler)
    bugs = [r for r in caplog.records if r.name == "qbench.pipeline.orchestrator" and r.exc_info]
    assert len(bugs) == 1 and bugs[0].exc_info[0] is KeyError
