"""NVML against a fake ``pynvml`` module injected at the boundary (Hardware.nvml), and the
choice of meters for a GPU or a CPU run on a GPU machine."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from harness import meters
from harness.config import MeterConfig
from harness.errors import MeterError, UserError
from harness.meters import EnergyMonitor, Hardware
from harness.meters.nvml import ASSUMED_PERIOD_S, NVIDIA_ABS_W, POLLED_EXTRA_REL, NvmlBackend, measure_update_period, \
    select_handles

NOT_SUPPORTED = 3


class FakeNvml:
    """The slice of pynvml the backend uses. Energies in mJ, power in mW, as NVML does.

    With ``clock`` and ``step_s`` the energy counter is live: it advances by
    ``power x step_s`` at every multiple of ``step_s`` of the clock, as NVML's does at
    its update period."""

    NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED

    class NVMLError(Exception):
        def __init__(self, value: int) -> None:
            super().__init__(f"NVML error {value}")
            self.value = value

    def __init__(self, energies_mj: list[int] | None = None, powers_mw: list[int] | None = None,
                 broken_init: bool = False, clock=None, step_s: float = 0.0,
                 uuids: list[str] | None = None) -> None:
        self.energy = energies_mj  # None: the GPUs have no energy counter
        self.power = powers_mw if powers_mw is not None else [0] * len(energies_mj or [])
        self.broken_init = broken_init
        self.clock, self.step_s = clock, step_s
        self.uuids = uuids or [f"GPU-aaaa-{i}" for i in range(len(self.power))]
        self.log: list[str] = []
        self.fail_reads = False
        self.procs: list = []  # compute processes on every GPU (objects with a pid)

    def nvmlInit(self) -> None:
        if self.broken_init:
            raise self.NVMLError(12)

    def nvmlShutdown(self) -> None:
        self.log.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.power)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        return self.uuids.index(uuid)

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list:
        return list(self.procs)

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return self.uuids[h]

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        if self.energy is None:
            raise self.NVMLError(NOT_SUPPORTED)
        if self.fail_reads:
            raise self.NVMLError(999)
        self.log.append(f"energy{h}")
        if self.clock is not None:  # live counter: whole update periods of power so far
            steps = int(self.clock() / self.step_s + 1e-9)
            return self.energy[h] + int(self.power[h] * self.step_s * steps)
        return self.energy[h]

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if self.fail_reads:
            raise self.NVMLError(999)
        self.log.append(f"power{h}")
        return self.power[h]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class TickingClock:
    """Advances ``tick`` seconds at every reading, like a busy loop's clock."""

    def __init__(self, tick: float = 0.001) -> None:
        self.t, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t


def backend(nvml: FakeNvml, **kw) -> NvmlBackend:
    kw.setdefault("env", {})
    kw.setdefault("update_period_s", 0.1)
    return NvmlBackend(nvml, **kw)


def test_counter_path_and_sync_before_each_read() -> None:
    nvml = FakeNvml(energies_mj=[1_000])
    b = backend(nvml)
    nvml.log.clear()
    monitor = EnergyMonitor([b], sync=lambda: nvml.log.append("sync"))
    monitor.begin_window("w")
    nvml.energy[0] = 6_500
    m = monitor.end_window("w")
    assert m.energy_j == pytest.approx(5.5)
    assert m.method == "nvml" and m.components[0].component == "gpu0"
    assert nvml.log == ["sync", "energy0", "sync", "energy0"]
    b.close()
    assert nvml.log[-1] == "shutdown"


def test_uncertainty_is_nvidias_5_watts_at_the_measured_power() -> None:
    """+-5 W over the window: 5 W x 2 s on 200 J (100 W) is +-5%; on 1000 J, +-1%."""
    nvml = FakeNvml(energies_mj=[0])
    clock = Clock()
    monitor = EnergyMonitor([backend(nvml)], clock=clock)
    for joules, expected in ((200, 0.05), (1000, 0.01)):
        nvml.energy[0] = 0
        monitor.begin_window("w")
        clock.t += 2.0
        nvml.energy[0] = joules * 1000
        m = monitor.end_window("w")
        assert m.components[0].uncertainty_rel == pytest.approx(expected)
        assert m.uncertainty_j == pytest.approx(NVIDIA_ABS_W * 2.0)


def test_polled_path_integrates_with_the_trapezoid_rule() -> None:
    nvml = FakeNvml(energies_mj=None, powers_mw=[100_000])
    clock = Clock()
    b = backend(nvml, clock=clock, start_thread=False)
    assert b.method == "nvml-polled"
    monitor = EnergyMonitor([b], clock=clock)
    monitor.begin_window("w")
    clock.t += 1.0
    nvml.power[0] = 200_000
    b.sample()  # the poll thread's step: (100 W + 200 W) / 2 x 1 s
    clock.t += 2.0  # 200 W for 2 s, closed by the reading at the window edge
    m = monitor.end_window("w")
    assert m.energy_j == pytest.approx(150.0 + 400.0)
    assert m.duration_s == pytest.approx(3.0)
    assert m.components[0].method == "nvml-polled"
    # sampled power carries the extra allowance on top of NVIDIA's 5 W
    assert m.components[0].uncertainty_rel == pytest.approx(NVIDIA_ABS_W * 3.0 / 550.0 + POLLED_EXTRA_REL)
    assert "polled power, trapezoid" in b.formula()


def test_polled_path_with_its_real_thread() -> None:
    nvml = FakeNvml(energies_mj=None, powers_mw=[50_000])
    b = backend(nvml, poll_interval_s=0.01)
    monitor = EnergyMonitor([b])
    monitor.begin_window("w")
    time.sleep(0.3)
    m = monitor.end_window("w")
    b.close()
    # constant power: exact up to the µs between the backend's clock and the window's
    assert m.energy_j == pytest.approx(50.0 * m.duration_s, rel=1e-3)
    assert sum(1 for e in nvml.log if e == "power0") > 10  # the thread really polled


def test_update_period_is_measured_from_a_counter_stepping_every_20_ms() -> None:
    clock = TickingClock(0.001)
    nvml = FakeNvml(energies_mj=[0], powers_mw=[100_000], clock=clock, step_s=0.020)
    b = NvmlBackend(nvml, env={}, clock=clock)
    assert b.update_period_s == pytest.approx(0.020, abs=0.0021)  # a loop turn (2 clock ticks) of slack
    assert b.period_measured and "update period 20 ms measured at start" in b.formula()
    monitor = EnergyMonitor([b], clock=clock)
    assert monitor.min_window_s() == pytest.approx(2.0, abs=0.21)  # 100 updates: <= 1% missed


def test_update_period_is_not_invented_when_the_counter_does_not_move() -> None:
    nvml = FakeNvml(energies_mj=[0])  # a frozen counter
    b = NvmlBackend(nvml, env={}, clock=TickingClock(0.001))
    assert b.update_period_s == ASSUMED_PERIOD_S and not b.period_measured
    assert "ASSUMED" in b.formula()


def test_update_period_from_irregular_changes_takes_the_median() -> None:
    changes = iter([0.0] * 10 + [1.0] * 50 + [2.0] * 50 + [3.0] * 50 + [4.0] * 5 + [5.0] * 50 + [6.0] * 50
                   + [7.0] * 50 + [8.0] * 50 + [9.0] * 50 + [10.0] * 1000)
    period = measure_update_period(lambda: next(changes), TickingClock(0.001), max_s=5.0)
    assert period == pytest.approx(0.050, abs=0.002)  # the one short interval (5 ms) does not win
    assert measure_update_period(lambda: 1.0, TickingClock(0.001), max_s=0.1) is None


def test_cross_check_reads_polled_power_over_the_same_windows() -> None:
    nvml = FakeNvml(energies_mj=[0], powers_mw=[100_000])
    clock = Clock()
    b = backend(nvml, clock=clock, start_thread=False, cross_check=True)
    monitor = EnergyMonitor([b], clock=clock)
    monitor.begin_window("w")
    clock.t += 2.0
    nvml.energy[0] = 210_000  # the counter says 210 J; power says 100 W x 2 s = 200 J
    m = monitor.end_window("w")
    assert m.energy_j == pytest.approx(210.0)  # the counter is the figure
    assert [(c.component, c.method) for c in m.cross_check] == [("gpu0", "nvml-polled")]
    assert m.cross_check[0].energy_j == pytest.approx(200.0)
    assert "cross-check" in b.formula()
    plain = backend(FakeNvml(energies_mj=[0], powers_mw=[1]), start_thread=False)
    assert not plain.polled and plain.check_totals() == {}


def test_two_gpus_and_cuda_visible_devices() -> None:
    nvml = FakeNvml(energies_mj=[0, 0, 0])
    b = backend(nvml)
    assert b.components() == ("gpu0", "gpu1", "gpu2")
    pci = {"CUDA_VISIBLE_DEVICES": "2,0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    only = backend(nvml, env=pci)
    assert only.handles == [2, 0] and only.components() == ("gpu0", "gpu1")
    monitor = EnergyMonitor([only])
    monitor.begin_window("w")
    nvml.energy[:] = [1_000, 5_000, 3_000]
    m = monitor.end_window("w")
    assert {c.component: c.energy_j for c in m.components} == {"gpu0": pytest.approx(3.0),
                                                               "gpu1": pytest.approx(1.0)}
    assert m.energy_j == pytest.approx(4.0)
    with pytest.raises(MeterError, match="no visible GPU"):
        backend(nvml, env={"CUDA_VISIBLE_DEVICES": ""})


def test_the_run_meters_exactly_the_gpu_it_uses() -> None:
    nvml = FakeNvml(energies_mj=[0, 0, 0, 0])
    pci = {"CUDA_VISIBLE_DEVICES": "3,1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert select_handles(nvml, [1], pci) == {"gpu1": 1}  # cuda:1 is the second visible: NVML's GPU 1
    assert select_handles(nvml, [0], pci) == {"gpu0": 3}
    # the UUID torch reports wins over any numbering
    assert select_handles(nvml, [0], {}, uuids={0: "GPU-aaaa-2"}) == {"gpu0": 2}
    # several GPUs, indices, and CUDA's default (fastest-first) order: refused, with the fix
    with pytest.raises(MeterError, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        select_handles(nvml, [0], {"CUDA_VISIBLE_DEVICES": "3,1"})
    # UUID prefixes, as CUDA accepts them
    prefixed = FakeNvml(energies_mj=[0, 0], uuids=["GPU-12ab-0000", "GPU-34cd-0000"])
    assert select_handles(prefixed, [0], {"CUDA_VISIBLE_DEVICES": "GPU-34"}) == {"gpu0": 1}
    with pytest.raises(MeterError, match="matches 2 GPUs"):
        select_handles(prefixed, [0], {"CUDA_VISIBLE_DEVICES": "GPU-"})
    with pytest.raises(MeterError, match="MIG instance .* whole GPU"):
        select_handles(prefixed, [0], {"CUDA_VISIBLE_DEVICES": "MIG-1234"})
    with pytest.raises(MeterError, match="only 1 GPU"):
        select_handles(prefixed, [1], {"CUDA_VISIBLE_DEVICES": "GPU-34"})


def test_nvml_error_mid_window_discards_the_window() -> None:
    nvml = FakeNvml(energies_mj=[0])
    monitor = EnergyMonitor([backend(nvml)])
    monitor.begin_window("w")
    nvml.fail_reads = True
    with pytest.raises(MeterError, match="gpu0 failed mid-window"):
        monitor.end_window("w")
    nvml.fail_reads = False
    monitor.begin_window("w")  # the failed window is gone, a new one can open
    nvml.energy[0] = 2_000
    assert monitor.end_window("w").energy_j == pytest.approx(2.0)


def test_polled_thread_error_surfaces_at_the_next_reading() -> None:
    nvml = FakeNvml(energies_mj=None, powers_mw=[10_000])
    b = backend(nvml, poll_interval_s=0.01)
    monitor = EnergyMonitor([b])
    monitor.begin_window("w")
    nvml.fail_reads = True
    time.sleep(0.1)
    with pytest.raises(MeterError, match="mid-window"):
        monitor.end_window("w")
    b.close()


def gpu(index: int = 0, uuid: str | None = None, log: list | None = None):
    """A resolved CUDA device as harness.device.resolve returns it (duck-typed)."""
    return SimpleNamespace(is_cuda=True, index=index, uuid=uuid, name=f"cuda:{index}", model="Fake GPU",
                           sync=lambda: log.append(f"sync cuda:{index}") if log is not None else None)


def cpu():
    return SimpleNamespace(is_cuda=False, index=None, uuid=None, name="cpu", model="", sync=lambda: None)


def hw_with(nvml: FakeNvml, tmp_path) -> Hardware:
    return Hardware(powercap_root=tmp_path, nvml=nvml, env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID"},
                    clock=TickingClock(0.001))


def test_gpu_run_meters_its_gpu_by_counter_and_estimates_only_cpu_and_dram(tmp_path) -> None:
    nvml = FakeNvml(energies_mj=[0, 0])
    logs: list[str] = []
    sync_log: list[str] = []
    monitor = meters.build("auto", hw=hw_with(nvml, tmp_path), log=logs.append, device=gpu(1, log=sync_log))
    assert [b.method for b in monitor.backends] == ["nvml", "estimate"]
    assert monitor.backends[0].components() == ("gpu1",) and monitor.backends[0].handles == [1]
    assert monitor.backends[1].components() == ("cpu", "dram")
    assert monitor.method == "estimate+nvml"
    monitor.begin_window("w")
    monitor.end_window("w")
    assert sync_log == ["sync cuda:1", "sync cuda:1"]  # the run's GPU, and only it, at each edge
    monitor.close()


def test_cpu_run_on_a_gpu_machine_leaves_nvml_out_and_says_so(tmp_path) -> None:
    nvml = FakeNvml(energies_mj=[0, 0])
    logs: list[str] = []
    monitor = meters.build("auto", hw=hw_with(nvml, tmp_path), log=logs.append, device=cpu())
    assert [b.method for b in monitor.backends] == ["estimate"]
    assert sum("this run uses the CPU: their idle draw is left out" in line for line in logs) == 1  # one line
    whole = meters.build(MeterConfig(gpu_idle="include"), hw=hw_with(nvml, tmp_path), log=logs.append, device=cpu())
    assert [b.method for b in whole.backends] == ["nvml", "estimate"]
    assert whole.backends[0].components() == ("gpu0", "gpu1")  # the whole box
    with pytest.raises(UserError, match="this run uses the CPU"):
        meters.build("nvml", hw=hw_with(nvml, tmp_path), device=cpu())


def test_gpu_run_without_a_gpu_meter_stops(tmp_path) -> None:
    broken = FakeNvml(powers_mw=[], broken_init=True)
    with pytest.raises(UserError, match="cannot be estimated"):
        meters.build("auto", hw=hw_with(broken, tmp_path), device=gpu(0))
    with pytest.raises(UserError, match="cannot see cuda:0"):
        meters.build("estimate", hw=hw_with(FakeNvml(energies_mj=[0]), tmp_path), device=gpu(0))


def test_probe_reasons() -> None:
    assert "no NVIDIA GPU or driver" in NvmlBackend.probe(Hardware(nvml=FakeNvml(broken_init=True))).reason
    hidden = NvmlBackend.probe(Hardware(nvml=FakeNvml(energies_mj=[0]), env={"CUDA_VISIBLE_DEVICES": ""}))
    assert not hidden.available and "CUDA_VISIBLE_DEVICES" in hidden.reason
    assert NvmlBackend.probe(Hardware(nvml=FakeNvml(energies_mj=[0, 0]), env={})).available


def test_a_board_is_held_to_its_power_limit() -> None:
    class Limited(FakeNvml):
        def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
            return 700_000  # mW, an H100 SXM's

    b = backend(Limited(energies_mj=[1_000]))
    assert b.max_power_w("gpu0") == pytest.approx(700 + NVIDIA_ABS_W)
    b.close()
    b = backend(FakeNvml(energies_mj=[1_000]))  # absence: a board that does not say has no cap
    assert b.max_power_w("gpu0") is None
    b.close()


def test_another_job_on_the_gpu_makes_its_windows_shared() -> None:
    """A compute process outside this tree on a metered GPU during a window: the window is
    shared (its NVML reading holds that job's work); this process's own is not another."""
    import os
    from types import SimpleNamespace

    nvml = FakeNvml(energies_mj=[1_000])
    monitor = EnergyMonitor([backend(nvml)])
    for procs, others in (([SimpleNamespace(pid=os.getpid())], 0), ([SimpleNamespace(pid=1)], 1)):
        nvml.procs = procs
        monitor.begin_window("w")
        nvml.energy[0] += 5_000
        m = monitor.end_window("w")
        # another job on the GPU makes the window shared; without one, only the CPU's own
        # rule can (sharing.others: a share no window this short can resolve is None)
        assert m.others_on_gpu == others and (m.shared if others else m.others_cpu_share is None or not m.shared
                                              or m.others_cpu_share > 0.25)
        assert m.others_cpu_share is None or 0 <= m.others_cpu_share <= 1
        assert m.to_dict()["others_on_gpu"] == others
    monitor.close()

