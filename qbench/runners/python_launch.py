"""Starting the pushed Python scripts on a device: python_runner.py (executorch.runtime, any device with
Python + the executorch wheel) and eager_runner.py (the PyTorch reference, host only)."""

from __future__ import annotations

import sys
from pathlib import Path

from qbench.devices.base import Device
from qbench.devices.transports import is_local
from qbench.runners.base import Runner, TrialSettings

SCRIPT = Path(__file__).with_name("python_runner.py")


class PythonRunner(Runner):
    name = "python"

    def __init__(self, python: str | None = None):
        self.python = python
        self._script: str | None = None

    def setup(self, device: Device) -> None:
        self._script = device.push(SCRIPT, "qbench_python_runner.py")
        if self.python is None:
            self.python = sys.executable if is_local(device.transport) else "python3"

    def argv(self, program, settings: TrialSettings, inputs=None, outputs=None, etdump=None) -> list[str]:
        argv = [self.python, self._script, "--model", program, *settings.flags()]
        for flag, value in (("--inputs", inputs), ("--outputs", outputs), ("--etdump", etdump)):
            if value:
                argv += [flag, value]
        return argv


class EagerRunner(PythonRunner):
    """The fp32 model run by PyTorch itself from a torch.export .pt2 (host only, a reference point)."""

    name = "eager"

    def setup(self, device: Device) -> None:
        self._script = device.push(Path(__file__).with_name("eager_runner.py"), "qbench_eager_runner.py")
        self.python = self.python or sys.executable
