"""The device-numerics pass, after a cell's trials: its runner re-runs the held-out inputs (and eval
split) on the device, the outputs come back, and the cell gets `device_numerics` (the figures
themselves: collectors/device_numerics.py).

One extra runner process per cell (no timing: warm-up 0, one iteration); a failure costs only these
figures, and the cell says why in `device_numerics.reason`.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path


def record(session, art, settings, store, cell_id: int, label: str, log) -> dict | None:
    """Measure, store in the cell's `extra`, and log a disagreement. Never raises."""
    from qbench.collectors import device_numerics as dn
    from qbench.results.columns import device_numerics_extra, runner_flavour_extra

    runner = session.runner if art.kind == "pte" else None
    flavour = getattr(runner, "flavour", None) or getattr(runner, "name", None) or "eager"
    store.merge_extra(cell_id, **runner_flavour_extra(flavour))
    if art.kind != "pte" or not (art.dir / dn.HELDOUT).is_file():
        return None  # the eager reference, or an artifact cached before device numerics existed
    try:
        result = measure(session, art, settings)
    except Exception as exc:  # the latency result stands; say why these figures are missing
        result = {**{k: None for k in dn.KEYS}, "reason": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}
        log(f"[device numerics] {label}: {result['reason']}")
    else:
        num = art.numerics or {}
        host_acc = (num.get("accuracy") or {}).get("top1")
        dn.judge(result, num, host_acc)
        if result["agrees_with_host"] is False:  # None: not compared (NaN/inf on both sides; `reason`)
            log(f"[device numerics] {label}: DISAGREES with the host: {result['disagreement']}")
    store.merge_extra(cell_id, **device_numerics_extra(result))
    return result


def measure(session, art, settings) -> dict:
    import numpy as np

    from qbench.collectors import device_numerics as dn
    reference = np.load(art.dir / dn.REFERENCE)
    device_out = _run_sets(session, art, settings, art.dir / dn.HELDOUT, len(reference), "heldout")
    classifier = (art.numerics or {}).get("top1_agreement") is not None  # as the host judged it
    eval_out = labels = valid = None
    if (art.dir / dn.EVAL).is_file():
        valid = np.load(art.dir / dn.VALID)
        labels = np.load(art.dir / dn.LABELS)
        eval_out = _run_sets(session, art, settings, art.dir / dn.EVAL, len(valid), "eval")
    return dn.compare(reference, device_out, classifier, eval_out, labels, valid)


def _run_sets(session, art, settings, local_inputs: Path, sets: int, what: str):
    from qbench.collectors.device_numerics import first_outputs

    device = session.device
    program, _ = session.push(art)
    remote_in = device.push(local_inputs, f"{art.key}.{what}.bin")
    remote_out = f"{device.workdir.rstrip('/')}/{art.key}.{what}.out"
    once = replace(settings, warmup=0, warmup_seconds=0.0, iterations=1, min_seconds=0.0, max_iterations=1)
    runner = session.runner_for(art)
    argv = runner.argv(program, once, inputs=remote_in, outputs=remote_out) + ["--input-sets", str(sets)]
    report = runner.parse(device.run(argv, timeout=settings.timeout + 60 + sets), once)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "out.bin"
        device.pull(remote_out, local)
        return first_outputs(local.read_bytes(), sets, report["outputs"], _headline_index(art))


def _headline_index(art) -> int:
    """Where the headline leaf sits among the program's flat outputs (structured outputs: the suite's
    `output:`, recorded at prepare time; otherwise the first)."""
    chosen = ((art.numerics or {}).get("extra") or {}).get("output")
    names = [o["name"] for o in (art.outputs or [])]
    return names.index(chosen) if chosen in names else 0
