"""One trial: a fresh runner process on the device, with thermal state before and after.

If the device is hotter than the profile's threshold, wait (bounded) for it to cool first, and
record how long we waited and whether it actually cooled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from qbench.devices.base import Device
from qbench.runners.base import Runner, TrialSettings
from qbench.suite.schema import CooldownSpec


@dataclass
class TrialOutcome:
    report: dict
    thermal_before: dict[str, float] = field(default_factory=dict)
    thermal_after: dict[str, float] = field(default_factory=dict)
    cooldown_wait_s: float = 0.0
    wall_s: float = 0.0


def hottest(zones: dict[str, float], only: list[str] | None = None) -> float | None:
    values = [v for k, v in zones.items() if only is None or any(z in k for z in only)]
    return max(values) if values else None


def cool_down(device: Device, spec: CooldownSpec, zones: list[str] | None, sleep=time.sleep) -> tuple[dict, float]:
    """Wait until the hottest zone is under the threshold, at most max_wait_s. Returns (thermal, waited)."""
    start = time.monotonic()
    thermal = device.thermal()
    while (temp := hottest(thermal, zones)) is not None and temp > spec.threshold_c:
        if time.monotonic() - start >= spec.max_wait_s:
            break  # bounded: measure anyway, the recorded temperatures tell the reader
        sleep(spec.poll_s)
        thermal = device.thermal()
    return thermal, time.monotonic() - start


def run_trial(device: Device, runner: Runner, program: str, settings: TrialSettings, cooldown: CooldownSpec,
              zones: list[str] | None = None, inputs: str | None = None) -> TrialOutcome:
    before, waited = cool_down(device, cooldown, zones)
    result = device.run(runner.argv(program, settings, inputs=inputs), timeout=settings.timeout)
    report = runner.parse(result, settings)
    return TrialOutcome(report, before, device.thermal(), waited, result.seconds)
