"""The window layer: ``begin_window(key)`` / ``end_window(key)`` over any backends.

A window syncs every device, snapshots every running total, and on close subtracts.
A window of 0 J or less (gross, or net of idle power) is an error here, so it can never
reach a table. The idle baseline is measured with the same backends, so gross and net
come from one meter.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from harness import environment
from harness.errors import MeterError
from harness.meters.base import Backend, ComponentEnergy, Measurement


class EnergyMonitor:
    def __init__(self, backends: Sequence[Backend], clock: Callable[[], float] = time.perf_counter,
                 host: str | None = None) -> None:
        if not backends:
            raise ValueError("an EnergyMonitor needs at least one backend")
        self.backends = tuple(backends)
        self.host = host if host is not None else environment.host()
        self._clock = clock
        self._open: dict[str, tuple[float, list[dict[str, float]]]] = {}
        self.idle_w: dict[tuple[int, str], float] = {}  # (backend index, component) -> W

    @property
    def method(self) -> str:
        return "+".join(sorted({b.method_of(c) for b in self.backends for c in b.components()}))

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
        t_read = time.perf_counter()
        try:
            totals = self._read()
        except BaseException:
            self._open.pop(key, None)
            raise
        end = self._clock()
        read_s = time.perf_counter() - t_read
        start, before = self._open.pop(key)
        parts = []
        for i, (backend, b0, b1) in enumerate(zip(self.backends, before, totals)):
            for comp in backend.components():
                parts.append(ComponentEnergy(comp, backend.method_of(comp), b1[comp] - b0[comp],
                                             backend.uncertainty_of(comp), self.idle_w.get((i, comp), 0.0)))
        m = Measurement(end - start, tuple(parts), read_s, self.host)
        bad = [p for p in parts if p.energy_j < 0]
        if bad or m.energy_j <= 0:
            detail = ", ".join(f"{p.component}={p.energy_j:.3g} J" for p in parts)
            raise MeterError(f"energy window {key!r} read {m.energy_j:.3g} J in {m.duration_s:.3g} s ({detail}); "
                             "a window must be positive: lengthen it (measure.min_window_s) or check the meter")
        if self.idle_w and m.net_energy_j <= 0:
            raise MeterError(f"energy window {key!r} is {m.energy_j:.3g} J gross but {m.net_energy_j:.3g} J net of "
                             f"idle ({m.idle_w:.3g} W); the work is lost in idle noise: lengthen measure.min_window_s")
        return m

    def measure_idle(self, seconds: float, sleep: Callable[[float], None] = time.sleep) -> dict[str, float]:
        """Measure idle power per component over ``seconds`` of sleep; later windows
        report net J against it. Returns {component: W}."""
        self.idle_w = {}
        self.begin_window("idle")
        sleep(seconds)
        m = self.end_window("idle")
        index = {(b.method_of(c), c): i for i, b in enumerate(self.backends) for c in b.components()}
        self.idle_w = {(index[(p.method, p.component)], p.component): p.energy_j / m.duration_s
                       for p in m.components}
        return {p.component: p.energy_j / m.duration_s for p in m.components}

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
