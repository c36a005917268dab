"""The energy math on synthetic signals with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qbench.collectors.power import (
    CounterReading,
    PowerError,
    PowerLog,
    PowerSample,
    energy_from_samples,
    measure,
)
from qbench.collectors.power.energy import counters_window, energy_per_inference, samples_window


def const(watts: float, t0: float, t1: float, step: float = 0.1) -> list[PowerSample]:
    n = round((t1 - t0) / step)
    return [PowerSample(t0 + i * step, watts) for i in range(n + 1)]


def test_constant_2w_for_10s_over_100_inferences_is_200_mj():
    r = energy_from_samples(const(2.0, 0.0, 10.0), inferences=100)
    assert r.measured
    assert r.energy_j == pytest.approx(20.0)
    assert r.avg_power_w == pytest.approx(2.0)
    assert r.energy_per_inference_mj == pytest.approx(200.0)
    assert r.duration_s == pytest.approx(10.0)
    assert r.sample_count == 101
    assert r.sampling_period_s == pytest.approx(0.1)
    assert r.uncertainty_j == pytest.approx(0.0)  # a constant signal has no spread


def test_idle_half_watt_subtracted_gives_150_mj():
    r = energy_from_samples(const(2.0, 0.0, 10.0), inferences=100, idle_samples=const(0.5, -5.0, 0.0))
    assert r.idle_power_w == pytest.approx(0.5)
    assert r.net_energy_j == pytest.approx(15.0)
    assert r.energy_per_inference_mj == pytest.approx(150.0)
    assert r.gross_energy_per_inference_mj == pytest.approx(200.0)


def test_trapezoid_is_exact_on_a_ramp():
    ramp = [PowerSample(t, 0.4 * t) for t in np.linspace(0, 10, 7)]  # 0 -> 4 W, coarse samples
    assert samples_window(ramp).energy_j == pytest.approx(20.0)


def test_edges_between_samples_are_interpolated():
    ramp = [PowerSample(float(t), float(t)) for t in range(0, 11)]  # P = t watts, 1 Hz
    w = samples_window(ramp, 2.5, 7.5)
    assert w.energy_j == pytest.approx((7.5**2 - 2.5**2) / 2)  # integral of t dt
    assert w.sample_count == 5  # t = 3..7: the interpolated edges are not samples
    assert w.notes == []


def test_window_the_samples_do_not_reach_is_scaled_and_noted():
    w = samples_window(const(3.0, 2.0, 8.0, step=0.5), 0.0, 10.0)
    assert w.energy_j == pytest.approx(30.0)
    assert any("cover 60%" in n for n in w.notes)


def test_fewer_than_two_samples_is_refused():
    with pytest.raises(PowerError, match="only 1 power samples in the window"):
        samples_window([PowerSample(0.0, 1.0), PowerSample(5.0, 1.0), PowerSample(10.0, 1.0)], 4.0, 6.0)
    with pytest.raises(PowerError, match="only 0 power samples"):
        energy_from_samples([], inferences=1)
    with pytest.raises(PowerError, match="ends .* before it starts"):
        samples_window(const(1.0, 0, 1), 1.0, 0.5)


def test_sem_counts_repeated_gauge_readings_once():
    # 1 W / 3 W alternating every second, polled at 10 Hz: 10 distinct readings, not 100 samples
    samples = [PowerSample(i * 0.1, 1.0 if (i // 10) % 2 == 0 else 3.0) for i in range(100)]
    w = samples_window(samples)
    std = float(np.std([s.watts for s in samples], ddof=1))
    assert w.u_avg_power_w == pytest.approx(std / math.sqrt(10))
    assert w.u_energy_j == pytest.approx(w.u_avg_power_w * w.duration_s)


def test_uncertainty_combines_run_and_idle_in_quadrature():
    run = samples_window([PowerSample(i * 0.1, 2.0 + (0.2 if i % 2 else -0.2)) for i in range(101)])
    idle = samples_window([PowerSample(-5 + i * 0.1, 0.5 + (0.1 if i % 2 else -0.1)) for i in range(51)])
    r = energy_per_inference(run, 100, idle)
    expected = math.hypot(run.u_avg_power_w * run.duration_s, idle.u_avg_power_w * run.duration_s)
    assert r.uncertainty_j == pytest.approx(expected)
    assert r.uncertainty_per_inference_mj == pytest.approx(expected / 100 * 1e3)


def test_inference_count_must_be_a_positive_int():
    run = samples_window(const(1.0, 0, 1))
    for bad in (0, -3, 2.5, True, None):
        with pytest.raises(PowerError, match="positive inference count"):
            energy_per_inference(run, bad)


def test_net_below_idle_is_kept_and_noted():
    r = energy_from_samples(const(1.0, 0, 10), 10, idle_samples=const(1.5, -5, 0))
    assert r.net_energy_j == pytest.approx(-5.0)
    assert any("negative" in n for n in r.notes)


def test_per_rail_energy_is_integrated_too():
    samples = [PowerSample(t, 3.0, {"cpu": 2.0, "ddr": 1.0}) for t in np.arange(0, 10.01, 0.5)]
    w = samples_window(samples)
    assert w.per_rail_j == pytest.approx({"cpu": 20.0, "ddr": 10.0})


def _reading(t, e, label=None, wrap=None, step=0.0):
    return CounterReading(
        t_s=t, energy_j={"pkg": e}, wrap_j={"pkg": wrap} if wrap else {}, label=label, step_j=step
    )


def test_counter_difference_with_one_wrap():
    rs = [_reading(0.0, 990.0, "a", wrap=1000.0), _reading(10.0, 40.0, "b", wrap=1000.0)]
    w = counters_window(rs, 0.0, 10.0, "a", "b")
    assert w.energy_j == pytest.approx(50.0) and w.avg_power_w == pytest.approx(5.0)


def test_counter_going_down_without_a_range_is_an_error():
    with pytest.raises(PowerError, match="went down"):
        counters_window([_reading(0.0, 10.0, "a"), _reading(1.0, 5.0, "b")], 0.0, 1.0, "a", "b")


def test_counter_edges_between_readings_are_interpolated():
    rs = [_reading(float(t), 2.0 * t) for t in range(0, 11)]  # 2 W, 1 Hz cumulative
    w = counters_window(rs, 2.5, 7.5)
    assert w.energy_j == pytest.approx(10.0) and w.sample_count == 5
    with pytest.raises(PowerError, match="no counter reading on both sides"):
        counters_window(rs, 9.5, 12.0)


def test_counter_quantization_is_the_uncertainty():
    rs = [_reading(0.0, 0.0, "a", step=1e-3), _reading(10.0, 20.0, "b", step=1e-3)]
    w = counters_window(rs, 0.0, 10.0, "a", "b")
    assert w.u_energy_j == pytest.approx(math.sqrt(2) * 1e-3 / math.sqrt(12))


def test_counter_device_clock_beats_the_shell_clock():
    a = CounterReading(t_s=100.0, energy_j={"r": 0.0}, device_t_s=5.000, label="a")
    b = CounterReading(t_s=110.2, energy_j={"r": 20.0}, device_t_s=15.000, label="b")  # shell saw 10.2 s
    w = counters_window([a, b], 100.0, 110.2, "a", "b")
    assert w.duration_s == pytest.approx(10.0) and w.avg_power_w == pytest.approx(2.0)


def test_counter_total_uses_only_the_total_rails():
    a = CounterReading(t_s=0.0, energy_j={"package-0": 0.0, "package-0/core": 0.0}, label="a")
    b = CounterReading(t_s=1.0, energy_j={"package-0": 10.0, "package-0/core": 7.0}, label="b")
    w = counters_window([a, b], 0.0, 1.0, "a", "b", total_rails=["package-0"])
    assert w.energy_j == 10.0 and w.per_rail_j == {"package-0": 10.0, "package-0/core": 7.0}


def test_measure_uses_marks_and_default_windows():
    log = PowerLog(
        "test",
        "sampled",
        samples=const(0.5, 0, 5) + const(2.0, 5.1, 15),
        marks={"idle_start": 0.0, "run_start": 5.05, "run_end": 15.0},
    )
    r = measure(log, inferences=100)
    assert r.idle_power_w == pytest.approx(0.5, abs=0.01)
    # run_start at 5.05 lies between 0.5 W (t=5.0) and 2.0 W (t=5.1): the edge is 1.25 W
    assert r.energy_j == pytest.approx((1.25 + 2.0) / 2 * 0.05 + 2.0 * 9.9)
    assert r.duration_s == pytest.approx(9.95)
