"""Which runner measures a device, and the clear error when none fits its ABI."""

from __future__ import annotations

import pytest

from qbench.devices.host import HostDevice
from qbench.devices.profiles import DeviceProfile
from qbench.errors import CellError
from qbench.runners.choice import select_runner


class FakeArmBoard(HostDevice):
    """Only its ABI differs: enough to ask for a runner that does not exist here."""

    transport = "ssh"

    def info(self):
        info = super().info()
        info.abi = "aarch64"
        return info


def test_missing_native_runner_for_the_device_abi_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("QBENCH_CACHE", str(tmp_path))
    board = FakeArmBoard("pi", tmp_path)
    with pytest.raises(CellError, match=r"native runner unavailable for pi: no native runner for linux-aarch64: "
                                        r"build one with `qbench runner build --target linux-aarch64`"):
        select_runner(board, DeviceProfile(name="pi", transport="ssh", runner={"kind": "native"}))


def test_auto_falls_back_to_python_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("QBENCH_CACHE", str(tmp_path))
    board = FakeArmBoard("pi", tmp_path)
    runner, why = select_runner(board, DeviceProfile(name="pi", transport="ssh"))
    assert runner.name == "python" and why.startswith("python (no native runner for linux-aarch64")


def test_prebuilt_binary_that_does_not_exist(tmp_path):
    with pytest.raises(CellError, match="runner.binary /nope/qbench_runner does not exist"):
        select_runner(HostDevice("h", tmp_path), DeviceProfile(name="h", runner={"kind": "native", "binary": "/nope/qbench_runner"}))
