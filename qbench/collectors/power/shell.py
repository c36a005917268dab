"""The POSIX sh snippets every source builds on: one clock, a background loop, marks, snapshots, stop.

Why these choices (checked in dash, bash, busybox ash and mksh, which is Android's /system/bin/sh):

* Clock. mksh (Android) and bash 5 have `$EPOCHREALTIME` (epoch seconds with microseconds, no fork).
  Otherwise `date +%s.%N`, but only when it really prints digits: busybox `date` prints a literal
  `%N`. Android's toybox `date` supports %N, yet mksh never needs it. Last resort `/proc/uptime`
  (10 ms resolution, seconds since boot). The choice is made once per snippet by the same rules,
  so the sampler, its marks and snapshots share a clock; each line says which clock it used.
* One line per sample, written with a single `echo`, so a line is whole or absent; `read` is a
  builtin, so sampling sysfs costs no fork except `sleep`.
* The loop runs as a fresh shell process (`"$0" -c '<loop>'`, the same shell binary) with every fd
  redirected and SIGHUP ignored, so `adb shell` / ssh return at once and the loop outlives the
  session. A plain `( loop ) > log &` subshell is not enough: mksh keeps a private copy of the
  caller's stderr (fd 251) in subshells, which holds the adb/ssh pipe open and hangs the caller;
  exec drops it (it is close-on-exec). The pid goes to `<log>.pid` for `stop`; a sample cap ends a
  loop nobody stopped. The parent writes the log header first, so marks are never truncated.
"""

from __future__ import annotations

import math
import posixpath
import shlex

from qbench.collectors.power.base import check_label

CLOCK_PRELUDE = (
    "qb_ck=uptime; "
    'if [ -n "${EPOCHREALTIME:-}" ]; then qb_ck=epochrealtime; '
    "else case $(date +%s.%N 2>/dev/null) in *[!0-9.]*|'') ;; *) qb_ck=date ;; esac; fi; "
    "qb_now() { case $qb_ck in epochrealtime) qb_t=$EPOCHREALTIME ;; "
    "date) qb_t=$(date +%s.%N) ;; *) read -r qb_t qb_x < /proc/uptime ;; esac; }"
)

PROBE_PREFIX = "qbench-probe:"

# The shell running this snippet, to start the loop with (`sh -c` gives $0 = sh; a login shell "-sh").
SAME_SHELL = "qb_sh=${0#-}; case $qb_sh in *sh) ;; *) qb_sh=sh ;; esac"


def q(s: str) -> str:
    return shlex.quote(s)


def mkdir_for(log_path: str) -> str:
    return f"mkdir -p {q(posixpath.dirname(log_path) or '.')}"


def header_echo(source: str, extra: str = "") -> str:
    tail = f" {extra}" if extra else ""
    return f'echo "# qbench-power v1 source={source} clock=$qb_ck{tail}"'


def start_counter_log(log_path: str, source: str, extra: str = "") -> str:
    """Counter sources sample nothing in between: the log starts with its header only."""
    return f"{mkdir_for(log_path)}; {CLOCK_PRELUDE}; {header_echo(source, extra)} > {q(log_path)}"


def start_loop(
    log_path: str, source: str, body: str, period_s: float, max_seconds: float, extra: str = ""
) -> str:
    """Run `body` every `period_s` in the background, appending to the log; pid in `<log>.pid`."""
    if not period_s > 0:
        raise ValueError(f"sampling period must be > 0, not {period_s}")
    max_samples = max(2, math.ceil(max_seconds / period_s) + 1)
    log, pid = q(log_path), q(log_path + ".pid")
    loop = (
        f"{CLOCK_PRELUDE}; trap '' HUP; qb_n=0; while [ \"$qb_n\" -lt {max_samples} ]; do {body}; "
        f"qb_n=$((qb_n + 1)); sleep {period_s:g}; done"
    )
    return (
        f"{mkdir_for(log_path)}; {CLOCK_PRELUDE}; "
        f"{header_echo(source, ' '.join(x for x in (f'period={period_s:g}', extra) if x))} > {log}; "
        f'{SAME_SHELL}; "$qb_sh" -c {q(loop)} >> {log} 2>&1 < /dev/null & echo $! > {pid}'
    )


def stop_loop(log_path: str) -> str:
    pid = q(log_path + ".pid")
    return f'if [ -f {pid} ]; then read -r qb_p < {pid}; kill "$qb_p" 2>/dev/null; rm -f {pid}; fi; :'


def mark(log_path: str, label: str) -> str:
    check_label(label)
    return f'{CLOCK_PRELUDE}; qb_now; echo "# mark {label} $qb_t clock=$qb_ck" >> {q(log_path)}'


def snapshot(log_path: str, label: str, body: str) -> str:
    """A counter reading between `# snap` and `# end` lines, both timestamped on the log's clock."""
    check_label(label)
    log = q(log_path)
    return (
        f'{CLOCK_PRELUDE}; qb_now; echo "# snap {label} $qb_t clock=$qb_ck" >> {log}; '
        f'{{ {body}; }} >> {log} 2>&1; qb_now; echo "# end {label} $qb_t" >> {log}'
    )


def probe_readable(paths: list[str]) -> str:
    """`qbench-probe: missing P` / `denied P` per file, then `ok`. Tries a real read: SELinux and
    root-only sysfs (RAPL since Linux 5.10) deny reads that `test -r` can still call allowed."""
    parts = []
    for p in paths:
        qp = q(p)
        parts.append(
            f'if [ ! -e {qp} ]; then echo "{PROBE_PREFIX} missing "{qp}; '
            f'elif ! cat {qp} > /dev/null 2>&1; then echo "{PROBE_PREFIX} denied "{qp}; '
            f'else echo "{PROBE_PREFIX} ok "{qp}; fi'
        )
    return "; ".join(parts)
