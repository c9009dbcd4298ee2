"""The estimate meter's arithmetic, against a known CPU burn and against fake clocks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time

import pytest

from harness.errors import MeterError
from harness.meters import EnergyMonitor
from harness.meters.estimate import CPU_W_PER_BUSY_CPU, EstimateBackend


def burn_cpu(seconds: float, clock=time.thread_time) -> None:
    """Spin until this thread has used ``seconds`` of CPU time."""
    end = clock() + seconds
    x = 0
    while clock() < end:
        x += 1


def test_known_cpu_burn_costs_watts_times_cpu_seconds() -> None:
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    cpu0 = time.process_time()
    monitor.begin_window("burn")
    burn_cpu(0.5)
    m = monitor.end_window("burn")
    cpu_s = time.process_time() - cpu0
    cpu_j = {c.component: c.energy_j for c in m.components}["cpu"]
    # The burn used 0.5 s of CPU; the window reports 12 W x that, to within the few ms
    # of CPU the bookkeeping itself costs.
    assert cpu_j == pytest.approx(CPU_W_PER_BUSY_CPU * 0.5, rel=0.05)
    assert cpu_j <= CPU_W_PER_BUSY_CPU * cpu_s + 1e-9
    assert m.method == "estimate" and m.duration_s >= 0.45


def test_cpu_time_of_other_threads_is_counted() -> None:
    """The main thread only waits; the joules come from the worker thread's burn."""
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    monitor.begin_window("thread")
    worker = threading.Thread(target=burn_cpu, args=(0.4,))
    worker.start()
    worker.join()
    m = monitor.end_window("thread")
    assert m.energy_j >= CPU_W_PER_BUSY_CPU * 0.4 * 0.95


def test_sleeping_costs_almost_nothing() -> None:
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    monitor.begin_window("sleep")
    time.sleep(0.3)
    burn_cpu(0.01)  # a sliver of work so the window is positive
    m = monitor.end_window("sleep")
    assert 0 < m.energy_j < CPU_W_PER_BUSY_CPU * 0.1


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_formula_exactly_with_fake_clocks() -> None:
    wall, cpu = FakeClock(), FakeClock()
    backend = EstimateBackend(cpu_w_per_busy_cpu=10.0, dram_w_per_gb=0.5, cpu_seconds=cpu,
                              memory_bytes=lambda: 2_000_000_000, clock=wall)
    monitor = EnergyMonitor([backend], clock=wall)
    monitor.begin_window("w")
    wall.t += 4.0  # 4 s wall, 2 busy CPUs -> 8 CPU-seconds
    cpu.t += 8.0
    m = monitor.end_window("w")
    parts = {c.component: c.energy_j for c in m.components}
    assert parts["cpu"] == pytest.approx(80.0)  # 10 W x 8 CPU-s
    assert parts["dram"] == pytest.approx(4.0)  # 0.5 W/GB x 2 GB x 4 s
    assert m.energy_j == pytest.approx(84.0)
    assert m.duration_s == pytest.approx(4.0)
    assert m.uncertainty_j == pytest.approx(42.0)  # +-50%
    assert "10 W x CPU-seconds of the process and its children" in backend.formula()


def test_zero_window_is_an_error_not_a_record() -> None:
    wall, cpu = FakeClock(), FakeClock()
    monitor = EnergyMonitor([EstimateBackend(cpu_seconds=cpu, memory_bytes=lambda: 0, clock=wall)], clock=wall)
    monitor.begin_window("empty")
    wall.t += 1.0
    with pytest.raises(MeterError, match="must be positive"):
        monitor.end_window("empty")


CHILD = """
import sys, time
def burn(s):
    t = time.process_time()
    while time.process_time() - t < s:
        pass
burn(float(sys.argv[1]))
print("burnt", flush=True)
sys.stdin.readline()  # wait for the parent
burn(float(sys.argv[2]))
"""


def cpu_j(m) -> float:
    return {c.component: c.energy_j for c in m.components}["cpu"]


def test_a_child_process_that_ends_in_the_window_is_counted() -> None:
    """torch.compile's C++ compiler runs in child processes: their CPU is the window's."""
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    monitor.begin_window("child")
    subprocess.run([sys.executable, "-c", CHILD, "0.4", "0"], input="go\n", text=True, check=True,
                   capture_output=True)
    m = monitor.end_window("child")
    assert cpu_j(m) >= CPU_W_PER_BUSY_CPU * 0.4 * 0.95


def test_a_running_child_is_counted_once_across_window_edges() -> None:
    """A child that burnt 0.4 s before the window and 0.3 s inside it (reaped inside)
    costs the window 0.3 s, not 0.7; one still running at the end is counted too."""
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    child = subprocess.Popen([sys.executable, "-c", CHILD, "0.4", "0.3"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "burnt"
    monitor.begin_window("straddle")
    child.stdin.write("go\n")
    child.stdin.flush()
    child.wait()
    m = monitor.end_window("straddle")
    assert CPU_W_PER_BUSY_CPU * 0.3 * 0.9 <= cpu_j(m) <= CPU_W_PER_BUSY_CPU * 0.4

    monitor.begin_window("running")
    late = subprocess.Popen([sys.executable, "-c", CHILD, "0.3", "0"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert late.stdout.readline().strip() == "burnt"
    m = monitor.end_window("running")  # the child is still alive, waiting
    late.communicate("go\n")
    assert cpu_j(m) >= CPU_W_PER_BUSY_CPU * 0.3 * 0.95


#: A child that starts a grandchild burning ``argv[1]`` CPU-seconds, reaps it, says
#: "reaped", and stays alive until told to go.
REAPER = """
import subprocess, sys
subprocess.run([sys.executable, "-c", "import sys, time\\nend = time.process_time() + float(sys.argv[1])\\n"
                "while time.process_time() < end: pass", sys.argv[1]], check=True)
print("reaped", flush=True)
sys.stdin.readline()
"""


def test_a_grandchild_reaped_by_a_running_child_is_counted() -> None:
    """The compiler driver pattern: a running child waits for its own busy child. The
    grandchild's CPU moves into the child's cutime at the reap; the window must still
    hold it (before, it vanished, and a window over the reap could read negative)."""
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    monitor.begin_window("reap")
    child = subprocess.Popen([sys.executable, "-c", REAPER, "0.5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "reaped"
        m = monitor.end_window("reap")  # the child lives on; its child is gone
    finally:
        child.communicate("go\n")
    assert cpu_j(m) >= CPU_W_PER_BUSY_CPU * 0.5 * 0.9


def test_a_window_after_a_reap_holds_none_of_the_grandchild() -> None:
    """Absence: a window opened after the reap does not count the grandchild again."""
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    child = subprocess.Popen([sys.executable, "-c", REAPER, "0.5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "reaped"
        monitor.begin_window("after")
        burn_cpu(0.05)
        m = monitor.end_window("after")
    finally:
        child.communicate("go\n")
    assert cpu_j(m) < CPU_W_PER_BUSY_CPU * 0.25


class ScriptedBackend(EstimateBackend):
    """The estimate with scripted totals (a coarse counter): each reading returns the
    next value, so a test plants what a short window reads."""

    def __init__(self, readings: list[float], cap: float | None = 24.0) -> None:
        super().__init__(parts=("cpu",))
        self.readings, self.cap = list(readings), cap

    def totals(self) -> dict[str, float]:
        return {"cpu": self.readings.pop(0)}

    def max_power_w(self, component: str) -> float | None:
        return self.cap


def test_each_component_is_held_to_its_own_power() -> None:
    """The committed digits teacher logits: 0.579 J of CPU in 18.4 ms (31 W on 2 CPUs,
    where 2 x 12 W is the most the CPU part can give) passed when CPU and DRAM were
    checked together against 24 + 9.6 W. Each component against its own cap: bounded."""
    import os

    from harness.meters.base import ComponentEnergy, Measurement

    est = EstimateBackend()
    cores = os.cpu_count() or 1
    assert est.max_power_w("cpu") == CPU_W_PER_BUSY_CPU * cores
    assert 0 < est.max_power_w("dram") < 1000
    monitor = EnergyMonitor([est])
    over = CPU_W_PER_BUSY_CPU * cores * 1.3 * 0.0184  # 30% over the CPU's cap, the memory far under its own
    m = Measurement(0.0184, (ComponentEnergy("cpu", "estimate", over, 0.5), ComponentEnergy("dram", "estimate",
                                                                                               0.001, 0.5)))
    assert monitor.over_power(m) == ["cpu"] and not monitor._resolved(m)
    fine = Measurement(0.0184, (ComponentEnergy("cpu", "estimate", over / 2, 0.5),
                                ComponentEnergy("dram", "estimate", 0.001, 0.5)))
    assert monitor.over_power(fine) == [] and monitor._resolved(fine)  # absence


def test_short_creation_work_is_padded_and_reported_for_the_work_alone() -> None:
    """A 0 s quantization: the window is padded to the meter's minimum (a fake sleep),
    and the work's own joules and seconds are reported; a long one is left as it is."""
    t = [0.0]
    monitor = EnergyMonitor([ScriptedBackend([10.0, 10.5])], clock=lambda: t[0])
    monitor.idle_w = {(0, "cpu"): 1.0}

    def sleep(s: float) -> None:
        t[0] += s

    t[0] = 0.0
    with monitor.creation_window("q:create", sleep=sleep) as out:
        t[0] += 0.05  # the work: 50 ms
    m = out[0]
    assert m.work_s == pytest.approx(0.05) and not m.below_resolution
    assert m.duration_s == pytest.approx(0.05)
    assert m.energy_j == pytest.approx(0.5 - 1.0 * (monitor.creation_min_s() - 0.05))
    monitor = EnergyMonitor([ScriptedBackend([0.0, 6.0])], clock=lambda: t[0])
    with monitor.creation_window("train", sleep=sleep) as out:  # absence: long work, no padding
        t[0] += 5.0
    assert out[0].work_s is None and out[0].energy_j == 6.0


def test_an_unresolvable_creation_window_is_a_bound_not_an_error() -> None:
    """The digits bf16 cast: 0.066 J in 1.34 ms (49 W on a 24 W machine). Padded, the
    reading is still above what the machine can draw for the work's time, or lost in
    idle: flagged below resolution, its padded gross kept as the bound; no MeterError."""
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += s

    for readings, idle in (([0.0, 0.066], 0.0), ([0.0, 0.05], 1.0)):
        monitor = EnergyMonitor([ScriptedBackend(readings)], clock=lambda: t[0])
        monitor.idle_w = {(0, "cpu"): idle}
        with monitor.creation_window("bf16:create", sleep=sleep) as out:
            t[0] += 0.00134
        m = out[0]
        assert m.below_resolution and m.work_s == pytest.approx(0.00134)
        assert m.duration_s == pytest.approx(monitor.creation_min_s())
        assert m.energy_j / m.duration_s <= 24.0
    for padded in (True, False):  # 0 J over ten resolution steps, or an ordinary window: a broken meter
        monitor = EnergyMonitor([ScriptedBackend([5.0, 5.0])], clock=lambda: t[0])
        with pytest.raises(MeterError):
            with (monitor.creation_window("w", sleep=sleep) if padded else monitor.window("w")):
                t[0] += 0.00134 if padded else 1.0


def test_every_checked_window_over_a_components_power_is_a_bound() -> None:
    """Not only creation windows: an inference or training window (``end_window``,
    ``minus``) that reads more than a component can draw over its seconds keeps its
    reading as an upper bound (status ``bounded``); one within the cap is a value."""
    from harness.meters.base import Measurement

    ticks = iter([0.0, 1.0, 2.0, 3.0])
    over = EnergyMonitor([ScriptedBackend([0.0, 30.0], cap=24.0)], clock=lambda: next(ticks))
    over.begin_window("infer")
    m = over.end_window("infer")  # 30 J in 1 s against a 24 W cap
    assert m.status == "bounded" and m.below_resolution and m.energy_j == 30.0
    assert Measurement.from_dict(m.to_dict()).status == "bounded"  # kept in the record
    ticks = iter([0.0, 1.0])
    fine = EnergyMonitor([ScriptedBackend([0.0, 20.0], cap=24.0)], clock=lambda: next(ticks))
    fine.begin_window("infer")
    assert fine.end_window("infer").status == "resolved"  # absence
    # a training window less its validation passes: the rest, over fewer seconds, is checked too
    ticks = iter([0.0, 1.0])
    train = EnergyMonitor([ScriptedBackend([0.0, 20.0], cap=24.0)], clock=lambda: next(ticks))
    train.begin_window("train")
    whole = train.end_window("train")
    inner = Measurement(0.5, tuple(dataclasses.replace(c, energy_j=1.0) for c in whole.components))
    assert train.minus("train", whole, [inner]).status == "bounded"  # 19 J in 0.5 s: 38 W
    assert train.minus("train", whole, []).status == "resolved"
