"""What the ADB and SSH devices share about talking to a remote POSIX shell.

Every remote operation is a *constant* sh script; paths, arguments and env values travel as
positional parameters, each `shlex.quote`d once: `exec sh -c '<script>' qbench 'arg1' 'arg 2'`.
Nothing variable is ever pasted into a script, so a model named `x; rm -rf ~` stays a name.
The run wrappers themselves differ per transport (how exit codes and stderr survive the channel),
so they live in adb.py and ssh.py.
"""

from __future__ import annotations

import re
import shlex

from qbench.errors import DeviceError

# A shell function `h FILE` printing the file's sha256 (or "none"): toybox (Android 8+) and coreutils
# have sha256sum, macOS-like boards shasum. Hashing stdin sidesteps sha256sum's escaping of odd names.
HASH_FN = r"""
h() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum < "$1"
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 < "$1"
  else echo none; fi
}
"""

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def remote_command(script: str, *args: str) -> str:
    """The command line the remote shell parses: a constant script plus quoted positional args."""
    return " ".join(["exec", "sh", "-c", shlex.quote(script), "qbench", *map(shlex.quote, args)])


def env_args(env: dict[str, str] | None) -> list[str]:
    """KEY=VALUE words for the wrappers' `export "$1"` loop; names are checked, values are data."""
    env = env or {}
    for key in env:
        if not _ENV_KEY.fullmatch(key):
            raise ValueError(f"invalid environment variable name {key!r}")
    return [f"{k}={v}" for k, v in env.items()]


def last_line(data: bytes | str) -> str:
    """The last non-blank line: where a remote tool puts the error worth showing."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def relative_name(name: str) -> str:
    """A pushed file's name must stay inside the workdir: relative, no '..', no empty parts."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
        raise ValueError(f"remote file name must be a relative path inside the workdir, got {name!r}")
    return name


def check_landed(device: str, dest: str, landed: str, expected: str) -> None:
    """A pushed file's sha256 as the device computed it must be the local one ("none": the device
    has no hashing tool, and the transport's own checks are all there is)."""
    if landed not in ("none", expected):
        raise DeviceError(device, f"{dest} arrived corrupted (sha256 {landed[:12]}, expected {expected[:12]})")
