"""Energy meters: a registry of backends and the choice a suite's ``meter:`` makes.

Adding a meter is one file with a Backend subclass and one registry line below.
``auto`` uses every counter that is present, with GPU, CPU and DRAM as separate
components, and fills only what no counter covers with the estimate, saying so. A
counter that exists but cannot be read stops the run with the fix, unless the suite
(``allow_estimate: true``) or the flag ``--allow-estimate`` accepts the estimate.
"""

from __future__ import annotations

import sys
from typing import Callable

from harness.errors import UserError
from harness.meters.base import Availability, Backend, Hardware, Measurement
from harness.meters.estimate import EstimateBackend
from harness.meters.monitor import EnergyMonitor
from harness.meters.nvml import NvmlBackend
from harness.meters.rapl import RaplBackend
from harness.registry import Registry

METERS: Registry[type[Backend]] = Registry("meter")
METERS.register("estimate")(EstimateBackend)
METERS.register("rapl")(RaplBackend)
METERS.register("nvml")(NvmlBackend)

#: Counters that ``auto`` tries, in order. The estimate is never in this list.
COUNTER_METERS = ("rapl", "nvml")
ESTIMABLE = ("cpu", "dram")


def check_name(name: str, where: str) -> None:
    if name != "auto" and name not in METERS:
        raise UserError(f"unknown meter {name!r} in {where}; use auto or one of: {', '.join(METERS.names())}")


def availability(hw: Hardware = Hardware()) -> dict[str, Availability]:
    return {name: METERS.get(name).probe(hw) for name in METERS.names()}


def build(name: str, allow_estimate: bool = False,
          log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
          hw: Hardware = Hardware()) -> EnergyMonitor:
    """A monitor for ``name``; ``auto`` takes every available counter, estimates the rest."""
    if name != "auto":
        cls = METERS.get(name)
        avail = cls.probe(hw)
        if not avail.available:
            raise UserError(f"meter {name!r} is not available here: {avail.reason}")
        return EnergyMonitor([cls.create(hw)])
    backends: list[Backend] = []
    for counter in COUNTER_METERS:
        avail = METERS.get(counter).probe(hw)
        if avail.available:
            backends.append(METERS.get(counter).create(hw))
        elif avail.blocked:
            if not allow_estimate:
                raise UserError(f"{counter}: {avail.reason}; or accept an estimate with --allow-estimate")
            log(f"joulebench: {counter} present but unreadable ({avail.reason}); estimate allowed, so using it")
    covered = set().union(*(b.covers() for b in backends)) if backends else set()
    missing = tuple(p for p in ESTIMABLE if p not in covered)
    if missing:
        est = EstimateBackend(parts=missing)
        what = "no RAPL or NVML energy counter here" if not backends else f"no counter for {', '.join(missing)}"
        log(f"joulebench: {what}; that energy is an ESTIMATE: {est.formula()}")
        backends.append(est)
    return EnergyMonitor(backends)


__all__ = ["METERS", "Availability", "Backend", "EnergyMonitor", "Hardware", "Measurement", "build", "check_name"]
