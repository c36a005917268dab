"""`threads` above a device's cores: a warning at check time (host), and at session open for any
device (here a real OpenSSH server on loopback), recorded on the device's cells."""

from __future__ import annotations

import json
import textwrap

from qbench.cli import main
from qbench.devices.profiles import load_profile
from qbench.pipeline.device_session import DeviceSession
from qbench.pipeline.thread_count import host_cores, warn_at_session_open
from qbench.results.store import ResultsStore
from qbench.runners.base import TrialSettings
from tests.helpers import write_suite


def _settings(threads: int) -> TrialSettings:
    return TrialSettings(warmup=0, warmup_seconds=0.0, iterations=1, min_seconds=0.0, max_iterations=1,
                         threads=threads, affinity=None, timeout=30.0)


def test_check_warns_when_the_host_has_fewer_cores(suite_dir, capsys):
    too_many = host_cores() + 1
    path = write_suite(suite_dir, f"""
        name: s
        models:
          - name: m
            source: python:models/tiny.py:tiny_mlp
            inputs: [{{shape: [1, 64]}}]
        recipes: [{{name: fp32, kind: fp32}}]
        benchmark: {{threads: {too_many}}}
        """)
    code = main(["run", str(path), "--check"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (f"warning: threads: {too_many} on host is more than its {host_cores()} core(s): the extra threads "
            f"time-share cores, so latency measures contention rather than the model; use threads <= {host_cores()}") in err
    path.write_text(path.read_text().replace(f"threads: {too_many}", f"threads: {host_cores()}"))
    assert main(["run", str(path), "--check"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_session_open_records_the_warning_for_a_remote_device(tmp_path):
    from qbench.testing.sshd import SshServer

    with SshServer(tmp_path / "sshd", alias="qbench-test-board") as sshd:
        profiles = tmp_path / "device_profiles"
        profiles.mkdir()
        (profiles / "board.yaml").write_text(textwrap.dedent(f"""
            transport: ssh
            address: {sshd.alias}
            ssh_config: {sshd.ssh_config_path}
            workdir: {tmp_path / 'board-work'}
            """))
        session = DeviceSession(load_profile("board", tmp_path), tmp_path, "python")
        session.open()
        try:
            cores = session.info["cores"]
            store = ResultsStore(tmp_path / "r.sqlite")
            store.create_run(run_id="r1", suite="s", status="running", started_at="2026-01-01T00:00:00")
            cells = [store.ensure_cell("r1", "m", "fp32", "fp32", "board")]
            printed: list[str] = []
            warn_at_session_open(session, _settings(cores * 4), cells, store, printed.append)
            warn_at_session_open(session, _settings(cores), cells[:0], store, printed.append)
        finally:
            session.close()
    expected = (f"threads: {cores * 4} on board is more than its {cores} core(s): the extra threads time-share "
                f"cores, so latency measures contention rather than the model; use threads <= {cores}")
    assert printed == [f"warning: {expected}"]
    assert json.loads(store.cell(cells[0])["extra"])["warnings"] == [expected]
