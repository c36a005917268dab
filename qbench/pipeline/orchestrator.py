"""A run: every cell of the suite down the pipe, results stored as they are measured.

- prepare each (model, recipe) once (cached), then measure its cells on every device;
- trials interleaved across cells per device; devices in parallel, one worker each;
- a failing cell is recorded (stage + cause) and the run goes on;
- every trial is committed when it ends, so Ctrl-C or a crash keeps all finished work and
  `--resume RUN_ID` measures only what is missing.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from dataclasses import dataclass
from datetime import datetime, timezone

from qbench.errors import CellError, DeviceError, QbenchError, UsageError
from qbench.export.cache import Artifact, ArtifactCache
from qbench.pipeline import grid
from qbench.pipeline.measure import run_trial
from qbench.pipeline.prepare import quality_fields
from qbench.results.store import ResultsStore
from qbench.runners.base import TrialSettings
from qbench.pipeline.check import CheckedSuite

log = logging.getLogger(__name__)


class Progress:
    """What the orchestrator tells the outside world; the CLI draws it, tests ignore it."""

    def start(self, total: int) -> None: ...
    def stage(self, text: str) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def log(self, text: str) -> None: ...


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class RunOutcome:
    run_id: str
    ok: int = 0
    failed: int = 0
    interrupted: bool = False


def begin_run(checked: CheckedSuite, store: ResultsStore, resume: str | None = None) -> str:
    from qbench.env import git_sha, host_summary, versions

    yaml_text = checked.loaded.path.read_text()
    if resume:
        row = store.run(resume)
        if row is None:
            raise UsageError(f"no run {resume!r} in {store.path}; `qbench results --runs` lists them")
        if row["suite_yaml"] != yaml_text:
            raise UsageError(f"{checked.loaded.path} changed since run {resume} started; start a new run instead of resuming")
        store.reopen_run(resume)
        return resume
    run_id = new_run_id()
    store.create_run(
        run_id=run_id, suite=checked.suite.name, suite_path=str(checked.loaded.path), suite_yaml=yaml_text,
        status="running", started_at=now(), git_sha=git_sha(checked.loaded.base_dir), host=host_summary(),
        settings=checked.suite.benchmark.model_dump(), devices=checked.device_names, **versions(),
    )
    return run_id


def execute(checked: CheckedSuite, store: ResultsStore, run_id: str, cache: ArtifactCache,
            progress: Progress | None = None, engine=None) -> RunOutcome:
    """`engine` prepares variants and measures devices (pipeline/engine.py): this process by default,
    a Dask cluster for `--cluster`/`--jobs` (qbench/farm/). Either way this process is the only writer."""
    from qbench.pipeline.engine import LocalEngine

    progress = progress or Progress()
    engine = engine or LocalEngine()
    bench = checked.suite.benchmark
    outcome = RunOutcome(run_id)
    ids = {c: store.ensure_cell(run_id, c.variant.model.name, c.variant.recipe.name, c.variant.recipe.kind, c.device)
           for c in grid.cells(checked)}
    pending = [c for c, cid in ids.items() if store.cell(cid)["status"] == "pending"]
    pending_variants = list(dict.fromkeys(c.variant for c in pending))
    todo_trials = sum(bench.trials - len(store.done_trials(ids[c])) for c in pending)
    progress.start(len(pending_variants) + todo_trials)
    interrupted = False
    try:
        artifacts = _prepare_all(checked, pending_variants, pending, ids, store, cache, progress, engine)
        by_device: dict[str, list[grid.Cell]] = {}
        for c in pending:
            if c.variant in artifacts:
                by_device.setdefault(c.device, []).append(c)
        engine.measure(checked, list(by_device.items()), ids, artifacts, store, progress, _measure_device)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        status = "interrupted" if interrupted else "complete"
        store.finish_run(run_id, status, now())
        for cid in ids.values():
            s = store.cell(cid)["status"]
            outcome.ok += s == "ok"
            outcome.failed += s == "failed"
        outcome.interrupted = interrupted
    return outcome


def _fail(store: ResultsStore, cell_id: int, exc: Exception) -> None:
    stage = exc.stage if isinstance(exc, CellError) else "internal"
    message = str(exc).split(": ", 1)[1] if isinstance(exc, CellError) and ": " in str(exc) else str(exc)
    store.update_cell(cell_id, status="failed", stage=stage, error=message or type(exc).__name__)


def _prepare_all(checked, variants, pending, ids, store, cache, progress, engine) -> dict[grid.Variant, Artifact]:
    suite = checked.suite
    artifacts: dict[grid.Variant, Artifact] = {}
    for v, art in engine.prepare(checked, variants, cache, progress):  # in order, as each is ready
        cells = [c for c in pending if c.variant == v]
        if isinstance(art, CellError):
            for c in cells:
                _fail(store, ids[c], art)
            progress.log(f"[failed] {v.label}: {art}")
            progress.advance(1 + suite.benchmark.trials * len(cells))
            continue
        artifacts[v] = art
        num = art.numerics or {}
        for c in cells:
            store.update_cell(
                ids[c], artifact_key=art.key, cached=int(art.cached), pte_bytes=art.program_bytes,
                arena_bytes=art.arena_bytes, delegated_ops=art.delegation.get("delegated_ops"),
                total_ops=art.delegation.get("total_ops"), delegation=art.delegation or None,
                sqnr_db=_finite(num.get("sqnr_db")), max_abs_error=num.get("max_abs_error"),
                cosine_similarity=num.get("cosine_similarity"), top1_agreement=num.get("top1_agreement"),
                quantize_s=art.timings.get("quantize_s"), export_s=art.timings.get("export_s"),
                **quality_fields(art),  # accuracy columns + extra (dataset splits, QAT record)
            )
        progress.advance()
    return artifacts


def _finite(x):
    """SQLite has no infinity: an exact match (noise 0) is stored as 999 dB, documented in the schema."""
    import math

    if x is None:
        return None
    return 999.0 if math.isinf(x) and x > 0 else x


def _measure_device(checked, device_name, cells, ids, artifacts, store, progress, stop) -> None:
    from qbench.devices.profiles import load_profile
    from qbench.pipeline.device_session import DeviceSession

    bench = checked.suite.benchmark
    try:
        profile = load_profile(device_name, checked.loaded.base_dir)
        session = DeviceSession(profile, checked.loaded.base_dir, bench.runner)
        session.open()
    except Exception as exc:  # this device's cells fail with the cause; other devices go on
        if isinstance(exc, CellError):
            err = exc
        elif isinstance(exc, (QbenchError, OSError)):
            err = CellError("device", f"{device_name}: {exc}")
        else:
            err = CellError("device", f"{device_name}: {_internal(exc)}")
        for c in cells:
            _fail(store, ids[c], err)
        progress.log(f"[failed] device {device_name}: {err}")
        progress.advance(sum(bench.trials - len(store.done_trials(ids[c])) for c in cells))
        return
    settings = TrialSettings(
        warmup=bench.warmup, warmup_seconds=bench.warmup_seconds, iterations=bench.iterations,
        min_seconds=bench.min_seconds, max_iterations=bench.max_iterations,
        threads=profile.threads or bench.threads, affinity=profile.affinity or bench.affinity,
        timeout=bench.timeout_seconds,
    )
    cooldown = profile.cooldown or bench.cooldown
    failed: set[grid.Cell] = set()
    from qbench.pipeline.power import PowerMeter

    power = PowerMeter(session, profile.power, log=progress.log)
    try:
        power.probe()
        for trial, cell in grid.interleaved(cells, bench.trials):
            if stop.is_set():
                return
            cid = ids[cell]
            if cell in failed or trial in store.done_trials(cid):
                continue
            art = artifacts[cell.variant]
            progress.stage(f"trial {trial + 1}/{bench.trials} {cell.label}")
            try:
                out, runner = _trial_with_retries(session, art, settings, cooldown, profile, progress, cell)
            except Exception as exc:  # the cell fails with the cause; the device's other cells go on
                err = exc if isinstance(exc, CellError) else CellError("run", _internal(exc))
                failed.add(cell)
                _fail(store, cid, err)
                progress.log(f"[failed] {cell.label}: {err}")
                progress.advance(bench.trials - trial)
                continue
            rep = out.report
            store.add_trial(
                cid, trial, rep["samples_ns"], runner=rep.get("runner"), threads=rep.get("threads"),
                affinity=rep.get("affinity"), load_ms=rep.get("load_ms"), method_init_ms=rep.get("method_init_ms"),
                first_inference_ms=rep.get("first_inference_ms"), peak_rss_bytes=rep.get("peak_rss_bytes"),
                warmup_iterations=rep.get("warmup_iterations"), iterations=len(rep["samples_ns"]),
                wall_s=out.wall_s, thermal_before=out.thermal_before, thermal_after=out.thermal_after,
                cooldown_wait_s=out.cooldown_wait_s, finished_at=now(),
            )
            progress.advance()
            if len(store.done_trials(cid)) >= bench.trials:
                note = session.runner_reason if runner is session.runner else "eager (PyTorch reference)"
                finalize_cell(store, cid, session.info, runner_note=note)
                if bench.profile_ops and art.kind == "pte":
                    _profile_ops(session, art, settings, store, cid, cell, progress)
                if power.enabled and art.kind == "pte":
                    _measure_power(power, session, art, settings, store, cid, cell, progress)
    finally:
        session.close()


def _trial_with_retries(session, art, settings, cooldown, profile, progress, cell):
    """One trial; on a lost device: reconnect and retry (bounded), else the cell fails with the cause.

    Once reconnecting has failed, the device counts as gone: its remaining cells fail at once with
    the same cause instead of each waiting through its own retries.
    """
    if session.lost is not None:
        raise session.lost
    attempt = 0
    while True:
        try:
            runner = session.runner_for(art)
            program, inputs = session.push(art)
            return run_trial(session.device, runner, program, settings, cooldown, profile.thermal_zones,
                             inputs=inputs if art.kind == "pte" else None), runner
        except DeviceError as exc:
            cause = _device_cause(exc)
            if attempt >= profile.connect_retries:
                raise DeviceError(session.name, f"{cause} (gave up after {attempt} reconnect(s))") from exc
            attempt += 1
            progress.log(f"[retry {attempt}/{profile.connect_retries}] {cell.label}: {cause}; reconnecting")
            try:
                session.reconnect(attempt)
            except (QbenchError, OSError) as again:
                session.lost = DeviceError(session.name, f"{cause}; reconnecting failed: {_device_cause(again)}")
                raise session.lost from again


def _internal(exc: Exception) -> str:
    """An unexpected exception is a qbench bug: say so, and put its traceback in the log (stderr)."""
    log.error("internal error", exc_info=exc)
    return f"internal error: {type(exc).__name__}: {exc} (a qbench bug: the traceback is on stderr)"


def _device_cause(exc: Exception) -> str:
    """The message without the 'device: NAME: ' prefixes that nested DeviceErrors accumulate."""
    text = str(exc)
    while text.startswith("device: "):
        text = text.split(": ", 2)[-1]
    return text


def _measure_power(power, session, art, settings, store, cell_id, cell, progress) -> None:
    """A separate trial with the power source sampling; its failure costs the energy figure only."""
    from qbench.pipeline.power import store_power

    progress.stage(f"power {cell.label}")
    try:
        program, inputs = session.push(art)
        result = power.measure(session.runner_for(art), program, inputs, settings)
    except Exception as exc:
        result = {"source": power.choice.kind, "measured": False, "reason": f"power trial failed: {exc}"}
        progress.log(f"[power] {cell.label}: {exc}")
    store_power(store, cell_id, result)


def _profile_ops(session, art, settings, store, cell_id, cell, progress) -> None:
    """A separate, short pass with ETDump on (never mixed into the latency trials)."""
    import tempfile

    from qbench.collectors.op_profile import op_table
    from dataclasses import replace

    progress.stage(f"profile ops {cell.label}")
    quick = replace(settings, warmup=1, warmup_seconds=0.0, iterations=10, min_seconds=0.0, max_iterations=10)
    try:
        program, inputs = session.push(art)
        remote = f"{session.device.workdir.rstrip('/')}/{art.key}.etdump"
        runner = session.runner_for(art)
        result = session.device.run(runner.argv(program, quick, inputs=inputs, etdump=remote), timeout=settings.timeout)
        runner.parse(result, quick)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "run.etdump"
            session.device.pull(remote, local)
            table = op_table(local, art.etrecord_path)
        store.replace_ops(cell_id, table.to_dict("records"))
    except Exception as exc:  # the latency result stands; say why the profile is missing
        store.merge_extra(cell_id, profile_error=str(exc).splitlines()[0][:300])
        progress.log(f"[profile] {cell.label}: {exc}")


def finalize_cell(store: ResultsStore, cell_id: int, device_info: dict, runner_note: str) -> None:
    """Summary figures from the raw samples of every trial; per-trial fixed costs as medians."""
    import statistics

    from qbench.collectors.latency import latency_stats_ms

    by_trial = store.samples(cell_id)
    pooled = [ns for t in sorted(by_trial) for ns in by_trial[t]]
    stats = latency_stats_ms(pooled)
    trials = store.trials(cell_id)

    def med(col):
        vals = [r[col] for r in trials if r[col] is not None]
        return statistics.median(vals) if vals else None

    store.update_cell(
        cell_id, status="ok", stage=None, error=None, runner=trials[0]["runner"], threads=trials[0]["threads"],
        latency_min_ms=stats["min"], latency_median_ms=stats["median"], latency_mean_ms=stats["mean"],
        latency_std_ms=stats["std"], latency_p90_ms=stats["p90"], latency_p99_ms=stats["p99"],
        latency_cv=stats["cv"], samples_count=stats["count"], trials=len(trials),
        load_ms=med("load_ms"), method_init_ms=med("method_init_ms"), first_inference_ms=med("first_inference_ms"),
        peak_rss_bytes=max((r["peak_rss_bytes"] or 0) for r in trials) or None,
        device_info={**device_info, "runner_choice": runner_note},
    )
