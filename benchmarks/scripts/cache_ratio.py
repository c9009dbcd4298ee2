"""Benchmark (prints figures; not a test): wall time of an unchanged rerun against the
first run, with a fresh artifact cache. Target: <= 10%.

Only creation (training, fine-tuning, distillation) is cached; evaluation and the
inference energy windows always run again, so the ratio is low where training
dominates and higher where measurement does. Measured on the 2-vCPU VM: SST-2 full
27m16s -> 3m29s (12.8%), SST-2 quick 194 s -> 103 s (53%). With preloads only where
something is made (2026-12-06, this script's output): SST-2 quick 177.9 s -> 103.3 s
(58.1%), digits quick 50.2 s -> 39.7 s (79.2%; the compiled row is never cached).

    python benchmarks/scripts/cache_ratio.py [benchmarks/digits.yaml] [--full] [--data-dir DIR]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite_args  # noqa: E402


def main() -> None:
    args, extra = suite_args.parse("cache wall-time ratio")
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "JOULEBENCH_CACHE": str(tmp / "cache")}
    times = []
    for name in ("first", "second"):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "harness", "run", args.suite, "--out", str(tmp / name), *extra],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode:
            sys.exit(proc.stderr)
        summary = [line for line in proc.stderr.splitlines() if "artifact cache" in line]
        print(f"{name:6s} run: {times[-1]:7.1f} s   {summary[0] if summary else ''}")
    print(f"\nsecond / first wall time: {times[1] / times[0]:.1%} (target <= 10%)")


if __name__ == "__main__":
    main()
