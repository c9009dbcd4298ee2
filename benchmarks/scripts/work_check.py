"""Benchmark (prints figures; not a test): the work pass's determinism, sensitivity,
cost and agreement with J/inference.

Runs the suite K times with ``--work instructions`` (an A/A: the trained variants come
from the cache), then twice more with a planted change in the counting process only
(a ``sitecustomize`` on its PYTHONPATH, as a code change would be):
- ``heap``: no change of work, a heap grown at the start (as another import leaves
  it): an A/A between processes whose heaps differ;
- ``every4th``: every 4th batch of every variant's pass runs twice (the history
  reference's planted +25%);
- ``small``: one variant (``--small-variant``, default cnn) runs an extra 5% of its
  examples per pass.
Where the default sample (``measure.work_batches``) leaves batches out, one more run
counts every batch (``--work-batches all``) and the sample's error against it is
printed per variant. It prints, per variant: instructions per inference over the A/A
runs (CV, max/min), the planted changes, what ``joulebench compare`` (one run per
side) and ``history show`` (the A/A runs as nights, the planted run as the latest) say;
the seconds the run waited for the work pass against the energy windows' total of the
same run, and the run's wall time with the pass less without it (interleaved runs with
``--work none``), each against ``--goal``; and the Spearman rank correlation of instructions per inference with
J/inference across the variants.

    python benchmarks/scripts/work_check.py [benchmarks/digits.yaml] [--full] [--runs K] [--data-dir DIR]
        [--work-batches K|all] [--goal X]
"""

from __future__ import annotations

import json
import os
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

from harness import stats  # noqa: E402

PLANTS = {
    # no change of work: a heap grown at the start, as another import leaves it (an A/A across heaps)
    "heap": """
_heap = [[i] for i in range(300000)]
""",
    "every4th": """
from harness import measure
_one = measure.Target.one_pass
def one_pass(self):
    _one(self)
    for batch in self.batches[::4]:
        self.runnable(batch)
measure.Target.one_pass = one_pass
""",
    "small": """
from harness import measure
_one = measure.Target.one_pass
def one_pass(self):
    _one(self)
    if self.name.startswith("{variant}@"):
        extra, left = [], max(1, round(0.05 * self.n))
        for batch in self.batches:
            size = len(next(iter(batch.values())))
            extra.append({{k: v[:min(size, left)] for k, v in batch.items()}})
            left -= min(size, left)
            if not left:
                break
        for batch in extra:
            self.runnable(batch)
measure.Target.one_pass = one_pass
""",
}


def run(suite: str, out: Path, extra: list[str], plant: Path | None = None, work: str = "instructions") -> float:
    env = dict(os.environ)
    if plant is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plant), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "run", suite, "--out", str(out), "--work", work,
                    *extra], cwd=ROOT, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def counts(run_dir: Path, sampled: dict[str, list[int] | None] | None = None
           ) -> tuple[dict[str, float], float, float, float]:
    """(instructions per inference by variant, the seconds the run waited for the work
    pass, the energy windows' seconds, the counting process's start: begin to ready, begun
    at the run's start); ``sampled`` collects each variant's batch sample ([counted, of] or None)."""
    per, work_s, windows_s, start_s = {}, {}, 0.0, 0.0
    for line in (run_dir / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("status") != "ok":
            continue
        for inf in [r["inference"], *r.get("inference_sweep", [])]:
            windows_s += sum(w["duration_s"] for w in inf["windows"])
        w = r["inference"].get("work") or {}
        if w.get("instructions"):
            per[r["variant_id"]] = w["instructions"] / w["inferences"]
            work_s[r["seed"]] = w["process_s"]  # the group's (one seed's) counting job
            start_s = max(start_s, w.get("start_s") or 0.0)  # the first group's
            if sampled is not None:
                sampled[r["variant_id"]] = w.get("batches")
    return per, sum(work_s.values()), windows_s, start_s


def main() -> None:
    args, extra = suite_args.parse("work pass check", runs=3, passed=("--work-batches",),
                                   own={"--goal": "the work pass's seconds per energy window second to meet (1.5)"})
    goal = float(args.goal or 1.5)
    tmp = Path(tempfile.mkdtemp())
    aa = []
    sampled: dict[str, list[int] | None] = {}
    added = []  # the run's wall time with the pass less without it (interleaved pairs: this VM drifts)
    for i in range(args.runs):
        wall = run(args.suite, tmp / f"aa{i}", extra)
        bare = run(args.suite, tmp / f"none{i}", extra, work="none")
        added.append(wall - bare)
        aa.append(counts(tmp / f"aa{i}", sampled if i == 0 else None))
        print(f"A/A run {i + 1}: {wall:.0f} s (without the pass: {bare:.0f} s); the run waited {aa[-1][1]:.0f} s "
              f"for the work pass (its process's start took {aa[-1][3]:.0f} s, begun at the run's start and stopped "
              f"in every window); energy windows {aa[-1][2]:.0f} s", flush=True)
    variants = sorted(aa[0][0])
    if any(sampled.values()):  # the sample's error against every batch counted
        wall = run(args.suite, tmp / "full", [*extra, "--work-batches", "all"])
        full = counts(tmp / "full")
        print(f"full-split run: {wall:.0f} s; work pass {full[1]:.0f} s, energy windows {full[2]:.0f} s")
        print(f"\n{'variant':18s} {'sample':>9s} {'instr/inf (sample)':>19s} {'instr/inf (all)':>16s} {'error':>8s}")
        errors = []
        for v in variants:
            med = statistics.median(a[0][v] for a in aa if v in a[0])
            errors.append(med / full[0][v] - 1)
            k = sampled[v]
            print(f"{v:18s} {f'{k[0]} of {k[1]}' if k else 'all':>9s} {med:19.1f} {full[0][v]:16.1f} "
                  f"{errors[-1]:+8.2%}")
        print(f"largest sample error: {max(map(abs, errors)):.2%} (goal <= 1%)")
    else:
        print("the default sample covers every eval batch here (no target has more batches than "
              "measure.work_batches): its error against the full split is zero by construction")
    small_variant = "cnn" if "cnn" in variants else variants[0]
    planted = {}
    for name, code in PLANTS.items():
        folder = tmp / f"plant-{name}"
        folder.mkdir()
        (folder / "sitecustomize.py").write_text(code.format(variant=small_variant))
        run(args.suite, tmp / name, extra, folder)
        planted[name] = counts(tmp / name)[0]

    print(f"\n{'variant':18s} {'instr/inf (A/A median)':>22s} {'CV':>8s} {'max/min':>8s} "
          f"{'every4th':>9s} {'small':>8s} {'heap':>8s}")
    cvs = []
    for v in variants:
        xs = [a[0][v] for a in aa if v in a[0]]
        med = statistics.median(xs)
        cv = statistics.stdev(xs) / statistics.mean(xs) if len(xs) > 1 else float("nan")
        cvs.append(cv)
        print(f"{v:18s} {med:22.1f} {cv:8.3%} {max(xs) / min(xs):8.5f} "
              f"{planted['every4th'][v] / med - 1:+9.1%} {planted['small'][v] / med - 1:+8.2%} "
              f"{planted['heap'][v] / med - 1:+8.3%}")
    print(f"largest A/A CV: {max(cvs):.3%} over {args.runs} runs (goal < 0.3%)")
    heap = max(abs(planted["heap"][v] / statistics.median(a[0][v] for a in aa if v in a[0]) - 1) for v in variants)
    print(f"largest change with a grown heap: {heap:.3%} against the A/A median (goal < 0.1%)")

    def verdict(cmd: list[str]) -> tuple[int, list[str]]:
        got = subprocess.run([sys.executable, "-m", "harness", *cmd], cwd=ROOT, capture_output=True, text=True)
        return got.returncode, [ln for ln in got.stdout.splitlines() if "REGRESSION" in ln]

    for name in PLANTS:
        code, lines = verdict(["compare", str(tmp / "aa0"), str(tmp / name)])
        flagged = sorted({ln.split()[0] for ln in lines if "WORK REGRESSION" in ln})
        print(f"compare aa0 {name} (1 run per side): exit {code}; work regressions: {', '.join(flagged) or 'none'}")
    code, _ = verdict(["compare", str(tmp / "aa0"), str(tmp / "aa1")])
    print(f"compare aa0 aa1 (A/A): exit {code}")
    for name in PLANTS:
        db = tmp / f"{name}.sqlite"
        subprocess.run([sys.executable, "-m", "harness", "history", "add", *[str(tmp / f"aa{i}") for i in
                        range(args.runs)], str(tmp / name), "--db", str(db)], cwd=ROOT, check=True,
                       capture_output=True)
        code, lines = verdict(["history", "show", "--db", str(db)])
        flagged = sorted({ln.split(" on ")[0].split(") ")[-1].split(" instr")[0] for ln in lines if "instr/inf" in ln})
        print(f"history show, {args.runs} A/A nights then {name}: exit {code}; instr/inf regressions: "
              f"{', '.join(flagged) or 'none'}")
    db = tmp / "aa.sqlite"
    subprocess.run([sys.executable, "-m", "harness", "history", "add", *[str(tmp / f"aa{i}") for i in
                    range(args.runs)], "--db", str(db)], cwd=ROOT, check=True, capture_output=True)
    got = subprocess.run([sys.executable, "-m", "harness", "history", "show", "--db", str(db)], cwd=ROOT,
                         capture_output=True, text=True)
    print(f"history show over the A/A nights alone: exit {got.returncode}")

    work_s = [a[1] for a in aa]
    windows_s = [a[2] for a in aa]
    ratio = statistics.median(w / e for w, e in zip(work_s, windows_s))
    print(f"\ncost: the run waited {statistics.median(work_s):.0f} s for the work pass (median of {args.runs} runs) "
          f"against {statistics.median(windows_s):.0f} s of energy windows in the same run ({ratio:.2f}x, median of "
          f"the runs' ratios; goal <= {goal:g}x: {'met' if ratio <= goal else 'not met'})")
    whole = statistics.median(a / w for a, w in zip(added, windows_s))
    print(f"cost, whole run: {statistics.median(added):.0f} s more wall time with the pass than without it (median "
          f"of {args.runs} interleaved pairs; the start's overlap included, and whatever it slowed) = {whole:.2f}x "
          f"the energy windows (goal <= {goal:g}x: {'met' if whole <= goal else 'not met'})")
    table = pd.read_csv(tmp / "aa0" / "table.csv").set_index("variant_id")
    both = table[["instructions_per_inference", "J_per_inference"]].dropna()
    rho, p, how = stats.spearman(both["instructions_per_inference"], both["J_per_inference"])
    print(f"agreement: Spearman rho {rho:.2f} (p {p:.2g}, {how}) between instructions/inference and J/inference "
          f"over {len(both)} variants of run aa0")
    print(both.sort_values("J_per_inference").to_string())


if __name__ == "__main__":
    main()
