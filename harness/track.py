"""A window over your own code: the meters, idle baseline, device synchronisation,
resolution and plausibility checks of a suite's windows, around anything you run.

    from harness import api

    with api.track("fine-tune") as w:          # or @api.track("fine-tune") on a function
        my_training_loop(model)
    w.energy_J, w.net_energy_J, w.method, w.uncertainty, w.status   # status: resolved / bounded

The meter is chosen as ``joulebench meters`` shows it (``meter="auto"``: every counter
present, the estimate for what none covers, said on stderr), and the window says which.
Work shorter than the meter resolves is padded with idle time and reported for the work
alone where that reading is resolved, else kept as an upper bound (``status: bounded``),
as a creation window is. One window at a time: opening one inside another (nested, or
from another thread) is refused in one line, since the outer one would count the inner
one's joules twice.
"""

from __future__ import annotations

import functools
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

from harness.errors import UserError

_open: list[str] = []  # the name of the window open in this process, if any
_guard = threading.Lock()


@dataclass(frozen=True)
class Window:
    """A tracked window, as measured."""

    name: str
    energy_J: float  # gross: everything the meter saw (the padded reading where status is bounded)
    net_energy_J: float | None  # less idle power x duration; None where the reading is only a bound
    duration_s: float  # the work's own seconds
    method: str  # how the joules were obtained: estimate, rapl, nvml (+ when several)
    uncertainty: float  # stated relative uncertainty of the method (0.5 = +-50%)
    status: str  # resolved (a value) or bounded (an upper bound)
    host: str
    device: str
    formulas: tuple[str, ...]
    measurement: Any  # the meters.Measurement, as a record stores it (``to_dict``)

    def __str__(self) -> str:
        bound = "<= " if self.status == "bounded" else ""
        return (f"{self.name}: {bound}{self.energy_J:.4g} J over {self.duration_s:.3g} s ({self.method} on "
                f"{self.host}, {self.device}; +-{100 * self.uncertainty:.0f}%, {self.status})")


class track:
    """``with track(name) as w:`` or ``@track(name)``; ``w`` is filled when the block ends
    (``w.energy_J``, ...). ``meter``: auto or a name from ``joulebench meters``;
    ``device``: auto, cpu or cuda[:N] (the GPU whose queued work each edge waits for);
    ``idle_s``: seconds of idle measured before the window, for the net figure (0: none)."""

    def __init__(self, name: str = "tracked", meter: str = "auto", device: str = "auto", idle_s: float = 1.0,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> None:
        if not isinstance(name, str) or not name:
            raise UserError(f"api.track needs a name, not {name!r}: track('fine-tune')")
        if not isinstance(idle_s, (int, float)) or isinstance(idle_s, bool) or not 0 <= idle_s <= 3600:
            raise UserError(f"api.track idle_s is {idle_s!r}; give seconds from 0 to 3600")
        self.name, self.meter, self._device_spec, self.idle_s, self.log = name, meter, device, float(idle_s), log
        self.result: Window | None = None
        self._monitor: Any = None
        self._window: Any = None
        self._out: list[Any] = []
        self._device: Any = None

    # -- as a context manager ---------------------------------------------------------
    def __enter__(self) -> "track":
        with _guard:
            if _open:
                raise UserError(f"api.track({self.name!r}) opened inside the open window {_open[0]!r}; windows do not "
                                "nest (the outer one would count the inner one's joules twice): close it first, or "
                                "track the two parts one after the other")
            _open.append(self.name)
        try:
            from harness import meters
            from harness.config import MeterConfig
            from harness.device import prepare, resolve

            meters.check_name(self.meter, "api.track")
            self._device = resolve(self._device_spec, where="api.track device")
            prepare(self._device)
            self._monitor = meters.build(MeterConfig(name=self.meter), allow_estimate=True, log=self.log,
                                         device=self._device)
            if self.idle_s > 0:
                self._monitor.measure_idle(self.idle_s)
            self._window = self._monitor.creation_window(self.name)
            self._out = self._window.__enter__()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            self._window.__exit__(kind, exc, tb)
            if kind is None:
                self.result = self._result(self._out[0])
        finally:
            self._release()

    def _release(self) -> None:
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        with _guard:
            if self.name in _open:
                _open.remove(self.name)

    def _result(self, m: Any) -> Window:
        bounded = m.status == "bounded"
        seconds = m.work_s if m.work_s is not None else m.duration_s
        unc = m.uncertainty_j / m.energy_j if m.energy_j > 0 else 0.0
        return Window(self.name, m.energy_j, None if bounded else m.net_energy_j, seconds, m.method, unc, m.status,
                      m.host, self._device.name, tuple(self._monitor.formulas()), m)

    # -- as a decorator -----------------------------------------------------------------
    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with track(self.name, self.meter, self._device_spec, self.idle_s, self.log) as w:
                out = fn(*args, **kwargs)
            wrapped.window = w.result  # type: ignore[attr-defined]
            return out

        wrapped.window = None  # type: ignore[attr-defined]
        return wrapped

    # -- the result, read through the tracker ---------------------------------------------
    def __str__(self) -> str:
        return str(self.result) if self.result is not None else f"api.track({self.name!r}), not yet closed"

    def __getattr__(self, attr: str) -> Any:
        if attr in Window.__dataclass_fields__:
            result = self.__dict__.get("result")
            if result is None:
                raise AttributeError(f"api.track({self.__dict__.get('name')!r}) has no {attr} until its block ends")
            return getattr(result, attr)
        raise AttributeError(attr)
