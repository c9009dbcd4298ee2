"""Benchmark (prints figures; not a test): the A/A check. Runs the same suite 2k times,
as A, B, A, B, ... (the trained variants come from the cache, so each run costs its
measurement phase), then prints per variant the A and B medians of the run medians,
their difference, the largest single-run difference (what a one-run-each comparison
would have seen), whether the variants rank the same, and ``joulebench compare``'s
verdict and exit code over the runs. Run-to-run noise on this VM is the floor any
A/B claim must clear; compare must exit 0 here.

    python benchmarks/scripts/aa_check.py [benchmarks/digits.yaml] [--full] [--runs K] [--data-dir DIR]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite_args  # noqa: E402


def run(suite: str, out: Path, extra: list[str]) -> pd.DataFrame:
    cmd = [sys.executable, "-m", "harness", "run", suite, "--out", str(out), *extra]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return pd.read_csv(out / "table.csv").set_index("variant_id")


def main() -> None:
    args, extra = suite_args.parse("A/A check", runs=5)
    tmp = Path(tempfile.mkdtemp())
    tables: dict[str, list[pd.DataFrame]] = {"a": [], "b": []}
    t0 = time.perf_counter()
    for i in range(args.runs):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):  # ABBA: neither side always goes second
            tables[side].append(run(args.suite, tmp / f"{side}{i}", extra))
    wall = time.perf_counter() - t0
    print(f"A/A on {args.suite} ({'full' if args.full else 'quick'}), {args.runs} runs per side interleaved "
          f"A,B,A,B,... in {wall:.0f} s; run dirs under {tmp}\n")
    print(f"{'variant':22s} {'J/inf A':>11s} {'J/inf B':>11s} {'B/A-1':>8s} {'worst 1:1':>9s} {'run CV':>7s}")
    med = {s: pd.concat([t["J_per_inference"] for t in ts], axis=1) for s, ts in tables.items()}
    for vid in med["a"].index:
        ja, jb = med["a"].loc[vid].median(), med["b"].loc[vid].median()
        pairs = [b / a - 1 for a, b in zip(med["a"].loc[vid], med["b"].loc[vid])]
        every = list(med["a"].loc[vid]) + list(med["b"].loc[vid])
        cv = statistics.stdev(every) / statistics.mean(every)
        print(f"{vid:22s} {ja:11.4e} {jb:11.4e} {jb / ja - 1:+8.1%} {max(pairs, key=abs):+9.1%} {cv:7.1%}")
    for col in ("J_per_inference", "correct_per_J"):
        a = pd.concat([t[col] for t in tables["a"]], axis=1).median(axis=1)
        b = pd.concat([t[col] for t in tables["b"]], axis=1).median(axis=1)
        same = list(a.sort_values().index) == list(b.sort_values().index)
        print(f"rank by {col} (median over runs): {'same order' if same else 'ORDER DIFFERS'} "
              f"(Spearman rho {a.rank().corr(b.rank()):.3f})")
    dirs = {s: ",".join(str(tmp / f"{s}{i}") for i in range(args.runs)) for s in ("a", "b")}
    cmp_ = subprocess.run([sys.executable, "-m", "harness", "compare", dirs["a"], dirs["b"]], cwd=ROOT,
                          capture_output=True, text=True)
    print(f"\njoulebench compare A-runs B-runs (exit {cmp_.returncode}):\n{cmp_.stdout}{cmp_.stderr}")


if __name__ == "__main__":
    main()
