"""Before a run or a worker waits on a scheduler: is a Dask scheduler answering at that address?

Dask's own connect retries a dead port only until its timeout, but once TCP connects it waits for the
peer's handshake without a bound: pointed at an HTTP server (or any non-Dask service) it hangs for
ever. `probe_scheduler` asks the address for its identity within `seconds`, in one bounded wait, and
says in one line what answered instead: nothing, something that is not Dask, or a Dask worker.
"""

from __future__ import annotations

import asyncio

from qbench.errors import UsageError

SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")


def check_address(flag: str, address: str) -> None:
    """A scheduler address Dask can parse: [scheme://]host:port with a known scheme and a real port."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in SCHEMES:
        raise UsageError(f"{flag} {address}: unknown protocol {scheme}:// (a Dask scheduler listens on "
                         f"{' or '.join(s + '://' for s in SCHEMES[:2])}, e.g. tcp://sched:8786)")
    host, colon, port = rest.rpartition(":")
    if scheme != "inproc" and (not colon or not host or not port.isdigit() or not 0 < int(port) < 65536):
        raise UsageError(f"{flag} {address}: give the scheduler as {scheme}://HOST:PORT (e.g. {scheme}://sched:8786)")


def probe_scheduler(address: str, security, seconds: float, role: str = "client") -> dict:
    """The scheduler's identity, or a UsageError within about `seconds` saying what is there instead."""
    from distributed.security import Security

    args = (security or Security()).get_connection_args(role)
    try:
        identity = asyncio.run(asyncio.wait_for(_identity(address, args, seconds), seconds + 1))
    except (OSError, EOFError) as exc:  # TimeoutError is an OSError too
        raise UsageError(_what_answered(address, seconds, exc)) from None
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind != "Scheduler":
        raise UsageError(f"{address} is a Dask {kind or 'endpoint'}, not the scheduler: give the address "
                         "`dask scheduler` printed (usually port 8786)")
    return identity


async def _identity(address: str, args: dict, seconds: float) -> dict:
    from distributed.comm import connect

    comm = await connect(address, timeout=seconds, **args)  # TCP within `seconds`, then an unbounded handshake
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        await comm.close()


def _what_answered(address: str, seconds: float, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "TLS" in text or "SSL" in text:  # a certificate the scheduler refused, or it does not speak TLS
        return f"cannot reach the scheduler {address}: {text}"
    if type(exc) is OSError or isinstance(exc, ConnectionError):  # Dask's "Timed out trying to connect", refused
        return (f"cannot reach the scheduler {address}: nothing answered within {seconds:g} s "
                f"({text or type(exc).__name__}); start `dask scheduler` there, or check the address and that "
                "this host can reach it")
    # our own bound on the handshake (TimeoutError), or the peer hung up on Dask's first message
    return (f"cannot reach the scheduler {address}: it accepts connections but is not a Dask scheduler (no Dask "
            f"reply within {seconds:g} s): an HTTP server, or the dashboard (8787) instead of the scheduler (8786)?")
