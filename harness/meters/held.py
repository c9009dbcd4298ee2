"""Processes of the run's own that work between windows and never inside one: stopped
(SIGSTOP) before a window's first reading, continued (SIGCONT) after its last.

The work pass's counting process (work.py) starts up under valgrind (Python, torch and
the suite's imports: 10-25 s of one CPU) while the run does its own work between
windows. It is a child of the run, so the estimate meter would count its CPU time
as the window's and a RAPL or NVML reading would hold its joules: stopped, it spends
nothing. A stop is waited for until every thread of the process reads stopped in
/proc (a signal is delivered asynchronously); where there is no /proc the signal is
trusted. A process that has ended is forgotten. A held process dies with the run
(``die_with_parent``): a run killed while it holds one leaves nothing stopped behind.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Callable

#: The longest wait for a stop to show in /proc.
STOP_WAIT_S = 5.0


def state(pid: int, proc: str = "/proc") -> set[str] | None:
    """The scheduler states of ``pid``'s threads ("R", "S", "T", ...); None where /proc
    cannot say; an empty set where the process is gone."""
    if not os.path.isdir(proc):
        return None
    try:
        tids = os.listdir(f"{proc}/{pid}/task")
    except OSError:
        return set()
    out = set()
    for tid in tids:
        try:
            with open(f"{proc}/{pid}/task/{tid}/stat") as fh:
                out.add(fh.read().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            continue  # the thread ended while we looked
    return out


class Held:
    """The pids kept out of windows; ``stop`` and ``resume`` each act once however
    often they are called (windows nest)."""

    def __init__(self, proc: str = "/proc") -> None:
        self.pids: list[int] = []
        self.stopped = False
        self.proc = proc

    def add(self, pid: int) -> None:
        self.pids.append(pid)

    def stop(self) -> None:
        if self.stopped or not self.pids:
            return
        self.stopped = True
        self._signal(signal.SIGSTOP)
        deadline = time.monotonic() + STOP_WAIT_S
        for pid in self.pids:
            while True:
                seen = state(pid, self.proc)
                # "T" stopped, "t" traced and stopped, "Z"/"X" ended: nothing runs any more
                if seen is None or seen <= {"T", "t", "Z", "X"} or time.monotonic() > deadline:
                    break
                time.sleep(0.001)

    def resume(self) -> None:
        if self.stopped:
            self.stopped = False
            self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        """``sig`` to every held pid; one that has ended is forgotten."""
        for pid in list(self.pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.pids.remove(pid)


def die_with_parent() -> Callable[[], None] | None:
    """For Popen's ``preexec_fn``: the child gets SIGKILL when the run that started it
    dies (Linux's PR_SET_PDEATHSIG; it survives exec), stopped or not; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
