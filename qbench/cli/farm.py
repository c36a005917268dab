"""`qbench worker` and the farm options of `qbench run` (--cluster, --jobs). Dask is imported only here,
and only when one of them is used."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from qbench.errors import ExitCode, UsageError

WORKER_HELP = """\
Join a farm: a Dask worker whose resources are the devices plugged into this host (each checked
before it is advertised, withdrawn while it does not answer) and N slots for quantize + export.

  dask scheduler --port 8786                                       once, on any host
  qbench worker tcp://sched:8786 --devices pixel8-01,pixel8-02     on each host with phones/boards
  qbench worker tcp://sched:8786 --prepare 2                       a build box: exports only
  qbench run suites/mobile.yaml --cluster tcp://sched:8786 --db postgresql://qbench@db/qbench

Device names are profiles on this host (device_profiles/NAME.yaml, --profiles, $QBENCH_PROFILES).
With --tls-* every connection is mutual TLS with certificates signed by the farm's CA; the scheduler:
  dask scheduler --protocol tls --tls-ca-file ca.pem --tls-cert sched.pem --tls-key sched.key
Anyone who can connect to the scheduler can run code on its workers (Dask runs what it is sent):
use TLS, or keep the farm on a network only its hosts reach.
"""


def add_tls_options(parser) -> None:
    tls = parser.add_argument_group("TLS", "mutual TLS between client, scheduler and workers (Dask security)")
    tls.add_argument("--tls-ca", metavar="FILE", help="CA certificate that signed the farm's certificates")
    tls.add_argument("--tls-cert", metavar="FILE", help="this process's certificate (PEM)")
    tls.add_argument("--tls-key", metavar="FILE", help="its private key (PEM; never logged)")


def add_run_options(run) -> None:
    farm = run.add_argument_group("farm", "run on a Dask cluster of `qbench worker`s (see `qbench worker --help`)")
    farm.add_argument("--cluster", metavar="tcp://HOST:8786", help="the scheduler: prepare on its prepare slots, "
                      "measure each device on the worker that owns it; results are written here")
    farm.add_argument("--jobs", type=int, metavar="N", help="prepare on N local processes (measure here as usual)")
    farm.add_argument("--lost-worker-wait", type=float, default=60.0, metavar="SECONDS",
                      help="how long a device's worker may be unreachable before its remaining cells fail (default 60)")
    farm.add_argument("--db-wait", type=float, default=60.0, metavar="SECONDS",
                      help="how long results are held while the database does not answer before the run stops "
                           "(default 60; local runs too)")
    add_tls_options(run)


def add_parsers(sub) -> None:
    import argparse

    w = sub.add_parser("worker", help="join a device farm: a Dask worker owning this host's devices",
                       description=WORKER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("scheduler", metavar="tcp://HOST:8786", help="the Dask scheduler's address")
    w.add_argument("--devices", default="", metavar="A,B", help="device profiles plugged into this host")
    w.add_argument("--prepare", type=int, default=0, metavar="N", help="slots for quantize + export work (default 0)")
    w.add_argument("--name", help="worker name shown in messages (default: the address)")
    w.add_argument("--host", metavar="ADDRESS", help="the address to listen on that the scheduler and other "
                   "workers can reach (default: chosen by Dask from the route to the scheduler)")
    w.add_argument("--profiles", type=Path, metavar="DIR", help="device profiles folder (added to $QBENCH_PROFILES)")
    w.add_argument("--cache-dir", type=Path, help="artifact cache (default: $QBENCH_CACHE or ~/.cache/qbench)")
    w.add_argument("--check-interval", type=float, default=30.0, metavar="SECONDS",
                   help="re-check idle devices this often; withdraw those that stop answering (default 30)")
    w.add_argument("--join-timeout", type=float, default=JOIN_TIMEOUT_S, metavar="SECONDS",
                   help=f"how long to wait for the scheduler to answer when starting (default {JOIN_TIMEOUT_S:g}; "
                        "a scheduler lost later is waited for until it is back)")
    add_tls_options(w)


JOIN_TIMEOUT_S = 30.0  # qbench worker: the first answer from the scheduler
CONNECT_TIMEOUT_S = 15.0  # qbench run --cluster: the scheduler's answer
INSTALL_FARM = "pip install 'qbench[farm]'"


def jobs_limit() -> int:
    """Local prepare processes (--jobs) or a worker's prepare slots: each holds a model and its quantized
    copy in memory, so more than a few per CPU only swaps."""
    return 4 * (os.cpu_count() or 1)


def require_farm(what: str) -> None:
    """Dask distributed comes with the farm extra; without it, one line naming the install command."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(f"{what} needs Dask distributed, which this install lacks: {INSTALL_FARM}") from None


def check_count(flag: str, value: int, least: int) -> None:
    if value < least:
        raise UsageError(f"{flag} {value}: needs {'a positive number' if least else 'a number >= 0'}")
    if value > jobs_limit():
        raise UsageError(f"{flag} {value}: at most {jobs_limit()} on this host (4 per CPU, {os.cpu_count() or 1} "
                         "CPUs: each prepare process holds a model and its quantized copy in memory)")


def check_seconds(flag: str, value: float, *, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise UsageError(f"{flag} {value:g}: needs a finite number of seconds {'> 0' if positive else '>= 0'}")


def check_tls_files(args) -> None:
    """--tls-*: all three, each a file (checked before anything connects)."""
    given = [f for f in (args.tls_ca, args.tls_cert, args.tls_key) if f]
    if given and len(given) < 3:
        raise UsageError("TLS needs all three: --tls-ca, --tls-cert and --tls-key")
    for f in given:
        if not Path(f).is_file():
            raise UsageError(f"{f}: no such file")


def security(args):
    """Dask Security from --tls-*, else Dask's own config (DASK_DISTRIBUTED__COMM__TLS__...), else none."""
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    check_tls_files(args)
    from distributed.security import Security

    return Security(tls_ca_file=args.tls_ca, tls_client_cert=args.tls_cert, tls_client_key=args.tls_key,
                    tls_worker_cert=args.tls_cert, tls_worker_key=args.tls_key,
                    tls_scheduler_cert=args.tls_cert, tls_scheduler_key=args.tls_key, require_encryption=True)


def farm_security(args, address: str):
    """security(args), after checking that a tls:// scheduler gets certificates (Dask's own message
    for a missing one is a TypeError deep in its connect code)."""
    sec = security(args)
    if sec is None and address.startswith("tls://"):
        import dask

        if not dask.config.get("distributed.comm.tls.ca-file", None):
            raise UsageError(f"the scheduler {address} speaks TLS: give --tls-ca, --tls-cert and --tls-key (the "
                             "farm's CA and this host's certificate and key)")
    return sec


def cmd_worker(args) -> int:
    from qbench.farm.probe import probe_scheduler

    devices = check_worker_options(args)

    def say(text):
        sys.stderr.write(f"qbench worker: {text}\n")
        sys.stderr.flush()

    sec = farm_security(args, args.scheduler)
    say(f"waiting up to {args.join_timeout:g} s for the scheduler {args.scheduler} to answer")
    probe_scheduler(args.scheduler, sec, args.join_timeout, role="worker")
    from qbench.farm.worker import run_worker

    try:
        run_worker(args.scheduler, devices, args.prepare, name=args.name, cache_dir=args.cache_dir,
                   profiles=args.profiles, check_interval=args.check_interval, security=sec,
                   host=args.host, say=say)
    except OSError as exc:
        raise UsageError(f"cannot join the scheduler {args.scheduler}: {exc}") from None
    return ExitCode.OK


def check_worker_options(args) -> list[str]:
    """Every `qbench worker` option, before any device is checked or any connection made; its devices."""
    from qbench.farm.probe import check_address

    check_address("the scheduler", args.scheduler)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    check_count("--prepare", args.prepare, 0)
    if not devices and not args.prepare:
        raise UsageError("a worker needs --devices A,B or --prepare N (or both)")
    check_seconds("--check-interval", args.check_interval, positive=True)
    check_seconds("--join-timeout", args.join_timeout, positive=True)
    check_tls_files(args)
    require_farm("qbench worker")
    return devices


def check_farm_options(args) -> None:
    """--cluster/--jobs/--*-wait/--tls-* make sense together (checked before the slow suite check)."""
    from qbench.farm.probe import check_address

    if args.cluster and args.jobs is not None:
        raise UsageError("--cluster and --jobs exclude each other (a cluster's workers have their own slots)")
    if args.jobs is not None:
        check_count("--jobs", args.jobs, 1)
    if args.cluster:
        check_address("--cluster", args.cluster)
    for flag, value in (("--lost-worker-wait", args.lost_worker_wait), ("--db-wait", args.db_wait)):
        check_seconds(flag, value)
    check_tls_files(args)
    if args.cluster or args.jobs is not None:
        require_farm("--cluster" if args.cluster else "--jobs")


def open_farm(args, console, devices: list[str]):
    """A FarmEngine with a connected Dask client for --cluster/--jobs, or None for a plain local run.
    Raises UsageError when the cluster lacks a device of the suite or prepare slots."""
    if not getattr(args, "cluster", None) and not getattr(args, "jobs", None):
        return None
    check_farm_options(args)
    from qbench.farm.engine import FarmEngine

    client, cluster = _connect(args, console)
    where = args.cluster or f"{args.jobs} local prepare process(es)"
    console.print(f"farm: {where} · {len(client.scheduler_info(n_workers=-1)['workers'])} worker(s)", highlight=False)
    engine = FarmEngine(client, lost_wait=args.lost_worker_wait, local_devices=cluster is not None)
    engine.cluster = cluster
    try:
        engine.check_devices(devices)
    except BaseException:
        close_farm(engine)
        raise
    return engine


def _connect(args, console):
    """(client, local cluster or None); every wait bounded and announced first."""
    from distributed import Client

    if not args.cluster:
        from distributed import LocalCluster

        from qbench.farm import PREPARE

        console.print(f"farm: starting {args.jobs} local prepare process(es)", markup=False, highlight=False)
        cluster = LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True,
                               resources={PREPARE: 1}, dashboard_address=None)
        return Client(cluster), cluster
    from qbench.farm.probe import probe_scheduler

    sec = farm_security(args, args.cluster)
    console.print(f"farm: waiting up to {CONNECT_TIMEOUT_S:g} s for the scheduler {args.cluster} to answer",
                  markup=False, highlight=False)
    probe_scheduler(args.cluster, sec, CONNECT_TIMEOUT_S)  # Dask alone waits for ever on a non-Dask server
    try:
        return Client(args.cluster, security=sec, timeout=f"{CONNECT_TIMEOUT_S:g}s"), None
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the scheduler {args.cluster}: {exc}") from None


def close_farm(engine) -> None:
    if engine is None:
        return
    engine.client.close()
    if engine.cluster is not None:
        engine.cluster.close()


COMMANDS = {"worker": cmd_worker}
