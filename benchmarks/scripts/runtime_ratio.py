"""Benchmark (prints figures; not a test): what each variant costs per inference relative
to its parent, run by run, over repeated runs of one suite: the figure issue 12 asks for
(onnxruntime int8 against eager, repeated and interleaved).

Within a run, a variant and its parent are measured in the same interleaved rounds, so
their ratio (median J/inference of the variant over the parent's) shares the machine's
state; the unit of repetition is the run, so the spread is over runs: the median ratio
over runs and its range (with 5 runs the range covers the median ratio with 93.8%
probability, order statistics; with 6 or more the 95% interval is printed). The accuracy
delta is the variant's minus its parent's on the same eval examples, with McNemar's p
from the first run (reruns from the artifact cache give the same predictions).

    python benchmarks/scripts/runtime_ratio.py RUN_DIR [RUN_DIR ...] [--only onnxruntime,compile]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import recordfile, samples, stats  # noqa: E402
from harness.table import runtime_label  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--only", help="runtimes to show (default: every variant)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    ratios: dict[str, list[float]] = {}
    first: dict[str, str] = {}
    for run in args.runs:
        recs = [r for r in recordfile.load_dir(run)[0] if r.ok]
        by_key = {(r.suite, r.variant_id, r.seed): r for r in recs}
        med = {}
        for r in recs:
            med.setdefault(r.variant_id, []).extend(r.inference.j_per_inference())
        for r in recs:
            if not r.parent or (only and r.runtime.get("name") not in only):
                continue
            ratios.setdefault(r.variant_id, []).append(stats.median(med[r.variant_id]) / stats.median(med[r.parent]))
            if r.variant_id not in first:
                test = stats.paired_accuracy_test(*samples.paired([r], by_key))
                first[r.variant_id] = (f"{runtime_label(r.runtime):12s} vs {r.parent:12s} accuracy "
                                       f"{r.eval.accuracy:.4f}, delta {test.delta:+.4f} (p={test.p:.3g})")
    print(f"{len(args.runs)} runs; J/inference ratio to the parent in the same run, median over runs [range]")
    for vid, values in ratios.items():
        lo, hi = (stats.median_ci(values) if len(values) >= 6 else (min(values), max(values)))
        label = "95% CI" if len(values) >= 6 else "range"
        print(f"{vid:22s} {stats.median(values):.3f} [{label} {lo:.3f}, {hi:.3f}] over {len(values)} runs; "
              f"{first[vid]}")


if __name__ == "__main__":
    main()
