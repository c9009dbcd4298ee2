"""How a run tells its progress: lines through the standard library's ``logging`` (the
``joulebench`` logger: the command line shows INFO, ``-q`` warnings only, ``-v`` DEBUG;
from Python it follows your logging configuration), a count over the whole run with the
time spent and an estimate of what is left on each line, and tqdm bars only on a
terminal (a log file or CI gets the periodic plain lines, never a bar's carriage
returns).
"""

from __future__ import annotations

import logging
import sys
import time

LOGGER = logging.getLogger("joulebench")


def log(line: str) -> None:
    LOGGER.info(line)


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a line is written (a redirected one too)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(verbosity: int) -> None:
    """The command line's logging: -1 (-q) warnings only, 0 progress lines, 1 (-v) debug."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    LOGGER.setLevel(level)
    if not any(isinstance(h, _Stderr) for h in LOGGER.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOGGER.addHandler(handler)
    LOGGER.propagate = False


def bars() -> bool | None:
    """tqdm's ``disable``: None (on a terminal only) while progress lines show, else True."""
    return None if LOGGER.isEnabledFor(logging.INFO) else True


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """``[i/N]`` over a run's steps, with the time since the first and, from the second
    on, about how long the rest takes at the pace so far."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()

    def step(self, what: str) -> str:
        elapsed = time.monotonic() - self.start
        left = f", about {_clock(elapsed / self.done * (self.total - self.done))} left" if self.done else ""
        self.done += 1
        return f"[{self.done}/{self.total}] {what} ({_clock(elapsed)} elapsed{left})"
