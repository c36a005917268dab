"""A quiet start: before a device's first trial, look at what else runs there and wait (bounded).

One look = /proc/stat read twice, `window_s` apart, by a shell on the device (host, adb or ssh
alike), plus the hottest thermal zone and the cores' frequencies. While other processes use more
than `threshold` of the cores, look again, for at most `max_wait_s`; then measure anyway. What was
seen lands in every cell's `extra.quiet_start`, so a reader can tell a busy start from a quiet one.
"""

from __future__ import annotations

import time

from qbench.collectors.interference import parse_proc_stat
from qbench.results.columns import quiet_start_extra

_SPLIT = "--qbench-quiet-split--"


def look_script(window_s: float) -> str:
    return (f"cat /proc/stat; echo {_SPLIT}; sleep {window_s:g}; cat /proc/stat; echo {_SPLIT}; "
            "cat /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq 2>/dev/null; true")


def parse_look(text: str, window_s: float, hz: int = 100) -> dict:
    """{busy_share, cpufreq_khz} from one look's output, or {unreadable: why}."""
    parts = text.split(_SPLIT)
    if len(parts) < 3:
        return {"unreadable": "the device shell printed no /proc/stat"}
    try:
        before, after = parse_proc_stat(parts[0]), parse_proc_stat(parts[1])
    except ValueError as exc:
        return {"unreadable": str(exc)}
    cores = sorted(set(before) & set(after))
    if not cores:
        return {"unreadable": "cannot read /proc/stat on the device"}
    busy = sum(after[c].busy - before[c].busy for c in cores) / hz
    freqs = [int(x) for x in parts[2].split() if x.isdigit()]
    return {"busy_share": min(1.0, max(0.0, busy / (window_s * len(cores)))), "cpufreq_khz": freqs or None}


def wait_for_quiet(look, spec, thermal=None, clock=time.monotonic) -> dict:
    """Call `look()` (-> parse_look's dict) until busy_share <= threshold or max_wait_s has passed."""
    start = clock()
    seen = []
    while True:
        result = look()
        if "unreadable" in result:
            return {"quiet": None, "unreadable": result["unreadable"], "waited_s": round(clock() - start, 2)}
        seen.append(round(result["busy_share"], 3))
        if result["busy_share"] <= spec.threshold or clock() - start >= spec.max_wait_s:
            break
    record = {"quiet": seen[-1] <= spec.threshold, "others_share": seen, "threshold": spec.threshold,
              "waited_s": round(clock() - start, 2), "cpufreq_khz": result.get("cpufreq_khz")}
    if thermal is not None:
        record["hottest_c"] = max(thermal.values()) if thermal else None
    return record


def quiet_start(session, spec, cell_ids, store, progress) -> dict:
    device = session.device

    def look():
        try:
            res = device.run(["sh", "-c", look_script(spec.window_s)], timeout=spec.window_s + 30)
        except Exception as exc:  # the check is advisory: say why, never stop the run
            return {"unreadable": f"cannot run the idle check: {exc}"}
        if res.returncode != 0:
            return {"unreadable": f"idle check failed: {res.last_error_line()}"}
        return parse_look(res.stdout, spec.window_s)

    try:
        thermal = device.thermal()
    except Exception:
        thermal = None
    record = wait_for_quiet(look, spec, thermal)
    if record.get("quiet") is False:
        progress.log(f"[quiet start] {session.name}: other processes still use {record['others_share'][-1]:.0%} "
                     f"of the cores after {record['waited_s']:g} s; measuring anyway (trials are judged one by one)")
    for cid in cell_ids:
        store.merge_extra(cid, **quiet_start_extra(record))
    return record
