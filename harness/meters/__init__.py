"""Energy meters: a registry of backends and the choice a suite's ``meter:`` makes.

Adding a meter is one file in this package with a Backend subclass registered by name
(``@METERS.register("name")``); what the rest needs of it is an attribute of its class
(``auto_order``: whether and when ``auto`` tries it; ``install_hint``; ``covers_kinds``).
``auto`` uses every counter that is present, with GPU, CPU and DRAM as separate
components, and fills only what no counter covers with the estimate, saying so. A
counter that exists but cannot be read stops the run with the fix, unless the suite
(``allow_estimate: true``) or the flag ``--allow-estimate`` accepts the estimate.

The meters follow the run's device: a GPU run meters exactly the GPU it uses (and
stops if nothing can measure it: the estimate covers CPU and DRAM only); a CPU run on
a GPU machine leaves the GPUs out, saying so, unless ``meter.gpu_idle: include``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from harness.config import MeterConfig
from harness.errors import UserError
from harness.meters.base import METERS, Availability, Backend, Hardware, Measurement
from harness.meters.monitor import EnergyMonitor
from harness.registry import discover

discover(__name__, __path__)  # each backend file registers itself as it loads
from harness.meters.estimate import EstimateBackend  # noqa: E402  (fills what no counter covers)

ESTIMABLE = ("cpu", "dram")


def counters() -> list[str]:
    """The counters ``auto`` tries, in their declared order (``Backend.auto_order``)."""
    return sorted((n for n in METERS.names() if METERS.get(n).auto_order is not None),
                  key=lambda n: (METERS.get(n).auto_order, n))


def _gpu_meters() -> str:
    found = [n for n in METERS.names() if "gpu" in METERS.get(n).covers_kinds]
    hints = [METERS.get(n).install_hint for n in found if METERS.get(n).install_hint]
    return " or ".join(found) + (f" ({'; '.join(hints)})" if hints else "")


def check_name(name: str, where: str) -> None:
    if name != "auto" and name not in METERS:
        raise UserError(f"unknown meter {name!r} in {where}; use auto or one of: {', '.join(METERS.names())}")


def availability(hw: Hardware = Hardware()) -> dict[str, Availability]:
    return {name: METERS.get(name).probe(hw) for name in METERS.names()}


def build(cfg: MeterConfig | str = "auto", allow_estimate: bool = False,
          log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
          hw: Hardware = Hardware(), device: Any = None) -> EnergyMonitor:
    """A monitor for the meter ``cfg`` names, following ``device`` (a harness.device.Device;
    None = the CPU). ``auto`` takes every available counter and estimates the rest."""
    cfg = MeterConfig(name=cfg) if isinstance(cfg, str) else cfg
    on_gpu = device is not None and device.is_cuda
    sync = device.sync if device is not None else (lambda: None)
    if on_gpu:
        gpu_options: dict[str, Any] | None = {"ordinals": [device.index], "uuids": {device.index: device.uuid},
                                              "cross_check": cfg.cross_check}
    elif cfg.gpu_idle == "include":
        gpu_options = {"ordinals": None, "cross_check": cfg.cross_check}  # every visible GPU: the whole box
    else:
        gpu_options = None
    where = device.name if device is not None else "cpu"

    def sees_gpus(name: str) -> bool:
        return "gpu" in METERS.get(name).covers_kinds

    def create(name: str) -> Backend:
        return METERS.get(name).create(hw, **(gpu_options or {})) if sees_gpus(name) else METERS.get(name).create(hw)

    if cfg.name != "auto":
        cls = METERS.get(cfg.name)
        avail = cls.probe(hw)
        if not avail.available:
            raise UserError(f"meter {cfg.name!r} is not available here: {avail.reason}")
        if sees_gpus(cfg.name) and gpu_options is None:
            raise UserError(f"meter {cfg.name} measures GPUs, but this run uses the CPU; pass --device cuda, or set "
                            "meter.gpu_idle: include to add the idle GPUs' draw (whole-box view)")
        if on_gpu and not sees_gpus(cfg.name):
            raise UserError(f"meter {cfg.name!r} cannot see {where}, where this run's work happens; "
                            f"use meter: auto or {_gpu_meters()}, or --device cpu")
        return EnergyMonitor([create(cfg.name)], sync=sync)
    backends: list[Backend] = []
    for counter in counters():
        avail = METERS.get(counter).probe(hw)
        if sees_gpus(counter) and gpu_options is None:
            if avail.available:
                log(f"joulebench: {counter} sees GPU(s), but this run uses the CPU: their idle draw is left out of "
                    "the energy (meter.gpu_idle: include adds it)")
            continue
        if avail.available:
            backends.append(create(counter))
        elif avail.blocked:
            if not allow_estimate:
                raise UserError(f"{counter}: {avail.reason}; or accept an estimate with --allow-estimate")
            log(f"joulebench: {counter} present but unreadable ({avail.reason}); estimate allowed, so using it")
        elif sees_gpus(counter) and on_gpu:
            hint = METERS.get(counter).install_hint
            raise UserError(f"this run uses {where} but {counter} cannot measure it ({avail.reason}); the GPU's "
                            f"energy cannot be estimated, so {hint + ' or ' if hint else 'fix it or '}run with "
                            "--device cpu")
    covered = set().union(*(b.covers() for b in backends)) if backends else set()
    missing = tuple(p for p in ESTIMABLE if p not in covered)
    if missing:
        est = EstimateBackend(parts=missing)
        what = "no RAPL or NVML energy counter here" if not backends else f"no counter for {', '.join(missing)}"
        log(f"joulebench: {what}; that energy is an ESTIMATE: {est.formula()}")
        backends.append(est)
    return EnergyMonitor(backends, sync=sync)


__all__ = ["METERS", "Availability", "Backend", "EnergyMonitor", "Hardware", "Measurement", "build", "check_name"]
