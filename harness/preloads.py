"""Once-per-process work (lazy imports, a compiler's worker pool, a backend's first use),
paid right before the first piece of creation work that would otherwise carry it inside
its window, and only by a process that does such work: a run whose variants all come
from the artifact cache trains, exports and compiles nothing, so it preloads nothing
(the exporter's preload alone took ~4.6 s of every unchanged rerun of the digits suite).

The two places that start creation work call in here, outside any window: the
workshop before it makes a variant (training, a technique) and deploy before a runtime
prepares one (an export, a compile). A window therefore holds one variant's work,
whatever its place in the process, as before; what a preload costs is in no window."""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping

from harness.compress import Technique
from harness.device import Device
from harness.runtimes import Runtime
from harness.plan import describe
from harness.train import preload as train_preload

_done: set[Hashable] = set()


def once(key: Hashable, what: str, work: Callable[[], None], log: Callable[[str], None]) -> None:
    """``work()`` the first time ``key`` is asked for in this process (said in one line)."""
    if key not in _done:
        log(f"  preloading {what} (once per process, outside any window)")
        work()
        _done.add(key)


def before_making(name: str | None, technique: Technique | None, params: Mapping[str, Any],
                  log: Callable[[str], None]) -> None:
    """Before a variant is trained or technique ``name`` applied: the first optimizer
    step's imports (train.preload) where it trains (a baseline, or ``Technique.trains``),
    and the technique's own (``Technique.preload``, once per technique and params)."""
    if technique is None or technique.trains(params):
        once("train", "training", train_preload, log)
    if technique is not None and type(technique).preload is not Technique.preload:  # the base's is no work
        once(("technique", name, describe(params)), f"{name} ({describe(params)})", lambda: technique.preload(params), log)


def before_deploying(runtime: Runtime, device: Device, log: Callable[[str], None]) -> None:
    """Before a runtime exports, quantizes or compiles a variant (``Runtime.preload``)."""
    if type(runtime).preload is not Runtime.preload:
        once(("runtime", runtime.name, device.name), runtime.name, lambda: runtime.preload(device), log)
