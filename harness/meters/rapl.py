"""RAPL through Linux powercap: CPU package and DRAM energy counters, per socket.

Layout read (``/sys/class/powercap``): top-level zones ``intel-rapl:N`` are packages
(``name`` = ``package-N``) or ``psys``; their subzones ``intel-rapl:N:M`` are ``core``,
``uncore`` and ``dram``. AMD CPUs expose the same ``intel-rapl`` tree since Linux 5.8.

What is summed, and why nothing is counted twice:
- every ``package-*`` zone (one per socket), and every ``dram`` zone (its own domain,
  outside the package);
- never ``core``/``uncore`` (inside the package) nor ``psys`` (contains the package),
  nor the ``intel-rapl-mmio`` duplicates of the package counters.

``energy_uj`` is a counter in microjoules that wraps at ``max_energy_range_uj``. Each
reading accumulates the delta since the last one, adding the range once when the value
went down. A background thread reads every ``poll_interval_s`` (a quarter of the
fastest plausible wrap period) so that a window longer than a wrap period still sees
every wrap; the runner never deals with wraps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.errors import MeterError
from harness.meters.base import METERS, POWERCAP_ROOT, Availability, Backend, Hardware, read_text

#: The highest package power we plan for when choosing the poll interval, in W.
MAX_PLAUSIBLE_POWER_W = 500.0
FIX = ("make the counters readable (sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
       "/sys/class/powercap/intel-rapl:*/*/energy_uj) or run as root, or choose meter: estimate")


Reader = Callable[[Path], str]

@dataclass
class Zone:
    component: str  # "cpu:0", "dram:0"
    energy_file: Path
    max_range_uj: int
    #: The zone's highest power limit (short- or long-term constraint), in W: what it can
    #: draw at most; None where the zone states none.
    limit_w: float | None = None


def discover(root: Path = POWERCAP_ROOT, read: Reader = read_text) -> list[Zone]:
    """Package and DRAM zones under ``root``; raises PermissionError naming the file."""
    zones: list[Zone] = []
    for top in sorted(root.glob("intel-rapl:*")):
        if top.name.count(":") != 1:
            continue  # subzones are visited through their package
        name = read(top / "name").strip()
        if not name.startswith("package"):
            continue  # psys contains the packages; counting it too would double-count
        socket = name.split("-", 1)[1] if "-" in name else top.name.split(":")[1]
        zones.append(_zone(top, f"cpu:{socket}", read))
        for sub in sorted(top.glob(f"{top.name}:*")):
            if read(sub / "name").strip() == "dram":
                zones.append(_zone(sub, f"dram:{socket}", read))
    return zones


def _limit_w(path: Path, read: Reader) -> float | None:
    """The highest of a zone's power constraints (``constraint_N_power_limit_uw`` and
    ``constraint_N_max_power_uw``), in W; None where it states none."""
    found = []
    for f in sorted(path.glob("constraint_*_power_limit_uw")) + sorted(path.glob("constraint_*_max_power_uw")):
        try:
            value = int(read(f)) / 1e6
        except (OSError, ValueError):
            continue
        if value > 0:
            found.append(value)
    return max(found) if found else None


def _zone(path: Path, component: str, read: Reader) -> Zone:
    energy = path / "energy_uj"
    read(energy)  # probe readability now: root-only on most kernels since 2020
    return Zone(component, energy, int(read(path / "max_energy_range_uj")), _limit_w(path, read))


@METERS.register("rapl")
class RaplBackend(Backend):
    auto_order = 0
    method = "rapl"
    covers_kinds = frozenset({"cpu", "dram"})
    uncertainty_rel = 0.05  # RAPL's model-based estimates track wall power within a few %
    update_period_s = 0.001  # the counters update about every millisecond

    def __init__(self, root: Path = POWERCAP_ROOT, poll_interval_s: float | None = None,
                 read: Reader = read_text) -> None:
        self._read = read
        try:
            self.zones = discover(root, read)
        except PermissionError as exc:
            raise MeterError(f"cannot read {exc.filename} (permission denied); {FIX}") from None
        if not self.zones:
            raise MeterError(f"no RAPL package zone under {root}; choose meter: estimate")
        self._lock = threading.Lock()
        self._last = {z.component: self._raw(z) for z in self.zones}
        self._total = {z.component: 0.0 for z in self.zones}
        if poll_interval_s is None:
            fastest_wrap_s = min(z.max_range_uj for z in self.zones) / 1e6 / MAX_PLAUSIBLE_POWER_W
            poll_interval_s = fastest_wrap_s / 4
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if poll_interval_s > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="rapl-poll", daemon=True)
            self._thread.start()

    @classmethod
    def create(cls, hw: Hardware) -> "RaplBackend":
        return cls(hw.powercap_root, read=hw.read)

    @classmethod
    def probe(cls, hw: Hardware) -> Availability:
        root, read = hw.powercap_root, hw.read
        if not root.exists() or not any(root.glob("intel-rapl:*")):
            return Availability(False, f"no {root}/intel-rapl:* zones (no RAPL on this CPU, or a VM that hides it)")
        try:
            zones = discover(root, read)
        except PermissionError as exc:
            return Availability(False, f"cannot read {exc.filename} (permission denied); {FIX}", blocked=True)
        if not zones:
            return Availability(False, f"no package zone under {root}")
        return Availability(True, "measures " + ", ".join(z.component for z in zones))

    def _raw(self, zone: Zone) -> int:
        try:
            return int(self._read(zone.energy_file))
        except PermissionError:
            raise MeterError(f"cannot read {zone.energy_file} (permission denied); {FIX}") from None
        except (OSError, ValueError) as exc:
            raise MeterError(f"cannot read {zone.energy_file} ({exc}); {FIX}") from None

    def poll(self) -> None:
        """Fold the counters' progress since the last reading into the running totals."""
        with self._lock:
            for z in self.zones:
                now = self._raw(z)
                delta = now - self._last[z.component]
                if delta < 0:  # the counter wrapped (once: polling keeps it to at most one)
                    delta += z.max_range_uj
                self._total[z.component] += delta / 1e6
                self._last[z.component] = now

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.poll()
            except MeterError:
                return  # the next totals() call reports the same error to the caller

    def max_power_w(self, component: str) -> float | None:
        """The zone's own power limit (its highest constraint), where the kernel states one."""
        return next((z.limit_w for z in self.zones if z.component == component), None)

    def components(self) -> tuple[str, ...]:
        return tuple(z.component for z in self.zones)

    def totals(self) -> dict[str, float]:
        self.poll()
        with self._lock:
            return dict(self._total)

    def formula(self) -> str:
        return ("rapl: powercap energy_uj counters of " + ", ".join(self.components())
                + " (package + dram per socket; core/uncore/psys not added; wraps handled)")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
