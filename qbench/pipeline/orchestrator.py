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
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timezone

from qbench.errors import CellError, DeviceError, QbenchError, UsageError
from qbench.export.cache import Artifact, ArtifactCache
from qbench.pipeline import grid
from qbench.pipeline.check import CheckedSuite
from qbench.pipeline.context import Progress, Run
from qbench.pipeline.measure import run_trial
from qbench.pipeline.run_status import count_cells, record_run_end
from qbench.results import columns
from qbench.results.store import ResultsStore
from qbench.runners.base import TrialSettings

log = logging.getLogger(__name__)


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


def begin_run(checked: CheckedSuite, store: ResultsStore, resume: str | None = None, run_id: str | None = None) -> str:
    """The run's id: `resume` reopened, or a new run (`run_id`: an id chosen by the caller). This process
    holds the run's lease from here on (results/lease.py), unless the caller took it already: RunHeld
    when another qbench writes that run."""
    from qbench.env import git_sha, host_summary, versions
    from qbench.results.lease import hold, holding

    run_id = resume or run_id or new_run_id()
    if not holding(store.target, run_id):
        hold(store.target, run_id)  # kept until this process ends
    yaml_text = checked.loaded.path.read_text()
    if resume:
        from qbench.results.runref import resolve_run

        resume = resolve_run(store, resume, what="--resume")
        row = store.run(resume)
        if row["suite_yaml"] != yaml_text:
            raise UsageError(f"{checked.loaded.path} changed since run {resume} started; start a new run instead of resuming")
        store.reopen_run(resume)
        return resume
    store.create_run(
        run_id=run_id, suite=checked.suite.name, suite_path=str(checked.loaded.path), suite_yaml=yaml_text,
        status="running", started_at=now(), git_sha=git_sha(checked.loaded.base_dir), host=host_summary(),
        settings=checked.suite.benchmark.model_dump(), devices=checked.device_names, **versions(),
    )
    return run_id


def execute(checked: CheckedSuite, store: ResultsStore, run_id: str, cache: ArtifactCache,
            progress: Progress | None = None, models=None, engine=None, db_wait: float = 60.0) -> RunOutcome:
    """Run every pending cell; `models` is the run's BuiltModels (the suite check may have filled it).
    `engine` prepares variants and measures devices (pipeline/engine.py): this process by default,
    a Dask cluster for `--cluster`/`--jobs` (qbench/farm/). Either way this process is the only writer.
    `db_wait`: how long a database outage is held out before the run stops (results/hold.py)."""
    from qbench.models.loading import BuiltModels
    from qbench.pipeline.engine import LocalEngine
    from qbench.results.hold import HoldingStore

    progress = progress or Progress()
    store = HoldingStore(store, db_wait, progress.log)  # every write of the run, local or farm
    run = Run(checked, store, run_id, cache, models or BuiltModels(), progress)
    engine = engine or LocalEngine()
    outcome = RunOutcome(run_id)
    batch_set = checked.suite.benchmark.batch is not None  # then each cell records the batch it ran
    run.cell_ids = {c: store.ensure_cell(run_id, c.variant.model.name, c.variant.recipe.name, c.variant.recipe.kind,
                                         c.device, sweep=c.sweep,
                                         batch=c.variant.model.inputs[0].shape[0] if batch_set else None)
                    for c in grid.cells(checked)}
    pending = [c for c, cid in run.cell_ids.items() if store.cell(cid)["status"] == "pending"]
    pending_variants = list(dict.fromkeys(c.variant for c in pending))
    run.progress.start(len(pending_variants) + run.trials_left(pending))
    try:
        artifacts = prepare_all(run, pending_variants, pending, engine)
        run.models.clear()  # measuring needs the programs, not the torch modules
        by_device: dict[str, list[grid.Cell]] = {}
        for c in pending:
            if c.variant in artifacts:
                by_device.setdefault(c.device, []).append(c)
        engine.measure(run, list(by_device.items()), artifacts, measure_device)
    except BaseException as exc:  # interrupted (Ctrl-C, SIGTERM) or failed, with the cause stored
        outcome.interrupted = record_run_end(store, run_id, run.cell_ids.values(), exc) == "interrupted"
        raise
    else:
        record_run_end(store, run_id, run.cell_ids.values())  # complete only if every cell ended
    finally:
        outcome.ok, outcome.failed = count_cells(store, run.cell_ids.values())
    return outcome


def prepare_all(run: Run, variants: list[grid.Variant], pending: list[grid.Cell],
                engine=None) -> dict[grid.Variant, Artifact]:
    """Each (model, recipe) once: a cache hit costs nothing; a failure fails that variant's cells only.
    `engine` (pipeline/engine.py) says where: this process by default, or a cluster's prepare slots."""
    from qbench.pipeline.engine import LocalEngine

    suite = run.suite
    artifacts: dict[grid.Variant, Artifact] = {}
    for v, art in (engine or LocalEngine()).prepare(run, variants):  # in order, as each is ready
        cells = [c for c in pending if c.variant == v]
        if isinstance(art, CellError):
            for c in cells:
                run.fail(c, art)
            run.progress.log(f"[failed] {v.label}: {art}")
            run.progress.advance(1 + suite.benchmark.trials * len(cells))
            continue
        artifacts[v] = art
        for c in cells:
            run.store.update_cell(run.cell_ids[c], **columns.artifact_columns(art))
        run.progress.advance()
        run.progress.log(artifact_line(v.label, art))  # a piped log is never silent while preparing
    return artifacts


def artifact_line(label: str, art: Artifact) -> str:
    """`[prepared] m/r: quantized 1.2 s, exported 3.4 s, 12 layer(s) quantized, .pte 1.1 MiB` (or `[cached]`)."""
    from qbench.units import bytes_

    t = art.timings or {}
    layers = ((art.numerics or {}).get("extra") or {}).get("quantized_layers")
    parts = [f"quantized {t.get('quantize_s', 0):.1f} s, exported {t.get('export_s', 0):.1f} s"
             + (" (when built)" if art.cached else "")]
    if layers is not None:
        parts.append(f"{layers} layer(s) quantized")
    parts.append(f"{'.pte' if art.kind == 'pte' else '.pt2'} {bytes_(art.program_bytes)}")
    return f"[{'cached' if art.cached else 'prepared'}] {label}: " + ", ".join(parts)


def measure_device(run: Run, device_name: str, cells: list[grid.Cell], artifacts: dict[grid.Variant, Artifact]) -> None:
    """Every trial of one device's cells, interleaved; then per cell its summary, op profile and energy."""
    from qbench.pipeline.adaptive import Policy, TrialPlan
    from qbench.pipeline.power import PowerMeter
    from qbench.pipeline.quiet import quiet_start

    try:
        profile, session, placements, placed = _open_device(run, device_name, cells)
    except Exception as exc:  # this device's cells fail with the cause; other devices go on
        _fail_device(run, device_name, cells, exc)
        return
    settings_of = _settings_per_point(run, session, cells, placements)
    power = PowerMeter(session, profile.power, log=run.progress.log)
    policy = Policy.from_benchmark(run.bench)
    plan = TrialPlan(cells, run.cell_ids, run.store, policy)  # interleaved rounds; repeats and replaces (adaptive.py)
    work = _DeviceWork(run, profile, session, artifacts, settings_of, placed, policy, power, plan)
    try:
        power.probe()
        quiet_start(session, run.bench.quiet_start, [run.cell_ids[c] for c in cells], run.store, run.progress)
        _finish_resumed_cells(work, cells)
        for trial, cell in plan:
            if run.stop.is_set():
                return
            _one_trial(work, trial, cell)
    finally:
        session.close()


@dataclass
class _DeviceWork:
    """One device's open session and what the trials of its cells share."""
    run: Run
    profile: object  # DeviceProfile
    session: object  # DeviceSession
    artifacts: dict
    settings_of: dict  # sweep point (threads, affinity) -> TrialSettings
    placed: dict  # sweep point -> what it resolved to on the device (device_info.placement)
    policy: object  # adaptive.Policy
    power: object  # PowerMeter
    plan: object  # adaptive.TrialPlan

    @property
    def cooldown(self):
        return self.profile.cooldown or self.run.bench.cooldown


def _open_device(run: Run, device_name: str, cells: list[grid.Cell]):
    """(profile, open session, placements, placed): cluster names -> cores, on the device; one placement
    per sweep point's (threads, affinity), and what each resolved to (device_info.placement) kept for
    that point's cells."""
    from qbench.devices.profiles import load_profile
    from qbench.pipeline.device_session import DeviceSession

    bench = run.bench
    profile = load_profile(device_name, run.checked.loaded.base_dir)
    session = DeviceSession(profile, run.checked.loaded.base_dir, bench.runner)
    session.open()
    from qbench.pipeline.placement import resolve_placement

    placements, placed = {}, {}
    try:
        for c in cells:
            if (c.threads, c.affinity) not in placements:
                placements[(c.threads, c.affinity)] = resolve_placement(session, profile, bench, c.threads, c.affinity)
                placed[(c.threads, c.affinity)] = session.info.get("placement")
    except BaseException:  # the caller fails the device's cells; the open session must not outlive them
        session.close()
        raise
    return profile, session, placements, placed


def _fail_device(run: Run, device_name: str, cells: list[grid.Cell], exc: Exception) -> None:
    """The device could not be opened: each of its cells fails with the cause."""
    if isinstance(exc, CellError):
        err = exc
    elif isinstance(exc, (QbenchError, OSError)):
        err = CellError("device", f"{device_name}: {exc}")
    else:
        err = CellError("device", f"{device_name}: {_internal(exc)}")
    for c in cells:
        run.fail(c, err)
    run.progress.log(f"[failed] device {device_name}: {err}")
    run.progress.advance(run.trials_left(cells))


def _settings_per_point(run: Run, session, cells: list[grid.Cell], placements: dict) -> dict:
    """The trial settings of each sweep point (threads, affinity), warning when they oversubscribe the device."""
    from qbench.pipeline.thread_count import warn_at_session_open

    bench = run.bench
    settings_of = {point: TrialSettings(
        warmup=bench.warmup, warmup_seconds=bench.warmup_seconds, iterations=bench.iterations,
        min_seconds=bench.min_seconds, max_iterations=bench.max_iterations,
        threads=threads, affinity=affinity,
        timeout=bench.timeout_seconds,
    ) for point, (threads, affinity) in placements.items()}
    for point, settings in settings_of.items():
        warn_at_session_open(session, settings, [run.cell_ids[c] for c in cells if (c.threads, c.affinity) == point],
                             run.store, run.progress.log)
    return settings_of


def _finish_resumed_cells(work: _DeviceWork, cells: list[grid.Cell]) -> None:
    """Resumed: every trial of a cell was stored, but the run stopped before the cell's summary."""
    from qbench.pipeline.generation import cell_settings

    for cell in cells:
        if work.plan.finished(cell):
            art, point = work.artifacts[cell.variant], (cell.threads, cell.affinity)
            _finish_cell(work.run, work.session, art, cell_settings(work.settings_of[point], cell), cell,
                         work.session.runner_for(art), work.policy, work.power, work.placed[point])


def _one_trial(work: _DeviceWork, trial: int, cell: grid.Cell) -> None:
    """One trial of a cell, stored and judged; the cell's summary when it was its last."""
    from qbench.pipeline.adaptive import judge_trial
    from qbench.pipeline.generation import cell_settings

    run, plan, progress = work.run, work.plan, work.run.progress
    bench, store = run.bench, run.store
    cid = run.cell_ids[cell]
    art = work.artifacts[cell.variant]
    settings = cell_settings(work.settings_of[(cell.threads, cell.affinity)], cell)
    if trial >= bench.trials:  # beyond the planned `trials`: a replacement or an extra trial
        progress.more()
    progress.stage(f"trial {trial + 1}/{work.policy.max_trials} {cell.label}")
    try:
        out, runner = _trial_with_retries(work.session, art, settings, work.cooldown, work.profile, progress, cell)
    except Exception as exc:  # the cell fails with the cause; the device's other cells go on
        err = exc if isinstance(exc, CellError) else CellError("run", _internal(exc))
        plan.drop(cell)
        run.fail(cell, err)
        progress.log(f"[failed] {cell.label}: {err}")
        progress.advance(max(1, bench.trials - trial))  # this trial's step and the planned ones left
        return
    judged = judge_trial(out.report, work.policy.interference_threshold)
    store.add_trial(cid, trial, out.report["samples_ns"], thread_cpu_ns=out.report.get("thread_cpu_ns"),
                    **columns.trial_columns(
                        out.report, wall_s=out.wall_s, thermal_before=out.thermal_before,
                        thermal_after=out.thermal_after, cooldown_wait_s=out.cooldown_wait_s,
                        finished_at=now()), **judged.columns())
    progress.advance()
    finished = plan.finished(cell)
    if judged.disturbed:  # the run log only: the cell's line counts them (N trials (c clean, r replaced))
        log.info(f"[disturbed] {cell.label} trial {trial + 1}: {judged.why}; kept, marked, "
                 + ("the last one allowed (max_trials)" if finished else "another trial replaces it"))
    if finished:
        _finish_cell(run, work.session, art, settings, cell, runner, work.policy, work.power,
                     work.placed[(cell.threads, cell.affinity)])


def _finish_cell(run: Run, session, art, settings, cell, runner, policy, power, placement: dict | None) -> None:
    """A cell whose trials are all in: its summary, device numerics, then op profile and energy.
    `placement`: what the cell's sweep point (threads, affinity) resolved to on the device."""
    from qbench.pipeline import device_numerics_pass  # outputs of the device that was timed

    store, cid = run.store, run.cell_ids[cell]
    note = session.runner_reason if runner is session.runner else "eager (PyTorch reference)"
    finalize_cell(store, cid, {**session.info, "placement": placement} if placement else session.info,
                  runner_note=note, policy=policy)
    if cell.variant.model.task == "text-generation":
        from qbench.pipeline.generation import record_generation

        record_generation(store, cid, art, session, settings, run.progress.log)
    device_numerics_pass.record(session, art, settings, store, cid, cell.label, run.progress.log)
    run.progress.cell_done(cell.label, dict(store.cell(cid)))
    if run.bench.profile_ops and art.kind == "pte":
        _profile_ops(run, session, art, settings, cell)
    if power.enabled and art.kind == "pte":
        _measure_power(run, power, session, art, settings, cell)


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


def _measure_power(run: Run, power, session, art, settings, cell) -> None:
    """A separate trial with the power source sampling; its failure costs the energy figure only."""
    from qbench.pipeline.power import store_power

    run.progress.stage(f"power {cell.label}")
    try:
        program, inputs = session.push(art)
        result = power.measure(session.runner_for(art), program, inputs, settings)
    except Exception as exc:
        result = {"source": power.choice.kind, "measured": False, "reason": f"power trial failed: {exc}"}
        run.progress.log(f"[power] {cell.label}: {exc}")
    store_power(run.store, run.cell_ids[cell], result)


def _profile_ops(run: Run, session, art, settings, cell) -> None:
    """A separate, short pass with ETDump on (never mixed into the latency trials)."""
    import tempfile
    from dataclasses import replace

    from qbench.collectors.op_profile import op_table

    cell_id = run.cell_ids[cell]
    run.progress.stage(f"profile ops {cell.label}")
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
        run.store.replace_ops(cell_id, table.to_dict("records"))
    except Exception as exc:  # the latency result stands; say why the profile is missing
        run.store.merge_extra(cell_id, **columns.profile_error_extra(str(exc)))
        run.progress.log(f"[profile] {cell.label}: {exc}")


def finalize_cell(store: ResultsStore, cell_id: int, device_info: dict, runner_note: str, policy=None) -> None:
    """Summary figures from the raw samples of the trials used (clean ones; all if none was clean)
    and the median's stability (pipeline/adaptive.py)."""
    from qbench.pipeline.adaptive import Policy, records, stability, used_trials

    recs = records(store, cell_id)
    used = used_trials(recs)
    stab = stability(recs, policy or Policy(min_trials=1, max_trials=len(recs)))
    chosen = {r.trial for r in used}
    store.update_cell(cell_id, **columns.summary_columns(
        [r for r in store.trials(cell_id) if r["trial"] in chosen], {r.trial: r.samples_ns for r in used},
        device_info, runner_note, stability=stab))
