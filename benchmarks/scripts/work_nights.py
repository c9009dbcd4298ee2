"""Benchmark (prints figures; not a test): nights of a suite with the work pass, a
planted regression from a given night, and ``history show`` after each night.

Night k runs ``joulebench run SUITE --work instructions`` (the artifact cache kept
between nights, so a night re-measures inference and recounts, and retrains nothing)
and imports it into a history database. From night ``--plant-from`` on, every process
of the run (the measured loop and the counting process alike) gets a ``sitecustomize``
that runs every 4th inference batch of each pass twice: +25% work in every variant, as
the committed history reference planted by a commit. After each night ``history show``
is written to ``OUT/show-after-nightNN.txt`` with its exit code.

    python benchmarks/scripts/work_nights.py OUT [benchmarks/digits.yaml] [--nights 10] [--plant-from 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from work_check import PLANTS  # noqa: E402  (the same planted +25%: every 4th batch twice)

PLANT = PLANTS["every4th"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("suite", nargs="?", default="benchmarks/digits.yaml")
    ap.add_argument("--nights", type=int, default=10)
    ap.add_argument("--plant-from", type=int, default=7)
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "nightly.sqlite"
    plant = Path(tempfile.mkdtemp())
    (plant / "sitecustomize.py").write_text(PLANT)
    runs = Path(tempfile.mkdtemp())
    for night in range(1, args.nights + 1):
        env = dict(os.environ)
        if night >= args.plant_from:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plant), env.get("PYTHONPATH")]))
        run_dir = runs / f"night{night:02d}"
        subprocess.run([sys.executable, "-m", "harness", "run", args.suite, "--out", str(run_dir), "--work",
                        "instructions", *([] if args.full else ["--quick"])], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "harness", "history", "add", str(run_dir), "--db", str(db)], cwd=ROOT,
                       check=True, capture_output=True)
        shown = subprocess.run([sys.executable, "-m", "harness", "history", "show", "--db", str(db)], cwd=ROOT,
                               capture_output=True, text=True)
        (args.out / f"show-after-night{night:02d}.txt").write_text(shown.stdout + f"\n(exit {shown.returncode})\n")
        caught = [ln for ln in shown.stdout.splitlines() if ln.startswith("REGRESSION")]
        print(f"night {night:2d}{' (planted)' if night >= args.plant_from else ''}: history show exit "
              f"{shown.returncode}; {len(caught)} regression line(s)"
              + "".join(f"\n    {ln}" for ln in caught), flush=True)


if __name__ == "__main__":
    main()
