"""A stand-in for ``pynvml`` for gpu_check.sh --dry-run: NOT a GPU and NOT a measurement.

It exists so the GPU check's NVML path (update-period probe, counter windows, polled
power cross-check, idle baseline) runs end to end on a CPU-only machine. Its "board"
draws FAKE_IDLE_W plus FAKE_BUSY_W times the share of one core this process is using,
so that work windows read above idle; its energy counter advances in FAKE_PERIOD_S
steps. Every name it reports says FAKE, and gpu_check.py labels a dry run's outputs as
such. Put its folder first on PYTHONPATH to use it; never install it.
"""

from __future__ import annotations

import os
import threading
import time

FAKE_NAME = "FAKE NVML board (gpu_check --dry-run; not a GPU)"
FAKE_UUID = "GPU-00000000-fake-0000-0000-000000000000"
FAKE_IDLE_W = 60.0
FAKE_BUSY_W = 200.0
FAKE_PERIOD_S = 0.005
FAKE_LIMIT_MW = 700_000
NVML_ERROR_NOT_SUPPORTED = 3
NVML_TEMPERATURE_GPU = 0

_lock = threading.Lock()
_origin = time.monotonic()


class NVMLError(Exception):
    def __init__(self, value: int = NVML_ERROR_NOT_SUPPORTED) -> None:
        super().__init__(f"fake NVML error {value}")
        self.value = value


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _energy_j(now: float) -> float:
    """Idle power over wall time plus busy power over this process tree's CPU time
    (capped at one core's worth so the fake never draws more than idle + busy)."""
    wall = now - _origin
    return FAKE_IDLE_W * wall + FAKE_BUSY_W * min(_cpu_s(), wall)


_last = {"t": time.monotonic(), "j": 0.0, "p": FAKE_IDLE_W}


def nvmlInit() -> None:
    return None


def nvmlShutdown() -> None:
    return None


def nvmlSystemGetDriverVersion() -> str:
    return "fake-0.0 (dry run)"


def nvmlDeviceGetCount() -> int:
    return 1


def _check(handle: int) -> None:
    if handle != 0:
        raise NVMLError(2)


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    _check(index)
    return 0


def nvmlDeviceGetHandleByUUID(uuid: str) -> int:
    if uuid != FAKE_UUID:
        raise NVMLError(13)
    return 0


def nvmlDeviceGetUUID(handle: int) -> str:
    _check(handle)
    return FAKE_UUID


def nvmlDeviceGetName(handle: int) -> str:
    _check(handle)
    return FAKE_NAME


def nvmlDeviceGetTotalEnergyConsumption(handle: int) -> int:
    """mJ, advancing only at whole FAKE_PERIOD_S steps of the wall clock, as NVML's does."""
    _check(handle)
    now = time.monotonic()
    stepped = _origin + int((now - _origin) / FAKE_PERIOD_S) * FAKE_PERIOD_S
    return int(_energy_j(stepped) * 1000)


def nvmlDeviceGetPowerUsage(handle: int) -> int:
    """mW: the mean power since the previous call at least one period ago."""
    _check(handle)
    with _lock:
        now = time.monotonic()
        if now - _last["t"] >= FAKE_PERIOD_S:
            j = _energy_j(now)
            if _last["j"]:
                _last["p"] = (j - _last["j"]) / (now - _last["t"])
            _last.update(t=now, j=j)
        return int(_last["p"] * 1000)


def nvmlDeviceGetPowerManagementLimit(handle: int) -> int:
    _check(handle)
    return FAKE_LIMIT_MW


def nvmlDeviceGetEnforcedPowerLimit(handle: int) -> int:
    _check(handle)
    return FAKE_LIMIT_MW


def nvmlDeviceGetComputeRunningProcesses(handle: int) -> list:
    _check(handle)
    return []
