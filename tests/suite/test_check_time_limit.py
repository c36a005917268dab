"""The suite check bounds the user's code (factory import, model build, preflight forward pass) by
benchmark.timeout_seconds and names the model that did not finish."""

from __future__ import annotations

import textwrap

import torch  # noqa: F401  imported before the 0.5 s limits start: a first `import torch` takes longer

from qbench.cli import main
from tests.helpers import qbench, write_suite

HANGING = textwrap.dedent("""
    import time

    import torch


    def sleeps():
        time.sleep(3600)


    def swallows():  # a factory that catches every ordinary exception still stops
        while True:
            try:
                time.sleep(3600)
            except Exception:
                pass


    class Spin(torch.nn.Module):
        def forward(self, x):
            while True:
                pass


    def spins():
        return Spin()


    def imports_slowly():  # a slow import is not the model's fault: its time does not count
        import importlib.util
        import pathlib

        spec = importlib.util.spec_from_file_location("qbench_test_slow", pathlib.Path(__file__).with_name("slow.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.Net()


    def stuck_in_c():  # native code that never returns to Python (a deadlock): only the watchdog ends it
        torch.futures.Future().wait()
""")


SLOW_MODULE = """
import time

import torch

time.sleep(1.5)


class Net(torch.nn.Module):
    def forward(self, x):
        return x + 1
"""


def _suite(folder, *factories: str):
    (folder / "models" / "hanging.py").write_text(HANGING)
    (folder / "models" / "slow.py").write_text(SLOW_MODULE)
    models = "".join(f"""
          - name: {f}
            source: python:models/hanging.py:{f}
            inputs: [{{shape: [1, 64]}}]""" for f in factories)
    return write_suite(folder, f"""
        name: s
        models:{models}
        recipes: [{{name: fp32, kind: fp32}}]
        benchmark: {{timeout_seconds: 0.5}}
        """)


def test_a_factory_or_forward_pass_that_never_returns_is_named(suite_dir, capsys):
    path = _suite(suite_dir, "sleeps", "swallows", "spins", "imports_slowly")
    code = main(["run", str(path), "--check"])
    err = capsys.readouterr().err
    assert code == 2, err
    for line in (
        f"{path}:4: models[0].source: building model 'sleeps' did not finish within 0.5 s "
        "(benchmark.timeout_seconds); does its factory wait for something?",
        f"{path}:7: models[1].source: building model 'swallows' did not finish within 0.5 s",
        f"{path}:11: models[2].inputs: one forward pass of model 'spins' with inputs float32[1, 64] did not "
        "finish within 0.5 s (benchmark.timeout_seconds)",
    ):
        assert line in err, err
    assert "imports_slowly" not in err
    assert "Traceback" not in err


def test_code_stuck_outside_python_ends_with_one_line(suite_dir):
    path = _suite(suite_dir, "stuck_in_c")
    proc = qbench("run", path, "--check", timeout=300, cwd=suite_dir)
    assert proc.returncode == 2, proc.stderr
    assert ("qbench: building model 'stuck_in_c' did not finish within 0.5 s (benchmark.timeout_seconds) "
            "and cannot be interrupted") in proc.stderr
    assert "Traceback" not in proc.stderr
