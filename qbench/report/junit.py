"""JUnit XML for CI dashboards: one testcase per cell of a run.

A cell fails its testcase when it failed to run, or when the comparison against a baseline flags
it (slower beyond the threshold, accuracy drop, size/memory growth). A cell that was never
measured (interrupted run) is skipped. Cells of the baseline that the run lacks are not testcases
(the run has no such cell); they are listed in the suite's system-out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from qbench.report import fmt
from qbench.report.data import cell_error, cell_key, check_runs, key_label, open_for_reading
from qbench.report.findings import findings_text
from qbench.report.views import cell_views
from qbench.text import safe

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# characters XML 1.0 cannot carry at all (ElementTree would write them and the file would not parse)
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text) -> str:
    """Compiler and runner output often carries colour codes and stray control bytes."""
    return _NOT_XML.sub("\ufffd", _ANSI.sub("", str(text or "")))


def junit_xml(db_path: str | Path, run_id: str, comparison=None) -> str:
    """The JUnit document (a string) for `run_id`, with regressions from `comparison` if given."""
    store = open_for_reading(db_path)
    try:
        [run_id] = check_runs(store, [run_id])
        run = store.run(run_id)
        rows = store.cells(run_id)
        wall = {r["cell_id"]: sum(t["wall_s"] or 0 for t in store.trials(r["cell_id"])) for r in rows}
        # findings (report/findings.py); cell_views lists the cells in store.cells' order
        found = {r["cell_id"]: findings_text(v) for r, v in zip(rows, cell_views(store, run_id))}
    finally:
        store.close()
    suite_name = f"qbench.{safe(run['suite'])}"
    matched = {c.key: c for c in comparison.cells} if comparison else {}
    cases, failures, skipped = [], 0, 0
    for r in rows:
        key = cell_key(r)
        case = ET.Element("testcase", classname=clean(suite_name), name=clean(key_label(key)),  # the cell's one spelling
                          time=f"{wall[r['cell_id']]:.3f}")
        cmp = matched.get(key)
        out = [f"{key_label(key)}: {r['status']}"]
        if r["latency_median_ms"] is not None:
            out.append(f"median {fmt.ms(r['latency_median_ms'])} ms, p90 {fmt.ms(r['latency_p90_ms'])} ms, "
                       f"CV {fmt.cv(r['latency_cv'])}, {r['samples_count']} samples in {r['trials']} trials")
        if "stability_verdict" in r.keys() and r["stability_verdict"]:
            out.append(_stability_line(r))
        if found.get(r["cell_id"]):
            out.append(f"findings: {found[r['cell_id']]}")
        if cmp is not None and cmp.latency is not None:
            out.append(f"latency vs {comparison.base_run} (new/base, above 1: slower): {cmp.latency.ratio:.3f}× "
                       f"{fmt.ci(cmp.latency.low, cmp.latency.high)} {cmp.latency.verdict}")
        if r["status"] == "failed":
            failures += 1
            error = cell_error(r)
            note = " (was ok in the base run)" if cmp is not None and cmp.newly_failed else ""
            ET.SubElement(case, "failure", type="CellFailed",
                          message=clean(fmt.first_line(error, 300) + note)).text = clean(error)
        elif cmp is not None and cmp.is_regression:
            failures += 1
            reasons = cmp.reasons()
            ET.SubElement(case, "failure", type="Regression",
                          message=clean("; ".join(reasons))).text = clean("\n".join(reasons))
        elif r["status"] == "pending":
            skipped += 1
            ET.SubElement(case, "skipped", message="not measured (the run stopped before this cell)")
        ET.SubElement(case, "system-out").text = clean("\n".join(out))
        cases.append(case)

    suite = ET.Element("testsuite", name=clean(suite_name), tests=str(len(cases)), failures=str(failures),
                       errors="0", skipped=str(skipped), time=f"{sum(wall.values()):.3f}",
                       timestamp=clean(run["started_at"] or ""))
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", run_id), ("git_sha", run["git_sha"]),
                        ("torch", run["torch_version"]), ("executorch", run["executorch_version"]),
                        ("base_run", comparison.base_run if comparison else None),
                        ("latency_threshold", f"{comparison.thresholds['latency']:.4g}" if comparison else None)):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=clean(value))
    suite.extend(cases)
    if comparison is not None:
        notes = [f"warning: {w}" for w in comparison.warnings]
        notes += [f"only in base {comparison.base_run}: {key_label(k)}" for k in comparison.only_in_base]
        if notes:
            ET.SubElement(suite, "system-out").text = clean("\n".join(notes))
    root = ET.Element("testsuites", name="qbench", tests=str(len(cases)), failures=str(failures), errors="0",
                      skipped=str(skipped))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(db_path: str | Path, run_id: str, out: Path, comparison=None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(junit_xml(db_path, run_id, comparison), encoding="utf-8")
    return out


def _stability_line(r) -> str:
    """'stability: imprecise, 9 trials (9 clean): median CI ±1.3% wider than ±0.2% (…)' (pipeline/adaptive.py)."""
    counts = (fmt.trial_counts(r["trials_measured"], r["trials_clean"], r["trials_replaced"] or 0,
                               r["trials_not_judged"] or 0)
              if "trials_measured" in r.keys() and r["trials_measured"] is not None else None)
    return f"stability: {r['stability_verdict']}" + (f", {counts}" if counts else "") + f": {r['stability_reason']}"
