"""Malformed programs and crashing runners: every failure is one clear line, never a raw exit code.

The fuzz is seeded and bounded (a few dozen byte-mutated copies of the two tiny programs, each run
capped at 1 GiB of address space so a corrupt memory plan fails fast instead of filling RAM).
benchmarks/fuzz_native_runner.py runs the same mutations by the thousand and prints the counts.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from qbench.devices.base import RunResult
from qbench.devices.host import HostDevice
from qbench.errors import CellError
from qbench.runners.base import TrialSettings
from qbench.runners.crash import crash_signal
from qbench.runners.native_build import build_runner, can_build
from qbench.runners.native_runner import NativeRunner
from qbench.runners.python_launch import PythonRunner
from qbench.testing.pte_fuzz import variants
from tests.runners.test_native_runner import shared_cache

pytestmark = pytest.mark.skipif(not can_build()[0] or not shutil.which("prlimit"),
                                reason="needs a native runner build and prlimit (util-linux)")

# Seed 88 includes, with executorch 1.5.1, a variant that still crashes inside ExecuTorch after
# verification (fp32 #0: SIGSEGV while loading the program); the assertions hold for any seed.
SEED = 88
PER_MODEL = 20
ADDRESS_LIMIT = ["prlimit", f"--as={1 << 30}", "--"]
SETTINGS = TrialSettings(warmup=0, warmup_seconds=0.0, iterations=2, min_seconds=0.0, max_iterations=2,
                         threads=1, affinity=None, timeout=60.0)
CRASH_LINE = re.compile(r"run: native runner crashed: SIG[A-Z]+ \([a-z ]+\) while "
                        r"(loading the program|initialising the method|running the method|writing the results)")


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> Path:
    return build_runner("host", cache_dir=shared_cache(tmp_path_factory))


def outcome(runner, device: HostDevice, program: Path, settings: TrialSettings = SETTINGS) -> tuple[str, str]:
    result = device.run(runner.argv(str(program), settings), timeout=settings.timeout)
    try:
        runner.parse(result, settings)
        return "ok", ""
    except CellError as exc:
        kind = "timeout" if result.timed_out else f"signal {crash_signal(result)}" if crash_signal(result) else "error"
        return kind, str(exc)


def test_fuzzed_programs_fail_with_one_clear_line(models, binary, tmp_path):
    device = HostDevice(workdir=tmp_path)
    runner = NativeRunner(binary, launcher=ADDRESS_LIMIT)
    runner.setup(device)
    counts: collections.Counter = collections.Counter()
    for name, pte in models.items():
        for i, data in enumerate(variants(pte.read_bytes(), PER_MODEL, seed=SEED)):
            program = tmp_path / f"{name}-{i}.pte"
            program.write_bytes(data)
            kind, message = outcome(runner, device, program)
            counts[kind] += 1
            if kind == "ok":
                continue
            assert "\n" not in message and message.startswith("run: "), message
            assert "exit code" not in message and "internal error" not in message, (program, message)
            if kind.startswith("signal"):
                assert CRASH_LINE.match(message), message
                assert "the .pte" in message, message
            elif kind == "timeout":
                assert "killed after" in message, message
            else:
                assert message.startswith("run: qbench-runner: "), message
    print(f"fuzz seed {SEED}: {dict(counts)}")
    assert sum(counts.values()) == 2 * PER_MODEL
    assert counts["ok"] < 2 * PER_MODEL  # the mutations do break programs


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks (USER_HZ=100)


def test_crash_names_the_signal_and_the_phase(models, binary):
    """A SIGSEGV delivered while the method runs reaches the runner's handler like a real fault."""
    argv = [str(binary), "--model", str(models["fp32"]), "--warmup", "0", "--iterations", "1",
            "--min-seconds", "120", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # CPU time accrues in the timed loop; loading and init take milliseconds
        while _cpu_seconds(proc.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGSEGV)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    result = RunResult(proc.returncode, out, err, 0.0)
    with pytest.raises(CellError) as info:
        NativeRunner(binary).parse(result, SETTINGS)
    assert str(info.value) == ("run: native runner crashed: SIGSEGV (segmentation fault) while running the "
                               "method — the .pte or its inputs may be malformed")


@pytest.mark.parametrize("script, code", [("kill -SEGV $$", -11), ('sh -c "kill -ABRT \\$\\$"; exit $?', 134)])
def test_signal_without_the_runners_line(tmp_path, script, code):
    """A runner killed before its handler (or the Python runner) still gets a named signal: on the host
    as a negative code, through a device's shell as 128 + N."""
    result = HostDevice(workdir=tmp_path).run(["/bin/sh", "-c", script], timeout=30)
    assert result.returncode == code
    with pytest.raises(CellError) as info:
        PythonRunner().parse(result, SETTINGS)
    name = "SIGSEGV (segmentation fault)" if code == -11 else "SIGABRT (aborted)"
    assert str(info.value).startswith(f"run: python runner crashed: {name}")


def test_runner_line_that_is_not_utf8(tmp_path):
    result = HostDevice(workdir=tmp_path).run(
        ["/bin/sh", "-c", r"printf 'qbench-runner: cannot load \377\376 program\n' >&2; exit 1"], timeout=30)
    with pytest.raises(CellError) as info:
        NativeRunner(Path("qbench_runner")).parse(result, SETTINGS)
    assert str(info.value) == "run: qbench-runner: cannot load \ufffd\ufffd program"


def _tampered(pte: Path, folder: Path, name: str, edit) -> Path:
    """A copy of `pte` with one field of its first execution plan changed, re-serialized whole (so the
    flatbuffer verifier passes and only the runner's own checks stand between the field and a crash)."""
    from executorch.exir._serialize._program import deserialize_pte_binary, serialize_pte_binary

    pte_file = deserialize_pte_binary(pte.read_bytes())
    edit(pte_file.program.execution_plan[0])
    out = folder / f"{name}.pte"
    out.write_bytes(bytes(serialize_pte_binary(pte_file, extract_delegate_segments=True)))
    return out


@pytest.mark.parametrize("name, edit, line", [
    # Method::get_output trusted the index and aborted (SIGABRT while writing the results) after the run
    ("output-index", lambda plan: setattr(plan, "outputs", [len(plan.values) + 7]),
     "output 0 of method 'forward' names no valid value"),
    # the unchecked stride computation wrote past its array on a dim order that is not a permutation
    ("dim-order", lambda plan: setattr(plan.values[plan.inputs[0]].val, "dim_order", [0, 1, 2, 200]),
     "input 0 of method 'forward' has an invalid shape or dim order (shape [1,3,16,16])"),
    # memory_planned_buffer_size(i).get() on an error aborted while loading
    ("negative-plan", lambda plan: setattr(plan, "non_const_buffer_sizes", [0, -5]),
     "memory-planned buffer 0 of method 'forward' has no valid size"),
])
def test_a_program_the_verifier_passes_but_the_runtime_would_abort_on_is_refused(models, binary, tmp_path,
                                                                                 name, edit, line):
    program = _tampered(models["fp32"], tmp_path, name, edit)
    device = HostDevice(workdir=tmp_path)
    runner = NativeRunner(binary, launcher=ADDRESS_LIMIT)
    runner.setup(device)
    kind, message = outcome(runner, device, program)
    assert kind == "error", message
    assert message.startswith(f"run: qbench-runner: {line}") and message.endswith("the .pte may be corrupt"), message
