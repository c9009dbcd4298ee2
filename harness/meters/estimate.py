"""The estimate meter: works on any machine, measures nothing, and says so.

    E = W_cpu * (user + sys CPU seconds of this process, all threads, and of its child
                 processes: finished ones and running ones)
      + W_dram_per_GB * (resident set size in GB) * (wall seconds)

Child processes count: torch.compile runs the C++ compiler in them (measured here: 3 of
the 15 CPU-seconds of compiling the digits CNN were this process's own, 12 the
compiler's). Finished children are read from getrusage(RUSAGE_CHILDREN); running ones
(a compile worker pool) from /proc, with the time of the descendants each of them has
reaped itself, so a process's time is counted once, whether it ends inside a window or
after it, and whoever waits for it. Where /proc is missing, running children are not seen.

Constants (both overridable, both recorded with every result):
- W_cpu = 12 W per busy logical CPU: the Green Algorithms calculator's default per-core
  power for an unknown CPU (Lannelongue, Grealey & Inouye, Adv. Sci. 2021, 8:2100707),
  i.e. a typical server TDP divided by its core count. A vCPU is counted as a core.
- W_dram = 0.3725 W per GB of memory in use: the same paper's memory power figure.

Stated uncertainty: +-50%. Real per-core power spans roughly 3 W (efficient laptop
cores) to 20 W (turbo server cores); idle power, fans and PSU losses are not modelled.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Callable

from harness.meters.base import METERS, Availability, Backend, Hardware

CPU_W_PER_BUSY_CPU = 12.0
DRAM_W_PER_GB = 0.3725
UNCERTAINTY_REL = 0.5


def process_tree_cpu_seconds() -> float:
    """CPU seconds (user + sys) of this process, its finished (reaped) children, and its
    running descendants."""
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + done.ru_utime + done.ru_stime + running_descendants_cpu_seconds()


def running_descendants_cpu_seconds(proc: str = "/proc") -> float:
    """CPU seconds so far of the processes descended from this one and still running
    (or not yet reaped), and of the descendants they reaped (their cutime/cstime), from
    ``/proc/PID/stat``; 0 where there is no /proc."""
    try:
        pids = [d for d in os.listdir(proc) if d.isdigit()]
    except OSError:
        return 0.0
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for d in pids:
        try:
            with open(f"{proc}/{d}/stat", "rb") as fh:
                raw = fh.read()
            fields = raw[raw.rindex(b")") + 2:].split()  # after "pid (comm) "
            children.setdefault(int(fields[1]), []).append(int(d))
            # utime + stime, and cutime + cstime: the descendants it has reaped itself
            # (a still-running compiler driver that waited for its cc1); those moved
            # out of the processes /proc still lists, so without them a window over
            # the reap reads less CPU time than it holds, even a negative amount
            ticks[int(d)] = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        except (OSError, ValueError, IndexError):
            continue  # it ended while we looked
    total, todo = 0, list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc), else its peak."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@METERS.register("estimate")
class EstimateBackend(Backend):
    method = "estimate"
    covers_kinds = frozenset({"cpu", "dram"})
    uncertainty_rel = UNCERTAINTY_REL
    update_period_s = 0.0

    def __init__(self, parts: tuple[str, ...] = ("cpu", "dram"),
                 cpu_w_per_busy_cpu: float = CPU_W_PER_BUSY_CPU,
                 dram_w_per_gb: float = DRAM_W_PER_GB,
                 cpu_seconds: Callable[[], float] = process_tree_cpu_seconds,
                 memory_bytes: Callable[[], int] = rss_bytes,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not parts or set(parts) - {"cpu", "dram"}:
            raise ValueError(f"the estimate covers cpu and/or dram, not {parts}")
        self.parts = tuple(parts)
        self.cpu_w = cpu_w_per_busy_cpu
        self.dram_w_per_gb = dram_w_per_gb
        self._cpu_seconds = cpu_seconds
        self._memory_bytes = memory_bytes
        self._clock = clock
        self._last_t = clock()
        self._dram_j = 0.0

    @classmethod
    def probe(cls, hw: Hardware) -> Availability:
        return Availability(True, "always available: a model from process CPU time and memory, not a measurement")

    def components(self) -> tuple[str, ...]:
        return self.parts

    def resolution_s(self) -> float:
        """A child's CPU time in /proc moves by clock ticks (10 ms)."""
        return 1 / os.sysconf("SC_CLK_TCK")

    def max_power_w(self, component: str) -> float | None:
        """The most the formula can give: cpu, every logical CPU busy (cores x W per
        CPU); dram, all of the machine's memory resident."""
        if component == "cpu":
            return self.cpu_w * (os.cpu_count() or 1)
        if component == "dram":
            return self.dram_w_per_gb * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
        return None

    def totals(self) -> dict[str, float]:
        now = self._clock()
        # The memory level read now stands for the interval since the last reading.
        self._dram_j += self.dram_w_per_gb * self._memory_bytes() / 1e9 * (now - self._last_t)
        self._last_t = now
        out = {"cpu": self.cpu_w * self._cpu_seconds(), "dram": self._dram_j}
        return {p: out[p] for p in self.parts}

    def formula(self) -> str:
        terms = {"cpu": f"{self.cpu_w:g} W x CPU-seconds of the process and its children (user+sys, all threads)",
                 "dram": f"{self.dram_w_per_gb:g} W/GB x RSS GB x wall s"}
        return ("estimate: E = " + " + ".join(terms[p] for p in self.parts)
                + f" (Green Algorithms constants; +-{self.uncertainty_rel:.0%})")
