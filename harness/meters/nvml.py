"""NVIDIA GPUs through NVML (``pynvml``, from the ``nvidia-ml-py`` distribution).

Two paths, labelled differently because they differ in trust:
- ``nvml``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load; Volta and
  newer) read at the window edges;
- ``nvml-polled``: older GPUs have no energy counter, so a thread samples
  ``nvmlDeviceGetPowerUsage`` (mW) and integrates with the trapezoid rule.

Which GPUs: exactly the ones the run uses. The run's CUDA ordinal is mapped to its NVML
handle by the UUID torch reports; where torch cannot say, through
``CUDA_VISIBLE_DEVICES`` (indices, full or prefix ``GPU-`` UUIDs), with indices trusted
only under ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (CUDA's default order, fastest first, need
not be NVML's). A MIG slice is refused in one line: NVML's energy is the whole board's.

Update period: measured at start (as Zeus does) by reading the counter in a tight loop
and taking the median time between changes; the minimum window is derived from it.

Uncertainty, as NVIDIA documents it: board power is accurate to within +-5 W
(``nvidia-smi --help-query-gpu``, power.draw), so a window's stated error is 5 W x its
duration, i.e. 5 W / the measured mean power as a fraction. Sampled power carries an
extra +-25% that we chose, not NVIDIA: on A100/H100 the sensor averages only ~25% of
each period (Yang et al., SC'24, "Part-time power measurements"), so a polled integral
can miss short power phases by a large margin.

The ``nvml`` module is a constructor argument, so tests pass a fake at this boundary.
The sync before each reading is the monitor's (the run's device), not this module's.
"""

from __future__ import annotations

import statistics
import threading
import time
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from harness.errors import MeterError
from harness.meters._nvml_devices import select_handles, visible_entries
from harness.meters import sharing
from harness.meters.base import METERS, Availability, Backend, Hardware

#: NVIDIA's stated accuracy of board power (nvidia-smi --help-query-gpu, power.draw).
NVIDIA_ABS_W = 5.0
#: Our extra allowance for sampled power (see the module docstring); not NVIDIA's figure.
POLLED_EXTRA_REL = 0.25
#: Used only when the update period cannot be measured, and then said in the formula.
ASSUMED_PERIOD_S = 0.1


def _import_nvml() -> ModuleType:
    import pynvml

    return pynvml


def measure_update_period(read: Callable[[], float], clock: Callable[[], float] = time.perf_counter,
                          max_s: float = 2.0, changes: int = 8) -> float | None:
    """Median seconds between changes of ``read()`` while polling it as fast as possible,
    or None when it changed too rarely to tell (fewer than 4 intervals in ``max_s``)."""
    deadline = clock() + max_s
    last, stamps = read(), []
    while len(stamps) <= changes and clock() < deadline:
        value = read()
        if value != last:
            stamps.append(clock())
            last = value
    intervals = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(intervals) if len(intervals) >= 4 else None


@METERS.register("nvml")
class NvmlBackend(Backend):
    auto_order = 1
    install_hint = "pip install nvidia-ml-py"
    method = "nvml"
    covers_kinds = frozenset({"gpu"})
    uncertainty_w = NVIDIA_ABS_W
    uncertainty_rel = 0.0
    check_method = "nvml-polled"

    def __init__(self, nvml: Any = None, ordinals: Sequence[int] | None = None,
                 uuids: Mapping[int, str | None] | None = None, env: Mapping[str, str] | None = None,
                 poll_interval_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 start_thread: bool = True, cross_check: bool = False,
                 update_period_s: float | None = None) -> None:
        self.nvml = nvml if nvml is not None else _import_nvml()
        self._clock = clock
        try:
            self.nvml.nvmlInit()
            selected = select_handles(self.nvml, ordinals, env, uuids)
        except self.nvml.NVMLError as exc:
            raise MeterError(f"NVML failed to start ({exc}); check the NVIDIA driver or choose meter: estimate") from None
        if not selected:
            raise MeterError("no visible GPU for NVML (CUDA_VISIBLE_DEVICES is empty?); choose meter: estimate")
        self.handles = list(selected.values())
        self._index = {comp: i for i, comp in enumerate(selected)}
        self._methods: dict[str, str] = {}
        for comp, h in selected.items():
            try:
                self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)
                self._methods[comp] = "nvml"
            except self.nvml.NVMLError as exc:
                if getattr(exc, "value", None) != self.nvml.NVML_ERROR_NOT_SUPPORTED:
                    raise MeterError(f"NVML energy read of {comp} failed ({exc}); choose meter: estimate") from None
                self._methods[comp] = "nvml-polled"
        self.cross_check = cross_check and "nvml" in self._methods.values()
        # Power is integrated for polled GPUs, and for counter GPUs too under cross_check.
        polled = [c for c, m in self._methods.items() if m == "nvml-polled" or self.cross_check]
        self.period_measured = update_period_s is not None
        if update_period_s is None:
            update_period_s = self._measure_period()
        self.update_period_s = update_period_s
        self.poll_interval_s = poll_interval_s if poll_interval_s is not None else max(update_period_s / 2, 0.005)
        self.polled = {c: {"t": self._clock(), "p": self._power_w(c), "j": 0.0} for c in polled}
        self._lock = threading.Lock()
        self._error: MeterError | None = None
        self._stop = threading.Event()
        self._thread = None
        if self.polled and start_thread:
            self._thread = threading.Thread(target=self._poll_loop, name="nvml-poll", daemon=True)
            self._thread.start()
        #: Each board's enforced power limit (NVML, mW -> W) plus NVIDIA's stated +-5 W: the
        #: most a window may read; None where the board does not say.
        self._limit_w = {comp: self._read_limit(h) for comp, h in selected.items()}
        methods = set(self._methods.values())
        self.method = "nvml" if methods == {"nvml"} else "nvml-polled" if methods == {"nvml-polled"} else "nvml+nvml-polled"

    def _read_limit(self, handle: Any) -> float | None:
        for name in ("nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerManagementLimit"):
            try:
                return getattr(self.nvml, name)(handle) / 1000.0 + NVIDIA_ABS_W
            except Exception:  # not supported on this board or driver, or a fake without it: no cap
                continue
        return None

    def max_power_w(self, component: str) -> float | None:
        return self._limit_w.get(component)

    def _measure_period(self) -> float:
        """The counter's update period (power's, where there is no counter), measured on
        the first GPU; the fallback is said in the formula, never silent."""
        comp = next(iter(self._methods))
        h = self.handles[self._index[comp]]
        if self._methods[comp] == "nvml":
            read = lambda: self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)  # noqa: E731
        else:
            read = lambda: self.nvml.nvmlDeviceGetPowerUsage(h)  # noqa: E731
        try:
            period = measure_update_period(read, self._clock)
        except self.nvml.NVMLError as exc:
            raise MeterError(f"NVML read of {comp} failed while measuring its update period ({exc})") from None
        self.period_measured = period is not None
        return period if period is not None else ASSUMED_PERIOD_S

    @classmethod
    def create(cls, hw: Hardware, **options: Any) -> "NvmlBackend":
        return cls(hw.nvml, env=hw.env, clock=hw.clock or time.monotonic, **options)

    @classmethod
    def probe(cls, hw: Hardware) -> Availability:
        try:
            nvml = hw.nvml if hw.nvml is not None else _import_nvml()
        except ImportError:
            return Availability(False, "pynvml is not installed (pip install nvidia-ml-py)")
        try:
            nvml.nvmlInit()
            entries = visible_entries(hw.env)
            count = nvml.nvmlDeviceGetCount() if entries is None else len(entries)
        except nvml.NVMLError as exc:
            return Availability(False, f"NVML could not start: {exc} (no NVIDIA GPU or driver)")
        if not count:
            return Availability(False, "NVML sees no visible GPU (CUDA_VISIBLE_DEVICES hides them all)")
        return Availability(True, f"measures the GPUs a run uses, of {count} visible (energy counter or polled power)")

    def method_of(self, component: str) -> str:
        return self._methods[component]

    def uncertainty(self, component: str, energy_j: float, duration_s: float) -> float:
        """+-5 W over the window as a fraction of its energy (+25% for sampled power)."""
        extra = POLLED_EXTRA_REL if self._methods[component] == "nvml-polled" else 0.0
        return super().uncertainty(component, energy_j, duration_s) + extra

    def components(self) -> tuple[str, ...]:
        return tuple(self._methods)

    def _power_w(self, comp: str) -> float:
        try:
            return self.nvml.nvmlDeviceGetPowerUsage(self.handles[self._index[comp]]) / 1000.0
        except self.nvml.NVMLError as exc:
            raise MeterError(f"NVML power read of {comp} failed mid-window ({exc}); the window is discarded") from None

    def sample(self) -> None:
        """One trapezoid step for every GPU whose power is integrated."""
        with self._lock:
            for comp, state in self.polled.items():
                now, p = self._clock(), self._power_w(comp)
                state["j"] += (state["p"] + p) / 2 * (now - state["t"])
                state["t"], state["p"] = now, p

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.sample()
            except MeterError as exc:
                self._error = exc
                return

    def totals(self) -> dict[str, float]:
        if self._error is not None:
            raise self._error
        if self.polled:
            self.sample()  # close the integral at the reading's own instant
        out = {}
        for comp, method in self._methods.items():
            if method == "nvml":
                try:
                    h = self.handles[self._index[comp]]
                    out[comp] = self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0
                except self.nvml.NVMLError as exc:
                    raise MeterError(f"NVML energy read of {comp} failed mid-window ({exc}); "
                                     "the window is discarded") from None
            else:
                out[comp] = self.polled[comp]["j"]
        return out

    def check_totals(self) -> dict[str, float]:
        """Under cross_check: integrated sampled power of the counter GPUs, read with
        ``totals()`` (and only after it), never added to the energy."""
        if not self.cross_check:
            return {}
        return {c: self.polled[c]["j"] for c, m in self._methods.items() if m == "nvml"}

    def formula(self) -> str:
        parts = [f"{c}: {'energy counter' if m == 'nvml' else 'polled power, trapezoid'}"
                 for c, m in self._methods.items()]
        period = (f"update period {self.update_period_s * 1000:.0f} ms measured at start" if self.period_measured
                  else f"update period ASSUMED {self.update_period_s * 1000:.0f} ms (the counter changed too rarely "
                       "to measure)")
        unc = f"+-{NVIDIA_ABS_W:g} W (NVIDIA)" + (f" +{POLLED_EXTRA_REL:.0%} for polled power"
                                                  if "nvml-polled" in self._methods.values() else "")
        check = "; cross-check: polled power integrated over the same windows" if self.cross_check else ""
        return f"{self.method}: NVML " + ", ".join(parts) + f"; {period}; {unc}; device synchronized before each read{check}"

    def others_on_device(self) -> set[int] | None:
        """Compute processes on the selected GPUs that are not this process tree's."""
        listing = getattr(self.nvml, "nvmlDeviceGetComputeRunningProcesses", None)
        if listing is None:
            return None
        try:
            pids = {int(getattr(p, "pid", 0) or 0) for h in self.handles for p in listing(h)}
        except self.nvml.NVMLError:
            return None
        return {p for p in pids if p > 0 and not sharing.ours(p)}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # shutting down a broken NVML must not mask the real error
            pass
