"""Who else used the machine during a window: the CPU seconds every other process spent
(the machine's busy time from /proc/stat, less this process tree's own), as a share of
the machine's capacity over the window. Above ``SHARED_SHARE`` (and above what the two
clocks' granularity can produce) the window is flagged ``shared``: a RAPL or NVML
reading then includes that work; the estimate counts this process tree only, but the
machine's speed was not its own either. Where /proc/stat is missing nothing is said
(None), never "not shared".
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from harness.meters.estimate import process_tree_cpu_seconds

#: Other processes using more than this share of the machine's CPU capacity over a
#: window make it ``shared`` (a quarter: one busy core of a 4-core machine).
SHARED_SHARE = 0.25
#: /proc/stat counts in clock ticks on each CPU: a difference of two readings is exact
#: to about a tick per CPU at each edge; less than this is not told from nothing.
TICKS_OF_DOUBT = 2


def _ticks_per_s() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def machine_busy_s(path: str = "/proc/stat") -> float | None:
    """CPU seconds every process on the machine has spent (user, nice, system, irq,
    softirq: not idle, iowait or steal), or None without /proc/stat."""
    try:
        with open(path) as fh:
            first = fh.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu" or len(first) < 5:
        return None
    v = [int(x) for x in first[1:]]
    busy = v[0] + v[1] + v[2] + (v[5] if len(v) > 5 else 0) + (v[6] if len(v) > 6 else 0)
    return busy / _ticks_per_s()


@dataclass(frozen=True)
class Snapshot:
    busy_s: float
    own_s: float
    wall: float


def snapshot(path: str = "/proc/stat") -> Snapshot | None:
    busy = machine_busy_s(path)
    return None if busy is None else Snapshot(busy, process_tree_cpu_seconds(), time.monotonic())


def others(before: Snapshot | None, after: Snapshot | None, cpus: int | None = None) -> tuple[float, bool] | None:
    """(others' CPU share of the machine over the window, shared?) or None where unknown."""
    if before is None or after is None or after.wall <= before.wall:
        return None
    cpus = cpus or os.cpu_count() or 1
    spent = max(0.0, (after.busy_s - before.busy_s) - (after.own_s - before.own_s))
    capacity = cpus * (after.wall - before.wall)
    doubt = TICKS_OF_DOUBT * cpus / _ticks_per_s()
    if capacity <= doubt:  # shorter than the clock resolves: one tick would read as a share above 1
        return None
    return min(1.0, spent / capacity), spent > max(SHARED_SHARE * capacity, doubt)


def ours(pid: int, proc: str = "/proc") -> bool:
    """Whether ``pid`` is this process or one of its descendants (its parent chain in
    /proc reaches us); False where /proc cannot say."""
    me, seen = os.getpid(), 0
    while pid > 1 and seen < 64:
        if pid == me:
            return True
        try:
            with open(f"{proc}/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        seen += 1
    return False

