"""Benchmark (prints figures; not a test): what ``measure.settle`` costs inside a window.

A window ends with ``settle``: 2 ms steps until the process's CPU clock is quiet and no
other thread of it is runnable (``measure.others_runnable`` reads every thread's
``/proc/self/task/TID/stat``). That reading is work inside the window, and it grows with
the process's threads: a GPU process holds many (intra-op and inter-op pools, CUDA's,
a data loader's). This prints, for processes holding N idle threads beside torch's own,
the seconds of one ``others_runnable`` call (median of ``--calls``) and of one quiet
``settle`` (the least it adds to a window: two steps), set against the shortest window a
suite asks for (quick digits' 0.2 s, min_window_s).

    python benchmarks/scripts/settle_cost.py [--threads 0,16,64,256] [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402  (its thread pools, as in a run)

from harness import measure  # noqa: E402

WINDOW_S = 0.2  # benchmarks/digits.yaml quick: measure.min_window_s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="0,16,64,256")
    p.add_argument("--calls", type=int, default=2000)
    args = p.parse_args()
    torch.ones(64, 64) @ torch.ones(64, 64)  # start the intra-op pool
    stop = threading.Event()
    started: list[threading.Thread] = []
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} intra-op threads); "
          f"settle steps of {measure.SETTLE_STEP_S * 1e3:g} ms; median of {args.calls} calls")
    for n in sorted(int(x) for x in args.threads.split(",")):
        while len(started) < n:  # idle threads (state S), as a pool's parked workers are
            t = threading.Thread(target=stop.wait, daemon=True)
            t.start()
            started.append(t)
        threads = len(os.listdir("/proc/self/task"))
        calls = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            measure.others_runnable()
            calls.append(time.perf_counter() - t0)
        call = statistics.median(calls)
        settles = [measure.settle() for _ in range(50)]
        quiet = statistics.median(settles)
        print(f"{threads:4d} threads: others_runnable {call * 1e6:7.1f} us a call; a quiet settle {quiet * 1e3:5.2f} ms "
              f"of wall time, {2 * call * 1e3:6.3f} ms of it reading /proc ({2 * call / WINDOW_S:.3%} of a "
              f"{WINDOW_S:g} s window)")
    stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
