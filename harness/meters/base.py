"""The device layer: backends that report running energy totals, per component.

Backends only report monotone running totals in joules (the Zeus design); windows,
subtraction and validation live in ``monitor.py``. Counter wraparound, polling threads
and permissions stay inside each backend, so the runner never sees them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from harness.registry import Registry, subclass_of

POWERCAP_ROOT = Path("/sys/class/powercap")


def read_text(path: Path) -> str:
    """The one place sysfs is read; tests pass another reader to play permission denied
    (they run as root, which no chmod can lock out)."""
    return path.read_text()


@dataclass(frozen=True)
class Hardware:
    """Every hardware boundary in one value, so tests point it at a fake powercap tree or a
    fake ``pynvml`` module without patching anything deeper."""

    powercap_root: Path = POWERCAP_ROOT
    read: Callable[[Path], str] = read_text
    nvml: Any = None  # the pynvml module; None imports the real one
    env: Mapping[str, str] | None = None  # None = os.environ (for CUDA_VISIBLE_DEVICES)
    clock: Callable[[], float] | None = None  # None = time.monotonic (NVML's period probe, polling)


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str  # why it is absent, or what it would measure
    #: The hardware is there but cannot be read (e.g. root-only RAPL files): the user can
    #: fix that, so ``auto`` stops with the fix instead of quietly estimating.
    blocked: bool = False


class Backend(ABC):
    """One source of joules. ``method`` is what the table prints beside each number."""

    method: str = ""
    #: What this kind of backend can measure at all: "cpu", "dram", "gpu".
    covers_kinds: frozenset[str] = frozenset()
    #: Stated relative uncertainty of the joules (systematic, one side), e.g. 0.5 = +-50%.
    uncertainty_rel: float = 0.0
    #: Stated absolute uncertainty of the power, in W (NVML: +-5 W); it becomes a relative
    #: figure at each window's measured mean power.
    uncertainty_w: float = 0.0
    #: How often the underlying counter updates, in seconds; windows are stretched to
    #: at least 100x this, so missing up to one update's energy stays under 1%.
    update_period_s: float = 0.0
    #: The method of ``check_totals`` (e.g. "nvml-polled"), where there is one.
    check_method: str = ""
    #: A counter that ``meter: auto`` tries, in this order (lower first); None: auto does
    #: not try it (the estimate, which fills only what no counter covers).
    auto_order: int | None = None
    #: How to get the library this meter reads, for the messages that need it.
    install_hint: str = ""

    def resolution_s(self) -> float:
        """The smallest time step the totals resolve, in seconds (the counter's update
        period; the estimate: one clock tick of a child's CPU time)."""
        return self.update_period_s

    def max_power_w(self, component: str) -> float | None:
        """The most ``component`` can draw, in W, where it is known (None: unknown): each
        component on its own (a CPU reading is never excused by the memory's headroom).
        A window reading more measured something else (a coarse edge)."""
        return None

    @classmethod
    @abstractmethod
    def probe(cls, hw: Hardware) -> Availability:
        """Whether this backend can run here, and if not, why (in words a user can act on)."""

    @classmethod
    def create(cls, hw: Hardware, **options: Any) -> "Backend":
        return cls()

    @abstractmethod
    def components(self) -> tuple[str, ...]:
        """Component names, e.g. ("cpu", "dram") or ("gpu0",)."""

    def covers(self) -> set[str]:
        """Which of "cpu", "dram", "gpu" this backend accounts for (auto fills the rest)."""
        return {c.split(":")[0].rstrip("0123456789") for c in self.components()}

    def method_of(self, component: str) -> str:
        return self.method

    def uncertainty(self, component: str, energy_j: float, duration_s: float) -> float:
        """Relative uncertainty of one window's joules of ``component``."""
        absolute = self.uncertainty_w * duration_s / energy_j if energy_j > 0 and self.uncertainty_w else 0.0
        return self.uncertainty_rel + absolute

    @abstractmethod
    def totals(self) -> dict[str, float]:
        """Running totals in joules since an arbitrary origin, one per component."""

    def check_totals(self) -> dict[str, float]:
        """A second reading of the same components by another path, for cross-checks
        only (never added to the energy); empty when there is none."""
        return {}

    @abstractmethod
    def formula(self) -> str:
        """How the joules are obtained, printed under every table."""

    def others_on_device(self) -> set[int] | None:
        """The processes outside this process tree using this backend's devices (a GPU's
        compute processes: meters/sharing.py), or None where the backend cannot tell."""
        return None

    def close(self) -> None:
        """Stop polling threads, release handles."""


@dataclass(frozen=True)
class ComponentEnergy:
    component: str
    method: str
    energy_j: float  # gross: everything the counter saw
    uncertainty_rel: float
    idle_w: float = 0.0  # idle power of this component, measured before the suite


@dataclass(frozen=True)
class Measurement:
    """One energy window: its wall duration and the joules of each component.

    Gross J is what the meter saw; net J = gross - P_idle x duration is what the work
    added over an idle machine. ``read_s`` is what the closing reading itself cost.
    """

    duration_s: float
    components: tuple[ComponentEnergy, ...]
    read_s: float = 0.0
    host: str = ""  # the machine it was measured on: cached creation energy keeps it
    #: The same window read by a second path (NVML sampled power beside the counter);
    #: reported as agreement, never added to the energy.
    cross_check: tuple[ComponentEnergy, ...] = ()
    #: Python modules first imported inside the window (one-time work of the process
    #: that belongs to no variant: preloading keeps it out; a test checks it stays 0).
    imports: int = 0
    #: Creation work shorter than the meter resolves: its window was padded (idle) to the
    #: meter's minimum and ``work_s`` is how long the work itself took. ``below_resolution``
    #: (status ``bounded``): the reading is only an upper bound of the work's energy: a
    #: padded reading that cannot be told from idle, or any window whose reading exceeds
    #: what a component can draw over its seconds (a counter's edges in a short window).
    work_s: float | None = None
    below_resolution: bool = False
    #: Other processes' CPU seconds over the window as a share of the machine's capacity
    #: (meters/sharing.py; None where unknown), and whether that makes the window
    #: ``shared``: a RAPL or NVML reading of it includes their work.
    others_cpu_share: float | None = None
    shared: bool = False
    #: processes outside this tree seen on the window's GPUs at its edges (None: no GPU meter)
    others_on_gpu: int | None = None
    #: An inference window that ended while another thread of this process still worked
    #: after measure.settle's whole wait (its joules hold that thread's work); None: a
    #: creation window, which is not settled.
    unsettled: bool | None = None

    @property
    def status(self) -> str:
        """``resolved`` (a value) or ``bounded`` (an upper bound): decided once, by the monitor."""
        return "bounded" if self.below_resolution else "resolved"

    @property
    def energy_j(self) -> float:
        return sum(c.energy_j for c in self.components)

    @property
    def idle_w(self) -> float:
        return sum(c.idle_w for c in self.components)

    @property
    def net_energy_j(self) -> float:
        return self.energy_j - self.idle_w * self.duration_s

    @property
    def method(self) -> str:
        return "+".join(sorted({c.method for c in self.components}))

    @property
    def uncertainty_j(self) -> float:
        """Summed stated uncertainty (components' errors assumed to add, the worst case)."""
        return sum(c.energy_j * c.uncertainty_rel for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        out = {"duration_s": self.duration_s, "energy_j": self.energy_j, "net_energy_j": self.net_energy_j,
               "idle_w": self.idle_w, "method": self.method, "read_s": self.read_s, "host": self.host,
               "components": [asdict(c) for c in self.components], "imports": self.imports}
        if self.work_s is not None:
            out["work_s"] = self.work_s
        if self.work_s is not None or self.below_resolution:
            out["below_resolution"] = self.below_resolution
        if self.cross_check:
            out["cross_check"] = [asdict(c) for c in self.cross_check]
        if self.others_cpu_share is not None or self.others_on_gpu is not None:
            out.update(others_cpu_share=self.others_cpu_share, shared=self.shared)
        if self.others_on_gpu is not None:
            out["others_on_gpu"] = self.others_on_gpu
        if self.unsettled is not None:
            out["unsettled"] = self.unsettled
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Measurement":
        return cls(raw["duration_s"], tuple(ComponentEnergy(**c) for c in raw["components"]), raw.get("read_s", 0.0),
                   raw.get("host", ""), tuple(ComponentEnergy(**c) for c in raw.get("cross_check", [])),
                   raw.get("imports") or 0, raw.get("work_s"), bool(raw.get("below_resolution", False)),
                   raw.get("others_cpu_share"), bool(raw.get("shared", False)), raw.get("others_on_gpu"),
                   raw.get("unsettled"))


#: Every meter by name: each backend file registers its class (``@METERS.register``);
#: ``harness.meters`` finds the files.
METERS: Registry[type[Backend]] = Registry("meter", subclass_of(Backend))
