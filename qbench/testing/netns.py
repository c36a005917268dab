"""A network namespace joined to this one by a veth pair, for cutting a farm worker off mid-run.

Root only (`ip netns` + veth). Addresses are private to the pair (10.213.N.1 here, 10.213.N.2 in
the namespace); nothing is routed anywhere else. `cut()` takes the namespace's end down, as a pulled
cable would: the worker keeps running and hears nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess


def available() -> str | None:
    """None when namespaces can be made here, else the reason."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    probe = f"qbprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class NetNamespace:
    def __init__(self):
        tag = secrets.token_hex(3)
        self.name, self.host_if, self.ns_if = f"qbench-{tag}", f"qbh{tag}", f"qbn{tag}"
        subnet = 10 + secrets.randbelow(240)
        self.host_ip, self.ns_ip = f"10.213.{subnet}.1", f"10.213.{subnet}.2"

    def create(self) -> "NetNamespace":
        steps = [
            ["ip", "netns", "add", self.name],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if],
            ["ip", "link", "set", self.ns_if, "netns", self.name],
            ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            *[self.prefix + c for c in (["ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if],
                                        ["ip", "link", "set", self.ns_if, "up"], ["ip", "link", "set", "lo", "up"])],
        ]
        for cmd in steps:
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        return self

    @property
    def prefix(self) -> list[str]:
        """Put before a command to run it inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        subprocess.run(self.prefix + ["ip", "link", "set", self.ns_if, "down"], check=True, timeout=30)

    def reconnect(self) -> None:
        subprocess.run(self.prefix + ["ip", "link", "set", self.ns_if, "up"], check=True, timeout=30)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)
