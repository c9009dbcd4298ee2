"""The run's own processes kept out of windows (meters/held.py): a busy child held by
the monitor spends no CPU while a window (or a quiet block: the windows' sizing) is
open and runs again once none is; not held, it runs through the window (the estimate
would count it as the window's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from harness.meters.estimate import EstimateBackend
from harness.meters.held import Held, state
from harness.meters.monitor import EnergyMonitor

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to read a process's CPU time")


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def spent(pid: int, seconds: float = 0.5) -> int:
    before = cpu_ticks(pid)
    time.sleep(seconds)
    return cpu_ticks(pid) - before


@pytest.fixture
def busy():
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc.pid
    proc.kill()
    proc.wait()


def monitor() -> EnergyMonitor:
    return EnergyMonitor([EstimateBackend()])  # it counts this process tree's CPU time: the child's too


def cpu_j(window: list) -> float:
    return sum(c.energy_j for c in window[0].components if c.component == "cpu")


def test_a_held_process_is_stopped_in_every_window_and_runs_between(busy: int) -> None:
    m = monitor()
    m.hold(busy)
    assert spent(busy) > 0  # no window open: it runs
    with m.window("outer", checked=False) as out:
        assert state(busy) == {"T"}
        assert spent(busy) == 0
        m.begin_window("inner")  # nested: still stopped, and still after the inner one closes
        m.end_window("inner", checked=False)
        assert spent(busy) == 0
    assert cpu_j(out) < 12 * 0.1  # about a second of wall time; the estimate's 12 W x CPU-s saw none of the child's
    assert spent(busy) > 0  # continued after the last window closed
    with pytest.raises(ZeroDivisionError):  # a window abandoned by an error continues it too
        with m.window("failing"):
            assert spent(busy, 0.2) == 0
            1 / 0
    assert spent(busy) > 0


def test_a_held_process_is_stopped_while_the_windows_are_sized(busy: int) -> None:
    """measure.prepare times passes outside any window to size the windows: a held
    process running meanwhile would slow that timing, and the windows come out short."""
    m = monitor()
    m.hold(busy)
    with m.quiet():
        assert spent(busy) == 0
        with m.window("inside", checked=False):
            pass
        assert spent(busy) == 0  # the window closed, the quiet block still holds it
    assert spent(busy) > 0


def test_a_process_not_held_runs_through_the_window(busy: int) -> None:
    m = monitor()
    with m.window("w", checked=False) as out:
        assert spent(busy) > 0  # the plant's absence: nothing stops it
    assert cpu_j(out) > 12 * 0.3  # and the estimate counts its CPU time as the window's


def test_a_held_process_that_ended_is_forgotten() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    held = Held()
    held.add(proc.pid)
    held.stop()
    held.resume()
    assert held.pids == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_held_process_dies_with_the_run_that_started_it(tmp_path) -> None:
    """A run killed (SIGKILL) while it holds its child stopped: the child is killed too
    (held.die_with_parent), not left stopped; without it the child stays (the plant's
    absence: the kernel hangs up a stopped orphan only in some process-group layouts)."""
    import signal

    script = tmp_path / "run.py"
    script.write_text(
        "import os, signal, subprocess, sys, time\n"
        "from harness.meters import held\n"
        "guard = held.die_with_parent() if sys.argv[1] == 'guarded' else None\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], preexec_fn=guard)\n"
        "os.kill(child.pid, signal.SIGSTOP)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n")
    for mode, survives in (("guarded", False), ("bare", True)):
        run = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
        pid = int(run.stdout.readline())
        run.kill()
        run.wait()
        deadline = time.monotonic() + 5
        while state(pid) not in (set(), {"Z"}) and time.monotonic() < deadline and not survives:
            time.sleep(0.05)
        alive = state(pid) not in (set(), {"Z"})
        if alive:
            os.kill(pid, signal.SIGKILL)
        assert alive == survives, mode
