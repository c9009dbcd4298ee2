"""The device layer: backends that report running energy totals, per component.

Backends only report monotone running totals in joules (the Zeus design); windows,
subtraction and validation live in ``monitor.py``. Counter wraparound, polling threads
and permissions stay inside each backend, so the runner never sees them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str  # why it is absent, or what it would measure


class Backend(ABC):
    """One source of joules. ``method`` is what the table prints beside each number."""

    method: str = ""
    #: Stated relative uncertainty of the joules (systematic, one side), e.g. 0.5 = +-50%.
    uncertainty_rel: float = 0.0
    #: How often the underlying counter updates, in seconds; windows are stretched to
    #: at least 100x this so the quantisation error stays under 1%.
    update_period_s: float = 0.0

    @abstractmethod
    def components(self) -> tuple[str, ...]:
        """Component names, e.g. ("cpu", "dram") or ("gpu0",)."""

    @abstractmethod
    def totals(self) -> dict[str, float]:
        """Running totals in joules since an arbitrary origin, one per component."""

    def sync(self) -> None:
        """Wait for queued device work (e.g. CUDA kernels) before a reading."""

    @abstractmethod
    def formula(self) -> str:
        """How the joules are obtained, printed under every table."""

    def close(self) -> None:
        """Stop polling threads, release handles."""


@dataclass(frozen=True)
class ComponentEnergy:
    component: str
    method: str
    energy_j: float
    uncertainty_rel: float


@dataclass(frozen=True)
class Measurement:
    """One energy window: its wall duration and the joules of each component."""

    duration_s: float
    components: tuple[ComponentEnergy, ...]

    @property
    def energy_j(self) -> float:
        return sum(c.energy_j for c in self.components)

    @property
    def method(self) -> str:
        return "+".join(sorted({c.method for c in self.components}))

    @property
    def uncertainty_j(self) -> float:
        """Summed stated uncertainty (components' errors assumed to add, the worst case)."""
        return sum(c.energy_j * c.uncertainty_rel for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "energy_j": self.energy_j, "method": self.method,
                "components": [asdict(c) for c in self.components]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Measurement":
        return cls(raw["duration_s"], tuple(ComponentEnergy(**c) for c in raw["components"]))
