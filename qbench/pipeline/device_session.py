"""One device during a run: its connection, its runner, what has been pushed, and recovery.

A device that drops mid-cell is reconnected and the trial retried a bounded number of times
(`connect_retries` in the profile); nothing half-measured is stored in between.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from qbench.devices.base import Device
from qbench.devices.profiles import DeviceProfile, open_device
from qbench.devices.transports import transport_of
from qbench.errors import DeviceError
from qbench.export.cache import Artifact
from qbench.runners.base import Runner

log = logging.getLogger(__name__)


class DeviceSession:
    def __init__(self, profile: DeviceProfile, suite_dir: Path, runner_choice: str):
        self.profile, self.suite_dir, self.runner_choice = profile, suite_dir, runner_choice
        self.device: Device | None = None
        self.runner: Runner | None = None
        self.runner_reason = ""
        self.info: dict = {}
        self._eager: Runner | None = None
        self._pushed: dict[tuple[str, str], str] = {}
        self.lost: DeviceError | None = None  # set when reconnecting failed: the device is gone

    @property
    def name(self) -> str:
        return self.profile.name

    def open(self) -> None:
        from qbench.runners.choice import select_runner

        self.device = open_device(self.profile, self.suite_dir)
        self.info = asdict(self.device.info())
        self.runner, self.runner_reason = select_runner(self.device, self.profile, self.runner_choice)
        log.info("%s: %s runner (%s)", self.name, type(self.runner).__name__, self.runner_reason)
        self.runner.setup(self.device)
        self._eager = None
        self._pushed.clear()

    def reconnect(self, attempt: int) -> None:
        """Back off, re-establish the link, and set the runner up again (files may be gone)."""
        time.sleep(min(2.0 * attempt, 10.0))
        if self.device is not None:
            try:
                if hasattr(self.device, "reconnect"):
                    self.device.reconnect()
                else:
                    self.device.close()
            except Exception:
                pass  # open() below reports what is really wrong
        self.open()

    def runner_for(self, art: Artifact) -> Runner:
        if art.kind != "pt2":
            return self.runner
        if self._eager is None:
            from qbench.runners.python_launch import EagerRunner

            if not transport_of(self.profile).local:
                raise DeviceError(self.name, "the eager reference runs only on the host")
            self._eager = EagerRunner()
            self._eager.setup(self.device)
        return self._eager

    def push(self, art: Artifact) -> tuple[str, str | None]:
        """Program (+ measurement inputs) on the device; the device skips files it already has."""
        key = (art.key, art.kind)
        if key not in self._pushed:
            self._pushed[key] = self.device.push(art.path, f"{art.key}.{art.kind}")
        inputs = art.dir / "inputs.bin"
        remote_inputs = None
        if art.kind == "pte" and inputs.is_file():
            ikey = (art.key, "inputs")
            if ikey not in self._pushed:
                self._pushed[ikey] = self.device.push(inputs, f"{art.key}.inputs.bin")
            remote_inputs = self._pushed[ikey]
        return self._pushed[key], remote_inputs

    def close(self) -> None:
        if self.device is not None:
            try:
                self.device.close()
            except Exception:
                pass
