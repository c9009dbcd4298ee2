"""Energy meters: a registry of backends and the choice a suite's ``meter:`` makes.

Adding a meter is one file with a Backend subclass and one ``@METERS.register`` line.
``auto`` uses every counter that is present and says plainly when none is, in which
case the estimate is used and every number it produces is labelled ``estimate``.
"""

from __future__ import annotations

import sys
from typing import Callable

from harness.errors import UserError
from harness.meters.base import Availability, Backend, Measurement
from harness.meters.estimate import EstimateBackend
from harness.meters.monitor import EnergyMonitor
from harness.registry import Registry

MeterFactory = Callable[[], list[Backend]]
METERS: Registry[type[Backend]] = Registry("meter")
METERS.register("estimate")(EstimateBackend)

COUNTER_METERS: list[str] = []  # filled by counter backends (rapl, nvml) as they register


def check_name(name: str, where: str) -> None:
    if name != "auto" and name not in METERS:
        raise UserError(f"unknown meter {name!r} in {where}; use auto or one of: {', '.join(METERS.names())}")


def availability() -> dict[str, Availability]:
    return {name: METERS.get(name).probe() for name in METERS.names()}


def build(name: str, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> EnergyMonitor:
    """A monitor for ``name``; ``auto`` takes every available counter, else the estimate."""
    if name != "auto":
        cls = METERS.get(name)
        avail = cls.probe()
        if not avail.available:
            raise UserError(f"meter {name!r} is not available here: {avail.reason}; use meter: auto or estimate")
        return EnergyMonitor([cls()])
    backends: list[Backend] = []
    for counter in COUNTER_METERS:
        cls = METERS.get(counter)
        if cls.probe().available:
            backends.append(cls())
    if not backends:
        est = EstimateBackend()
        log("joulebench: no RAPL or NVML energy counter here; energy is an ESTIMATE: " + est.formula())
        backends.append(est)
    return EnergyMonitor(backends)


__all__ = ["METERS", "Availability", "Backend", "EnergyMonitor", "Measurement", "build", "check_name"]
