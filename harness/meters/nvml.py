"""NVIDIA GPUs through NVML (``pynvml``, from the ``nvidia-ml-py`` distribution).

Two paths, labelled differently because they differ in trust:
- ``nvml``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load; Volta and
  newer) read at the window edges;
- ``nvml-polled``: older GPUs have no energy counter, so a thread samples
  ``nvmlDeviceGetPowerUsage`` (mW) every ``poll_interval_s`` and integrates with the
  trapezoid rule; short windows are less accurate, hence the larger stated uncertainty.

``torch.cuda.synchronize()`` runs before every reading so that queued kernels land in
the window that launched them. Devices follow ``CUDA_VISIBLE_DEVICES`` (indices or
``GPU-`` UUIDs); set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA and NVML agree on indices.
The ``nvml`` module and the ``sync`` function are constructor arguments, so tests pass
fakes at exactly this boundary.
"""

from __future__ import annotations

import os
import threading
import time
from types import ModuleType
from typing import Any, Callable

from harness.errors import MeterError
from harness.meters.base import Availability, Backend, Hardware


def _import_nvml() -> ModuleType:
    import pynvml

    return pynvml


def _cuda_sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def visible_handles(nvml: Any, env: dict[str, str] | None = None) -> list[Any]:
    env = os.environ if env is None else env
    spec = env.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    handles = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item.isdigit():
            handles.append(nvml.nvmlDeviceGetHandleByIndex(int(item)))
        elif item.startswith(("GPU-", "MIG-")):
            handles.append(nvml.nvmlDeviceGetHandleByUUID(item))
        else:
            break  # CUDA stops at the first invalid entry; so do we
    return handles


class NvmlBackend(Backend):
    method = "nvml"
    uncertainty_rel = 0.05  # NVIDIA documents board power as accurate to +-5%
    polled_uncertainty_rel = 0.10
    update_period_s = 0.1  # conservative: counters and power samples refresh ~every 100 ms

    def __init__(self, nvml: Any = None, sync: Callable[[], None] = _cuda_sync, poll_interval_s: float = 0.1,
                 env: dict[str, str] | None = None, clock: Callable[[], float] = time.monotonic,
                 start_thread: bool = True) -> None:
        self.nvml = nvml if nvml is not None else _import_nvml()
        self._sync, self._clock = sync, clock
        try:
            self.nvml.nvmlInit()
            self.handles = visible_handles(self.nvml, env)
        except self.nvml.NVMLError as exc:
            raise MeterError(f"NVML failed to start ({exc}); check the NVIDIA driver or choose meter: estimate") from None
        if not self.handles:
            raise MeterError("no visible GPU for NVML (CUDA_VISIBLE_DEVICES is empty?); choose meter: estimate")
        self.polled: dict[str, dict[str, float]] = {}  # component -> {t, p, j}
        self._methods: dict[str, str] = {}
        for i, h in enumerate(self.handles):
            comp = f"gpu{i}"
            try:
                self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)
                self._methods[comp] = "nvml"
            except self.nvml.NVMLError as exc:
                if getattr(exc, "value", None) != self.nvml.NVML_ERROR_NOT_SUPPORTED:
                    raise MeterError(f"NVML energy read of {comp} failed ({exc}); choose meter: estimate") from None
                self._methods[comp] = "nvml-polled"
                self.polled[comp] = {"t": self._clock(), "p": self._power_w(i), "j": 0.0}
        self.poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._error: MeterError | None = None
        self._stop = threading.Event()
        self._thread = None
        if self.polled and start_thread:
            self._thread = threading.Thread(target=self._poll_loop, name="nvml-poll", daemon=True)
            self._thread.start()
        methods = set(self._methods.values())
        self.method = "nvml" if methods == {"nvml"} else "nvml-polled" if methods == {"nvml-polled"} else "nvml+nvml-polled"

    @classmethod
    def create(cls, hw: Hardware) -> "NvmlBackend":
        return cls(hw.nvml, sync=hw.sync or _cuda_sync, env=hw.env)

    @classmethod
    def probe(cls, hw: Hardware) -> Availability:
        env = hw.env
        try:
            nvml = hw.nvml if hw.nvml is not None else _import_nvml()
        except ImportError:
            return Availability(False, "pynvml is not installed (pip install nvidia-ml-py)")
        try:
            nvml.nvmlInit()
            handles = visible_handles(nvml, env)
        except nvml.NVMLError as exc:
            return Availability(False, f"NVML could not start: {exc} (no NVIDIA GPU or driver)")
        if not handles:
            return Availability(False, "NVML sees no visible GPU (CUDA_VISIBLE_DEVICES hides them all)")
        return Availability(True, f"measures gpu0..gpu{len(handles) - 1} (energy counter or polled power)")

    def method_of(self, component: str) -> str:
        return self._methods[component]

    def uncertainty_of(self, component: str) -> float:
        return self.polled_uncertainty_rel if self._methods[component] == "nvml-polled" else self.uncertainty_rel

    def components(self) -> tuple[str, ...]:
        return tuple(self._methods)

    def _power_w(self, i: int) -> float:
        try:
            return self.nvml.nvmlDeviceGetPowerUsage(self.handles[i]) / 1000.0
        except self.nvml.NVMLError as exc:
            raise MeterError(f"NVML power read of gpu{i} failed mid-window ({exc}); the window is discarded") from None

    def sample(self) -> None:
        """One trapezoid step for every polled GPU."""
        with self._lock:
            for comp, state in self.polled.items():
                now, p = self._clock(), self._power_w(int(comp[3:]))
                state["j"] += (state["p"] + p) / 2 * (now - state["t"])
                state["t"], state["p"] = now, p

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.sample()
            except MeterError as exc:
                self._error = exc
                return

    def sync(self) -> None:
        self._sync()

    def totals(self) -> dict[str, float]:
        if self._error is not None:
            raise self._error
        if self.polled:
            self.sample()  # close the integral at the reading's own instant
        out = {}
        for i, (comp, method) in enumerate(self._methods.items()):
            if method == "nvml":
                try:
                    out[comp] = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handles[i]) / 1000.0
                except self.nvml.NVMLError as exc:
                    raise MeterError(f"NVML energy read of {comp} failed mid-window ({exc}); "
                                     "the window is discarded") from None
            else:
                out[comp] = self.polled[comp]["j"]
        return out

    def formula(self) -> str:
        parts = [f"{c}: {'energy counter' if m == 'nvml' else 'polled power, trapezoid'}"
                 for c, m in self._methods.items()]
        return f"{self.method}: NVML " + ", ".join(parts) + ", torch.cuda.synchronize() before each read"

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # shutting down a broken NVML must not mask the real error
            pass
