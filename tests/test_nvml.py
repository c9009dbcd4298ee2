"""NVML against a fake ``pynvml`` module injected at the boundary (Hardware.nvml)."""

from __future__ import annotations

import time

import pytest

from harness import meters
from harness.errors import MeterError
from harness.meters import EnergyMonitor, Hardware
from harness.meters.nvml import NvmlBackend

NOT_SUPPORTED = 3


class FakeNvml:
    """The slice of pynvml the backend uses. Energies in mJ, power in mW, as NVML does."""

    NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED

    class NVMLError(Exception):
        def __init__(self, value: int) -> None:
            super().__init__(f"NVML error {value}")
            self.value = value

    def __init__(self, energies_mj: list[int] | None = None, powers_mw: list[int] | None = None,
                 broken_init: bool = False) -> None:
        self.energy = energies_mj  # None: the GPUs have no energy counter
        self.power = powers_mw if powers_mw is not None else [0] * len(energies_mj or [])
        self.broken_init = broken_init
        self.log: list[str] = []
        self.fail_reads = False

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
        return int(uuid.rsplit("-", 1)[1])

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        if self.energy is None:
            raise self.NVMLError(NOT_SUPPORTED)
        if self.fail_reads:
            raise self.NVMLError(999)
        self.log.append(f"energy{h}")
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


def test_counter_path_and_sync_before_each_read() -> None:
    nvml = FakeNvml(energies_mj=[1_000])
    b = NvmlBackend(nvml, sync=lambda: nvml.log.append("sync"), env={})
    nvml.log.clear()
    monitor = EnergyMonitor([b])
    monitor.begin_window("w")
    nvml.energy[0] = 6_500
    m = monitor.end_window("w")
    assert m.energy_j == pytest.approx(5.5)
    assert m.method == "nvml" and m.components[0].component == "gpu0"
    assert m.components[0].uncertainty_rel == pytest.approx(0.05)
    assert nvml.log == ["sync", "energy0", "sync", "energy0"]
    b.close()
    assert nvml.log[-1] == "shutdown"


def test_polled_path_integrates_with_the_trapezoid_rule() -> None:
    nvml = FakeNvml(energies_mj=None, powers_mw=[100_000])
    clock = Clock()
    b = NvmlBackend(nvml, sync=lambda: None, env={}, clock=clock, start_thread=False)
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
    assert m.components[0].uncertainty_rel == pytest.approx(0.10)
    assert "polled power, trapezoid" in b.formula()


def test_polled_path_with_its_real_thread() -> None:
    nvml = FakeNvml(energies_mj=None, powers_mw=[50_000])
    b = NvmlBackend(nvml, sync=lambda: None, env={}, poll_interval_s=0.01)
    monitor = EnergyMonitor([b])
    monitor.begin_window("w")
    time.sleep(0.3)
    m = monitor.end_window("w")
    b.close()
    # constant power: exact up to the µs between the backend's clock and the window's
    assert m.energy_j == pytest.approx(50.0 * m.duration_s, rel=1e-3)
    assert sum(1 for e in nvml.log if e == "power0") > 10  # the thread really polled


def test_two_gpus_and_cuda_visible_devices() -> None:
    nvml = FakeNvml(energies_mj=[0, 0, 0])
    b = NvmlBackend(nvml, sync=lambda: None, env={})
    assert b.components() == ("gpu0", "gpu1", "gpu2")
    only = NvmlBackend(nvml, sync=lambda: None, env={"CUDA_VISIBLE_DEVICES": "2,0"})
    assert only.handles == [2, 0] and only.components() == ("gpu0", "gpu1")
    by_uuid = NvmlBackend(nvml, sync=lambda: None, env={"CUDA_VISIBLE_DEVICES": "GPU-aaaa-1"})
    assert by_uuid.handles == [1]
    monitor = EnergyMonitor([only])
    monitor.begin_window("w")
    nvml.energy[:] = [1_000, 5_000, 3_000]
    m = monitor.end_window("w")
    assert {c.component: c.energy_j for c in m.components} == {"gpu0": pytest.approx(3.0),
                                                               "gpu1": pytest.approx(1.0)}
    assert m.energy_j == pytest.approx(4.0)
    with pytest.raises(MeterError, match="no visible GPU"):
        NvmlBackend(nvml, sync=lambda: None, env={"CUDA_VISIBLE_DEVICES": ""})


def test_nvml_error_mid_window_discards_the_window() -> None:
    nvml = FakeNvml(energies_mj=[0])
    monitor = EnergyMonitor([NvmlBackend(nvml, sync=lambda: None, env={})])
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
    b = NvmlBackend(nvml, sync=lambda: None, env={}, poll_interval_s=0.01)
    monitor = EnergyMonitor([b])
    monitor.begin_window("w")
    nvml.fail_reads = True
    time.sleep(0.1)
    with pytest.raises(MeterError, match="mid-window"):
        monitor.end_window("w")
    b.close()


def test_auto_uses_gpu_counter_and_estimates_only_cpu_and_dram(tmp_path) -> None:
    nvml = FakeNvml(energies_mj=[0])
    logs: list[str] = []
    hw = Hardware(powercap_root=tmp_path, nvml=nvml, env={}, sync=lambda: None)
    monitor = meters.build("auto", hw=hw, log=logs.append)
    assert [b.method for b in monitor.backends] == ["nvml", "estimate"]
    assert monitor.backends[1].components() == ("cpu", "dram")
    assert monitor.method == "estimate+nvml"
    monitor.close()


def test_probe_reasons() -> None:
    assert "no NVIDIA GPU or driver" in NvmlBackend.probe(Hardware(nvml=FakeNvml(broken_init=True))).reason
    hidden = NvmlBackend.probe(Hardware(nvml=FakeNvml(energies_mj=[0]), env={"CUDA_VISIBLE_DEVICES": ""}))
    assert not hidden.available and "CUDA_VISIBLE_DEVICES" in hidden.reason
    assert NvmlBackend.probe(Hardware(nvml=FakeNvml(energies_mj=[0, 0]), env={})).available
