"""Issue 23 item 6: suite options a hostile user (or a generator gone wrong) writes are bounded and
answered at the check, each naming its limit: sweep lengths, affinity cores, counts."""

from __future__ import annotations

import pytest

from qbench.cli import main
from qbench.pipeline.thread_count import host_cores
from qbench.suite import sweep
from tests.helpers import write_suite

MODEL = """
name: s
models:
  - name: m
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64]}]
recipes: [{name: fp32, kind: fp32}]
"""


def check(capsys, folder, benchmark: str) -> tuple[int, str]:
    path = write_suite(folder, MODEL + f"benchmark: {benchmark}\n")
    code = main(["run", str(path), "--check"])
    return code, capsys.readouterr().err


def numbers(n: int) -> str:
    return "[" + ", ".join(str(i) for i in range(1, n + 1)) + "]"


def test_a_threads_list_longer_than_the_limit_is_refused_naming_it(suite_dir, capsys):
    code, err = check(capsys, suite_dir, f"{{threads: {numbers(50_000)}}}")
    assert code == 2, err
    assert f"benchmark.threads: a sweep lists at most {sweep.MAX_VALUES} values, this one has 50000" in err
    assert len(err.splitlines()) == 2 and "Traceback" not in err


def test_a_long_threads_sweep_gets_one_folded_warning(suite_dir, capsys):
    code, err = check(capsys, suite_dir, f"{{threads: {numbers(sweep.MAX_VALUES)}}}")
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    over = sweep.MAX_VALUES - host_cores()
    first = host_cores() + 1
    assert warnings == [
        f"warning: threads: {first}, {first + 1}, {first + 2}, {first + 3}, {first + 4}, …, {sweep.MAX_VALUES} "
        f"({over} values) on host are more than its {host_cores()} core(s): the extra threads time-share cores, so "
        f"latency measures contention rather than the model; use threads <= {host_cores()}"]


def test_the_sweep_points_together_are_bounded(suite_dir, capsys):
    code, err = check(capsys, suite_dir, f"{{threads: {numbers(100)}, batch: {numbers(100)}}}")
    assert code == 2, err
    assert (f"benchmark: the sweep makes 10000 points (100 threads × 100 batch); at most {sweep.MAX_POINTS}"
            in err)


def test_a_value_listed_twice_is_still_found_in_a_long_list():
    class Info:
        field_name = "affinity"

    with pytest.raises(ValueError, match=r"\[0, 1\] is listed twice"):
        sweep.check_sweep([[0, 1], [2], "big", [0, 1]], Info)


def test_affinity_cores_the_host_lacks_are_refused_at_the_check(suite_dir, capsys):
    from qbench.pipeline.placement import host_available_cores

    have = sorted(host_available_cores())
    span = f"{have[0]}-{have[-1]}"
    code, err = check(capsys, suite_dir, "{affinity: [[0], [99999]]}")
    assert code == 2, err
    assert (f"benchmark.affinity: CPU 99999 is not a core of this host (its cores: {span}): list cores from "
            f"{span}, or a cluster name") in err
    code, err = check(capsys, suite_dir, f"{{affinity: [{have[0]}]}}")
    assert code == 0, err


def test_a_host_profiles_affinity_is_checked_too(suite_dir, capsys):
    profiles = suite_dir / "device_profiles"
    profiles.mkdir()
    (profiles / "pinned.yaml").write_text("transport: host\naffinity: [0, 4096, 4097]\n")
    path = write_suite(suite_dir, MODEL + "devices: [pinned]\n")
    assert main(["run", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert "devices[0]: profile 'pinned': affinity: CPUs 4096, 4097 are not cores of this host" in err


def test_a_remote_devices_affinity_is_checked_against_the_cores_it_reports(tmp_path):
    """At session open (a real OpenSSH server on loopback): the device says how many cores it has."""
    import textwrap

    from qbench.devices.profiles import load_profile
    from qbench.errors import QbenchError
    from qbench.pipeline.device_session import DeviceSession
    from qbench.pipeline.placement import resolve_placement
    from qbench.suite.schema import BenchmarkSpec
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
            bench = BenchmarkSpec(affinity=[0, cores + 10])
            with pytest.raises(QbenchError) as err:
                resolve_placement(session, session.profile, bench)
            assert str(err.value) == (f"affinity: CPU {cores + 10} is not a core of the device (its cores: "
                                      f"0-{cores - 1}): list cores from 0-{cores - 1}, or a cluster name")
            assert resolve_placement(session, session.profile, BenchmarkSpec(affinity=[0])) == (1, [0])
        finally:
            session.close()


def test_counts_and_durations_are_bounded_naming_the_bound(suite_dir, capsys):
    code, err = check(capsys, suite_dir, "{iterations: 1000000000000, max_iterations: 1000000000000, trials: 5000, "
                                         "min_seconds: .inf, warmup_seconds: 1.0e9}")
    assert code == 2, err
    assert ("benchmark.iterations: at most 1000000 (qbench's bound on iterations: every measured sample is kept) "
            "(got 1000000000000)") in err
    assert "benchmark.trials: at most 1000 (qbench's bound on trials per cell) (got 5000)" in err
    assert "benchmark.min_seconds: at most 3600 seconds (qbench's bound on min_seconds) (got inf)" in err
    assert "benchmark.warmup_seconds: at most 3600 seconds" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("model, says", [
    ("nonsense", "--model 'nonsense': name a model as KIND:REF: torchvision:NAME (e.g. torchvision:resnet18)"),
    ("resnet18", "(did you mean torchvision:resnet18?)"),
    ("foo:bar", "--model 'foo:bar': unknown source kind 'foo'; name a model as KIND:REF"),
    ("torchvision:nonsense", "--model 'torchvision:nonsense': torchvision has no model 'nonsense'; it has "),
    ("python:nofile.py:build", "--model 'python:nofile.py:build': nofile.py: no such file"),
])
def test_init_refuses_an_unknown_model_and_writes_nothing(tmp_path, monkeypatch, capsys, model, says):
    monkeypatch.chdir(tmp_path)
    code = main(["init", "--model", model])
    err = capsys.readouterr().err
    assert code == 2 and says in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []  # no suite, no device profile


def test_init_accepts_a_real_factory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text("import torch\n\ndef build():\n    return torch.nn.Linear(4, 2)\n")
    assert main(["init", "--model", "python:net.py:build", "--input-shape", "1,4"]) == 0
    assert (tmp_path / "suite.yaml").is_file()


KW_ONLY = '''
import torch


class KwOnly(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x, *, scale):
        return self.lin(x) * scale


def kw_only():
    return KwOnly()
'''


def test_a_required_keyword_only_argument_says_inputs_are_positional_and_how_to_wrap(tmp_path, capsys):
    (tmp_path / "kw.py").write_text(KW_ONLY)
    path = write_suite(tmp_path, MODEL.replace("models/tiny.py:tiny_mlp", "kw.py:kw_only").replace("[1, 64]", "[1, 8]"))
    assert main(["run", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    [line] = [ln for ln in err.splitlines() if "models[0].inputs" in ln]
    assert ("model 'm': forward() requires keyword-only argument(s) scale, and qbench passes `inputs:` "
            "positionally, in order") in line
    assert "`def forward(self, x0, scale): return self.inner(x0, scale=scale)`" in line
    assert "Traceback" not in err and "TypeError" not in err
