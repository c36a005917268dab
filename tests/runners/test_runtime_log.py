"""ExecuTorch's own log lines stay out of the terminal and reach the `qbench.runtime` logger."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading

from qbench.runtime_log import runtime_log_captured

SCRIPT = textwrap.dedent("""
    import logging, sys
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger("qbench.runtime").addHandler(handler)
    logging.getLogger("qbench.runtime").setLevel(logging.DEBUG)
    logging.getLogger("qbench.runtime").propagate = False  # an imported library may configure the root logger

    from qbench.pipeline.prepare import _load_method
    from qbench.runtime_log import runtime_log_captured

    import torch

    with runtime_log_captured():  # what prepare does around numerics and accuracy
        method = _load_method(sys.argv[1], [])
        method.execute([torch.randn(1, 3, 16, 16)])
    print("done", flush=True)
""")


def test_the_runtime_log_goes_to_the_logger_not_the_terminal(models):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(models["fp32"])], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the first runtime call of a process reads the CPU description and logs it (ET_LOG, Info)
    assert "qbench.runtime DEBUG [cpuinfo_utils.cpp:" in proc.stdout, proc.stdout
    assert "cpuinfo_utils" not in proc.stderr


def test_other_threads_keep_writing_to_the_terminal(capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="qbench.runtime")
    with runtime_log_captured():
        sys.stderr.write("[runtime.cpp:1] from the calling thread\n")
        with runtime_log_captured():  # nested: one capture
            sys.stderr.write("[runtime.cpp:2] nested\n")
        bar = threading.Thread(target=lambda: sys.stderr.write("progress bar\n"))
        bar.start()
        bar.join()
    assert capsys.readouterr().err == "progress bar\n"
    assert [r.message for r in caplog.records if r.name == "qbench.runtime"] == [
        "[runtime.cpp:1] from the calling thread", "[runtime.cpp:2] nested"]
    assert not type(sys.stderr).__name__.startswith("_PerThread")
