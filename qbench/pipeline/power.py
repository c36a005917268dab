"""Energy per inference for a cell: a separate trial with the device's power source sampling.

The latency trials never run with a sampler beside them. Per device the source is probed once; a
source the device lacks is reported once ("not measured: vcgencmd not found"), never as 0.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from qbench.devices.profiles import PowerChoice
from qbench.runners.base import TrialSettings

# keys of the profile's `power:` that are ours, not the source's options
_OWN_KEYS = {"kind", "idle_seconds", "period_s"}


class PowerMeter:
    def __init__(self, session, choice: PowerChoice, log=lambda text: None):
        self.session, self.choice, self.log = session, choice, log
        opts = dict(choice.model_extra or {})
        self.idle_seconds = float(opts.get("idle_seconds", 3.0))
        self.period_s = float(opts.get("period_s", 0.1))
        self.source = None
        self.unavailable: str | None = None
        if choice.kind == "none":
            self.unavailable = "no power source configured for this device (power: {kind: none})"
            return
        from qbench.collectors.power import get_power_source

        try:
            self.source = get_power_source(choice.kind, **{k: v for k, v in opts.items() if k not in _OWN_KEYS})
        except Exception as exc:
            self.unavailable = f"power source {choice.kind!r}: {exc}"

    @property
    def enabled(self) -> bool:
        return self.choice.kind != "none"

    def probe(self) -> None:
        """Once per device: can this device give us power at all? (The reason is logged once.)"""
        if self.source is None:
            return
        res = self._sh(self.source.probe_command(), timeout=60)
        probe = self.source.parse_probe(res.stdout, res.returncode, res.stderr)
        if not probe.available:
            self.unavailable = probe.reason
            self.log(f"[power] {self.session.name}: not measured: {probe.reason}")

    def measure(self, runner, program: str, inputs: str | None, settings: TrialSettings) -> dict:
        from qbench.collectors.power import PowerResult, measure

        if self.source is None or self.unavailable:
            return PowerResult.not_measured(self.choice.kind, self.unavailable or "not measured").to_dict()
        device = self.session.device
        log = f"{device.workdir.rstrip('/')}/qbench-power.log"
        command = shlex.join(runner.argv(program, settings, inputs=inputs))
        started = self.source.kind == "sampled"
        try:
            self._sh(f"rm -f {shlex.quote(log)}", timeout=30)
            if started:
                self._sh(self.source.start_command(log, period_s=self.period_s), timeout=30)
            res = self._sh(self.source.bracket_command(log, command, self.idle_seconds),
                           timeout=settings.timeout + self.idle_seconds + 30)
        finally:
            if started:
                self._sh(self.source.stop_command(log), timeout=30)
        report = runner.parse(res, settings)
        inferences = 1 + int(report.get("warmup_iterations") or 0) + len(report["samples_ns"])
        parsed = self.source.parse_log(self._read(log))
        result = measure(parsed, inferences=inferences).to_dict()
        result["note"] = self.source.note
        result["raw_samples"] = [(s.t_s, s.watts, getattr(s, "rails", None) or None) for s in parsed.samples]
        return result

    def _sh(self, snippet: str, timeout: float):
        return self.session.device.run(["sh", "-c", snippet], timeout=timeout)

    def _read(self, remote: str) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "power.log"
            self.session.device.pull(remote, local)
            return local.read_text(errors="replace")


def store_power(store, cell_id: int, result: dict) -> None:
    """Columns of the cell (the figures), raw samples in their own table, the rest of the result in extra."""
    from qbench.results.columns import power_columns, power_extra

    samples = result.pop("raw_samples", None) or []
    store.merge_extra(cell_id, **power_extra(result))
    store.update_cell(cell_id, **power_columns(result))
    if samples:
        store.replace_power_samples(cell_id, samples)
