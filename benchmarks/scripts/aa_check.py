"""Benchmark (prints figures; not a test): the A/A check. Runs the same suite twice, then
prints, per variant, both J_per_inference medians, their difference, whether the 95%
intervals overlap, and whether the variants rank the same by J_per_inference and by
correct_per_J. Run-to-run noise on this VM is the floor any A/B claim must clear.

    python benchmarks/scripts/aa_check.py [benchmarks/digits.yaml] [--full] [--data-dir DIR]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite_args  # noqa: E402


def run(suite: str, out: Path, extra: list[str]) -> pd.DataFrame:
    cmd = [sys.executable, "-m", "harness", "run", suite, "--out", str(out), *extra]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return pd.read_csv(out / "table.csv").set_index("variant_id")


def main() -> None:
    args, extra = suite_args.parse("A/A check")
    tmp = Path(tempfile.mkdtemp())
    a, b = run(args.suite, tmp / "a", extra), run(args.suite, tmp / "b", extra)
    print(f"A/A on {args.suite} ({'full' if args.full else 'quick'}); run dirs {tmp}/a and {tmp}/b\n")
    print(f"{'variant':22s} {'J/inf A':>11s} {'J/inf B':>11s} {'B/A-1':>8s} {'CIs overlap':>11s} {'acc A':>7s} {'acc B':>7s}")
    for vid in a.index:
        ja, jb = a.loc[vid, "J_per_inference"], b.loc[vid, "J_per_inference"]
        overlap = not (a.loc[vid, "J_per_inference_ci95_hi"] < b.loc[vid, "J_per_inference_ci95_lo"]
                       or b.loc[vid, "J_per_inference_ci95_hi"] < a.loc[vid, "J_per_inference_ci95_lo"])
        print(f"{vid:22s} {ja:11.4e} {jb:11.4e} {jb / ja - 1:+8.1%} {str(overlap):>11s} "
              f"{a.loc[vid, 'accuracy']:7.4f} {b.loc[vid, 'accuracy']:7.4f}")
    for col in ("J_per_inference", "correct_per_J"):
        same = list(a[col].sort_values().index) == list(b[col].sort_values().index)
        rho = a[col].rank().corr(b[col].rank())
        print(f"\nrank by {col}: {'same order' if same else 'ORDER DIFFERS'} (Spearman rho {rho:.3f})")


if __name__ == "__main__":
    main()
