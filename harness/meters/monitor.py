"""The window layer: ``begin_window(key)`` / ``end_window(key)`` over any backends.

A window syncs every device, snapshots every running total, and on close subtracts.
A window of 0 J or less is an error here, so it can never reach a table.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from harness.errors import MeterError
from harness.meters.base import Backend, ComponentEnergy, Measurement


class EnergyMonitor:
    def __init__(self, backends: Sequence[Backend], clock: Callable[[], float] = time.perf_counter) -> None:
        if not backends:
            raise ValueError("an EnergyMonitor needs at least one backend")
        self.backends = tuple(backends)
        self._clock = clock
        self._open: dict[str, tuple[float, list[dict[str, float]]]] = {}

    @property
    def method(self) -> str:
        return "+".join(sorted({b.method for b in self.backends}))

    def formulas(self) -> list[str]:
        return [b.formula() for b in self.backends]

    def min_window_s(self) -> float:
        """Windows shorter than 100 counter updates would carry >1% quantisation error."""
        return max(100.0 * b.update_period_s for b in self.backends)

    def _read(self) -> list[dict[str, float]]:
        for b in self.backends:
            b.sync()
        return [b.totals() for b in self.backends]

    def begin_window(self, key: str) -> None:
        if key in self._open:
            raise RuntimeError(f"energy window {key!r} is already open")
        totals = self._read()
        self._open[key] = (self._clock(), totals)

    def end_window(self, key: str) -> Measurement:
        totals = self._read()
        end = self._clock()
        start, before = self._open.pop(key)
        parts = []
        for backend, b0, b1 in zip(self.backends, before, totals):
            for comp in backend.components():
                parts.append(ComponentEnergy(comp, backend.method, b1[comp] - b0[comp], backend.uncertainty_rel))
        m = Measurement(end - start, tuple(parts))
        bad = [p for p in parts if p.energy_j < 0]
        if bad or m.energy_j <= 0:
            detail = ", ".join(f"{p.component}={p.energy_j:.3g} J" for p in parts)
            raise MeterError(f"energy window {key!r} read {m.energy_j:.3g} J in {m.duration_s:.3g} s ({detail}); "
                             "a window must be positive: lengthen it (measure.min_window_s) or check the meter")
        return m

    @contextmanager
    def window(self, key: str) -> Iterator[list[Measurement]]:
        """``with monitor.window("train") as out: ...`` then ``out[0]`` is the Measurement."""
        out: list[Measurement] = []
        self.begin_window(key)
        try:
            yield out
        except BaseException:
            self._open.pop(key, None)
            raise
        out.append(self.end_window(key))

    def close(self) -> None:
        for b in self.backends:
            b.close()
