"""Benchmark (prints figures; not a test): what starting the work pass's counting
process costs, before it counts anything.

The counting process (harness/work.py) is this Python under callgrind with
instrumentation off, importing torch, the harness and the modules a suite's variants
load when rebuilt (``work.imports``). Valgrind translates and runs every instruction of
those imports (no AVX-512; about 4x at best with instrumentation off, more for the
dynamic linker's relocations of a 400 MB libtorch). This prints, for each set of
imports, the seconds natively and under the counting process's own command line
(``work.command``, ``work.ENV``), the median of ``--repeat`` alternating pairs, and the
suites' import lists, so the start's floor can be set against a run's energy windows.

    python benchmarks/scripts/valgrind_start.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import plan, suite, work  # noqa: E402

SUITES = {"digits (quick)": ("benchmarks/digits.yaml", "image"),
          "SST-2 BERT-tiny work suite (quick)": ("benchmarks/work/sst2_bert_tiny.yaml", "text")}


def seconds(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    env = {**os.environ, **work.ENV}
    sets = {"python alone": [], "torch": ["torch"], "harness.counting (torch, the harness)": ["harness.counting"]}
    for name, (path, kind) in SUITES.items():
        names = work.imports(plan.expand(suite.load(ROOT / path, "quick")), kind)
        sets[f"harness.counting + {name}: {', '.join(names)}"] = ["harness.counting", *work.ALWAYS_IMPORTED, *names]
    shown = [a if a != sys.executable else "python" for a in work.command("CG", ["-c", "import ..."])]
    print(f"# {' '.join(shown)}")  # this Python by its name, not this machine's path to it
    print(f"# environment: {' '.join(f'{k}={v}' for k, v in work.ENV.items())}; median of {args.repeat} "
          "alternating pairs (native, under valgrind), seconds of wall time on an otherwise idle machine")
    with tempfile.TemporaryDirectory() as tmp:
        for label, modules in sets.items():
            code = "; ".join(f"import {m}" for m in modules) or "pass"
            native, under = [], []
            for _ in range(args.repeat):
                native.append(seconds([sys.executable, "-c", code], env))
                under.append(seconds(work.command(Path(tmp) / "cg.%p", ["-c", code]), env))
            n, u = statistics.median(native), statistics.median(under)
            print(f"{u:7.1f} s under valgrind {n:6.2f} s natively ({u / n:4.1f}x)  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
