"""Benchmark (prints figures; not a test): wall time of an unchanged rerun against the
first run, with a fresh artifact cache. Target: <= 10%.

Only creation (training, fine-tuning, distillation) is cached; evaluation and the
inference energy windows always run again, so the ratio is low where training
dominates (SST-2 full) and higher where measurement does (digits quick).

    python benchmarks/scripts/cache_ratio.py [benchmarks/digits.yaml] [--full] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", nargs="?", default="benchmarks/digits.yaml")
    ap.add_argument("--full", action="store_true", help="full profile (default: quick)")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "JOULEBENCH_CACHE": str(tmp / "cache")}
    extra = ([] if args.full else ["--quick"]) + (["--data-dir", args.data_dir] if args.data_dir else [])
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
