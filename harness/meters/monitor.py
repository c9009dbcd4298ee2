"""The window layer: ``begin_window(key)`` / ``end_window(key)`` over any backends.

A window syncs the run's device (``sync``: the GPU it uses, and only that one; nothing
on a CPU run), snapshots every running total, and on close subtracts.
A window of 0 J or less (gross, or net of idle power) is an error here, so it can never
reach a table. Processes of the run's own that work between windows (``hold``) are
stopped while any window, or a ``quiet`` block, is open (meters/held.py). The idle
baseline is measured with the same backends, so gross and net come from one meter.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from harness import environment
from harness.errors import MeterError
from harness.meters import sharing
from harness.meters.held import Held
from harness.meters.base import Backend, ComponentEnergy, Measurement


#: Modules that are a window's own product, not a one-time import: the kernels a
#: compile generates and loads (torch._inductor.runtime.compile_tasks.<hash>).
GENERATED = ("torch._inductor.runtime.compile_tasks.",)


def imported(before: frozenset[str]) -> int:
    """Modules in sys.modules now that were not in ``before``, generated code aside."""
    return sum(1 for name in sys.modules.keys() - before if not name.startswith(GENERATED))


class EnergyMonitor:
    #: A window lasts at least this many counter updates: missing up to one update's
    #: energy at the edges then costs at most 1%.
    WINDOW_PERIODS = 100

    def __init__(self, backends: Sequence[Backend], clock: Callable[[], float] = time.perf_counter,
                 host: str | None = None, sync: Callable[[], None] = lambda: None) -> None:
        if not backends:
            raise ValueError("an EnergyMonitor needs at least one backend")
        self.backends = tuple(backends)
        self.sync = sync
        self.host = host if host is not None else environment.host()
        self._clock = clock
        #: key -> (start, totals, cross-check totals, names in sys.modules)
        self._open: dict[str, tuple[float, list[dict[str, float]], list[dict[str, float]], frozenset[str]]] = {}
        self.idle_w: dict[tuple[int, str], float] = {}  # (backend index, component) -> W
        self.held = Held()  # the run's own processes stopped while any window is open (meters/held.py)
        self._quiet = 0  # open quiet() blocks

    def hold(self, pid: int) -> None:
        """Keep process ``pid`` (the run's own, working between windows) out of every
        window from now on: stopped before a window's first reading, continued after its
        last (meters/held.py)."""
        self.held.add(pid)

    def _forget(self, key: str) -> None:
        """``key`` closed or abandoned; the held processes continue once no window is open."""
        self._open.pop(key, None)
        self._release()

    def _release(self) -> None:
        """The held processes continue once neither a window nor a quiet block is open."""
        if not self._open and not self._quiet:
            self.held.resume()

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """The held processes stopped outside a window too: for a timing that sizes the
        windows (measure.prepare's calibration), which they would otherwise slow."""
        self._quiet += 1
        self.held.stop()
        try:
            yield
        finally:
            self._quiet -= 1
            self._release()

    @property
    def method(self) -> str:
        return "+".join(sorted({b.method_of(c) for b in self.backends for c in b.components()}))

    def formulas(self) -> list[str]:
        return [b.formula() for b in self.backends]

    #: A creation window lasts at least this many of the meter's resolution steps: short
    #: work (a quantization, a bf16 cast: milliseconds) is padded with idle time to it.
    CREATION_STEPS = 10

    def creation_min_s(self) -> float:
        """The shortest creation window: CREATION_STEPS x the coarsest backend's resolution
        (the estimate: 0.1 s; NVML at 100 ms updates: 1 s)."""
        return max(self.CREATION_STEPS * b.resolution_s() for b in self.backends)

    def min_window_s(self) -> float:
        """Windows shorter than 100 counter updates would carry >1% quantisation error."""
        return max(self.WINDOW_PERIODS * b.update_period_s for b in self.backends)

    def _read(self) -> list[dict[str, float]]:
        self.sync()  # queued kernels land in the window that launched them
        return [b.totals() for b in self.backends]

    def _read_checks(self) -> list[dict[str, float]]:
        return [b.check_totals() for b in self.backends]

    def begin_window(self, key: str) -> None:
        if key in self._open:
            raise RuntimeError(f"energy window {key!r} is already open")
        self.held.stop()  # before anything is read: nothing of theirs runs inside
        try:
            modules = frozenset(sys.modules)  # before the first reading: its cost stays outside
            others = (sharing.snapshot(), self._on_gpu())
            totals = self._read()
            self._open[key] = (self._clock(), totals, self._read_checks(), modules, others)
        except BaseException:
            self._forget(key)
            raise

    def end_window(self, key: str, checked: bool = True) -> Measurement:
        """Close ``key``. ``checked=False`` admits a 0 J reading (never a negative one):
        only for short windows nested in a checked one (a training curve's validation
        passes), whose joules are subtracted from it."""
        t_read = time.perf_counter()
        try:
            totals = self._read()
            checks = self._read_checks()
        except BaseException:
            self._forget(key)
            raise
        end = self._clock()
        read_s = time.perf_counter() - t_read
        start, before, checks_before, modules, others_before = self._open[key]
        others_after = sharing.snapshot()
        self._forget(key)  # after the last reading
        m = self._measurement(end - start, before, totals, checks_before, checks, read_s, imported(modules))
        # who else used the machine meanwhile (meters/sharing.py): its CPUs, its GPUs
        cpu = sharing.others(others_before[0], others_after)
        gpu_before, gpu_after = others_before[1], self._on_gpu()
        gpu = None if gpu_before is None and gpu_after is None else len((gpu_before or set()) | (gpu_after or set()))
        if cpu is not None or gpu is not None:
            m = dataclasses.replace(m, others_cpu_share=cpu[0] if cpu else None,
                                    shared=bool(cpu and cpu[1]) or bool(gpu), others_on_gpu=gpu)
        if not checked:
            if any(p.energy_j < 0 for p in m.components):
                raise MeterError(f"energy window {key!r} read a negative energy; check the meter")
            return m
        return self._checked(key, m)

    def _on_gpu(self) -> set[int] | None:
        """Other processes on the meters' GPUs now (None: no backend can tell)."""
        seen = [b.others_on_device() for b in self.backends]
        return None if all(x is None for x in seen) else set().union(*(x for x in seen if x is not None))

    def lap(self, key: str) -> Measurement:
        """The open window ``key`` so far, left open: a training curve's running reading.
        Not checked for a positive total (a slow counter may not have ticked yet)."""
        totals = self._read()
        start, before, _, modules, _ = self._open[key]
        return self._measurement(self._clock() - start, before, totals, [], [], 0.0, imported(modules))

    def minus(self, key: str, total: Measurement, inner: list[Measurement]) -> Measurement:
        """``total`` less windows nested inside it (the validation passes inside a training
        window): the training's own joules and seconds, each backend's uncertainty
        recomputed for them. Checked like any window."""
        duration = total.duration_s - sum(m.duration_s for m in inner)
        spent = {(c.method, c.component): 0.0 for c in total.components}
        for m in inner:
            for c in m.components:
                spent[(c.method, c.component)] += c.energy_j
        parts, k = [], 0
        for backend in self.backends:
            for comp in backend.components():
                c = total.components[k]
                k += 1
                joules = c.energy_j - spent[(c.method, c.component)]
                parts.append(ComponentEnergy(comp, c.method, joules, backend.uncertainty(comp, joules, duration),
                                             c.idle_w))
        return self._checked(key, Measurement(duration, tuple(parts), total.read_s, total.host, imports=total.imports,
                                              others_cpu_share=total.others_cpu_share, shared=total.shared,
                                              others_on_gpu=total.others_on_gpu))

    def _measurement(self, duration: float, before: list[dict[str, float]], totals: list[dict[str, float]],
                     checks_before: list[dict[str, float]], checks: list[dict[str, float]],
                     read_s: float, imports: int = 0) -> Measurement:
        parts, cross = [], []
        for i, (backend, b0, b1) in enumerate(zip(self.backends, before, totals)):
            for comp in backend.components():
                joules = b1[comp] - b0[comp]
                parts.append(ComponentEnergy(comp, backend.method_of(comp), joules,
                                             backend.uncertainty(comp, joules, duration),
                                             self.idle_w.get((i, comp), 0.0)))
        for backend, c0, c1 in zip(self.backends, checks_before, checks):
            for comp in c1:
                joules = c1[comp] - c0[comp]
                cross.append(ComponentEnergy(comp, backend.check_method, joules, 0.0))
        return Measurement(duration, tuple(parts), read_s, self.host, tuple(cross), imports)

    def _checked(self, key: str, m: Measurement) -> Measurement:
        """Positive gross and net, or an error; a reading above what a component can draw
        over the window's seconds is kept as what it is, an upper bound (``bounded``)."""
        parts = m.components
        bad = [p for p in parts if p.energy_j < 0]
        if bad or m.energy_j <= 0:
            detail = ", ".join(f"{p.component}={p.energy_j:.3g} J" for p in parts)
            raise MeterError(f"energy window {key!r} read {m.energy_j:.3g} J in {m.duration_s:.3g} s ({detail}); "
                             "a window must be positive: lengthen it (measure.min_window_s) or check the meter")
        if any(p.idle_w for p in parts) and m.net_energy_j <= 0:
            raise MeterError(f"energy window {key!r} is {m.energy_j:.3g} J gross but {m.net_energy_j:.3g} J net of "
                             f"idle ({m.idle_w:.3g} W); the work is lost in idle noise: lengthen measure.min_window_s")
        if self.over_power(m):
            return dataclasses.replace(m, below_resolution=True)
        return m

    @contextmanager
    def creation_window(self, key: str, sleep: Callable[[float], None] = time.sleep,
                        spent: list[Measurement] | None = None) -> Iterator[list[Measurement]]:
        """A window over creation work (an export, a quantization, teacher logits): work
        shorter than ``creation_min_s`` is padded with idle time to it, so the meter can
        resolve the window and no millisecond edge reads a power the machine cannot draw.
        A padded window is reported for the work alone (the padding's idle energy taken
        out, over the work's own seconds) where that reading is resolved: positive, above
        idle and within the power each backend can draw. Otherwise it is never an error:
        the padded reading is kept, flagged ``below_resolution``, as an upper bound of the
        work's energy. An unpadded window is checked as usual."""
        out: list[Measurement] = []
        self.begin_window(key)
        start = self._clock()
        try:
            yield out
        except BaseException:
            self._forget(key)
            raise
        work_s = self._clock() - start
        floor = self.creation_min_s()
        if work_s >= floor:
            out.append(self.end_window(key))
            if spent is not None:
                spent.append(out[0])
            return
        sleep(floor - work_s)
        padded = self.end_window(key, checked=False)
        if spent is not None:  # what the window took, padding included (a nested window's share of its host)
            spent.append(padded)
        # the work's own reading: the padding's idle energy taken out, over the work's time
        pad_s = padded.duration_s - work_s
        work = dataclasses.replace(padded, duration_s=work_s, work_s=work_s, components=tuple(
            dataclasses.replace(c, energy_j=c.energy_j - c.idle_w * pad_s) for c in padded.components))
        if self._resolved(work):
            out.append(work)
        else:  # the padded reading: an upper bound of the work's energy, at a power the machine can draw
            # (a padded window of 0 J, ten resolution steps long, is a broken meter: an error)
            gross = dataclasses.replace(padded, components=tuple(dataclasses.replace(c, idle_w=0.0)
                                                                  for c in padded.components))
            self._checked(key, gross)
            out.append(dataclasses.replace(padded, work_s=work_s, below_resolution=True))

    def _resolved(self, m: Measurement) -> bool:
        """Positive, above idle, and within what each component can draw on its own."""
        if m.energy_j <= 0 or any(c.energy_j <= 0 for c in m.components) or (m.idle_w > 0 and m.net_energy_j <= 0):
            return False
        return not self.over_power(m)

    def over_power(self, m: Measurement) -> list[str]:
        """The components of ``m`` that read more power than they can draw (each against
        its own cap: CPU cores x W per CPU, the memory's own, a GPU's power limit)."""
        caps = {(b.method_of(c), c): b.max_power_w(c) for b in self.backends for c in b.components()}
        return [c.component for c in m.components
                if (cap := caps.get((c.method, c.component))) is not None and c.energy_j > cap * m.duration_s]

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
    def window(self, key: str, checked: bool = True) -> Iterator[list[Measurement]]:
        """``with monitor.window("train") as out: ...`` then ``out[0]`` is the Measurement."""
        out: list[Measurement] = []
        self.begin_window(key)
        try:
            yield out
        except BaseException:
            self._forget(key)
            raise
        out.append(self.end_window(key, checked))

    def close(self) -> None:
        for b in self.backends:
            b.close()
