"""A bug in qbench itself (here: injected into one device's session) fails that device's cells with
"internal error" and its traceback in the log; the other device measures on, and the run exits 1."""

from __future__ import annotations

import json

from qbench.cli import main
from qbench.pipeline.device_session import DeviceSession
from tests.helpers import tiny_suite, write_suite

SUITE = tiny_suite("bug", model="mlp", devices="host, host-b")


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


def test_a_bug_that_stops_the_run_exits_4_not_1(suite_dir, monkeypatch, capsys):
    """A qbench bug outside any one cell (here: while preparing) fails the run with ExitCode.INTERNAL_ERROR,
    so CI tells it from failed cells (1) and from a regression (3)."""
    from qbench.errors import ExitCode
    from qbench.pipeline import orchestrator

    def prepare_with_a_bug(*args, **kwargs):
        raise KeyError("artifacts")

    monkeypatch.setattr(orchestrator, "prepare_all", prepare_with_a_bug)
    monkeypatch.chdir(suite_dir)
    suite = write_suite(suite_dir, SUITE.replace("[host, host-b]", "[host]"))
    code = main(["run", str(suite), "--db", str(suite_dir / "r.db"), "--json"])
    out, err = capsys.readouterr()
    assert code == ExitCode.INTERNAL_ERROR == 4
    assert "internal error: KeyError: 'artifacts' (a qbench bug" in err
    assert json.loads(out)["status"] == "failed"  # stored as failed, never a baseline


def test_a_bug_in_a_command_is_one_line_and_exit_4(tmp_path, monkeypatch, capsys):
    """Outside a run, an unexpected exception is one line (the traceback with -v), exit 4, not Python's 1."""
    import qbench.cli.tools as tools
    from qbench.errors import ExitCode

    def devices_with_a_bug(args):
        raise AttributeError("'NoneType' object has no attribute 'serial'")

    monkeypatch.setitem(tools.COMMANDS, "devices", devices_with_a_bug)
    assert main(["devices"]) == ExitCode.INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err == ("qbench: internal error: AttributeError: 'NoneType' object has no attribute 'serial' "
                   "(a qbench bug; -v shows the traceback)\n")
    assert main(["devices", "-v"]) == ExitCode.INTERNAL_ERROR
    assert "Traceback (most recent call last)" in capsys.readouterr().err
