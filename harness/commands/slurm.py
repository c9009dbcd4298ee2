"""``joulebench slurm SUITE --shards N --out DIR``: the suite as a Slurm job array (one
shard per task) and a merge after it; ``--wait`` follows them and prints the merged table.
Run it again to resume: only the shards that did not finish are resubmitted."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.options import bounded

NAME = "slurm"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="run a suite as a Slurm job array of shards, then merge them")
    p.add_argument("suite", help="a suite file, e.g. benchmarks/digits.yaml")
    p.add_argument("--shards", required=True, type=bounded(1, 10_000, int), help="array tasks (shards of the plan)")
    p.add_argument("--out", required=True, help="the folder of the scripts, logs, shared cache, shards and merge")
    p.add_argument("--quick", action="store_true", help="the suite's quick profile")
    p.add_argument("--data-dir", help="as for joulebench run")
    p.add_argument("--meter", help="as for joulebench run")
    p.add_argument("--partition")
    p.add_argument("--time", help="each task's time limit, as sbatch takes it (e.g. 02:00:00)")
    p.add_argument("--cpus-per-task", type=bounded(1, 4096, int))
    p.add_argument("--gpus-per-task", type=bounded(1, 64, int))
    p.add_argument("--no-exclusive", action="store_true",
                   help="let other jobs share a task's node (its windows then measure their work too)")
    p.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                   help="another #SBATCH line for both scripts, e.g. --sbatch-arg=--account=abc (repeatable)")
    p.add_argument("--wait", action="store_true", help="follow the jobs; print the merged table or a failed log")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import slurm
    from harness.errors import UserError
    from harness.files import check_creatable
    from harness.suite import load

    slurm.sbatch()  # no Slurm here: one line, nothing written
    load(args.suite, "quick" if args.quick else "full")  # a bad suite: one line, before any job
    for arg in args.sbatch_arg:
        if not arg.startswith("-") or not arg.isprintable():
            raise UserError(f"--sbatch-arg {arg!r} is not an sbatch option; give it as --sbatch-arg=--account=abc")
    for flag, value in (("--partition", args.partition), ("--time", args.time), ("--out", args.out)):
        # each lands on an #SBATCH line of a script: one printable line, no blanks sbatch would split on
        if value is not None and (not value.isprintable() or any(c.isspace() for c in value)):
            raise UserError(f"{flag} {value!r} holds a space or a control character; give one word (an #SBATCH "
                            "line takes it as is)")
    out = Path(args.out).resolve()
    check_creatable(out, "slurm folder")
    job = slurm.Job(args.suite, args.shards, out, args.quick, args.data_dir, args.meter, args.partition, args.time,
                    args.cpus_per_task, args.gpus_per_task, not args.no_exclusive, tuple(args.sbatch_arg))
    done = slurm.submit(job)
    if done.array is None and done.merge is None:
        print(f"joulebench: {out / 'merged'} is complete; nothing to submit", file=sys.stderr)
    else:
        if done.array:
            print(f"joulebench: submitted array job {done.array} (shards {','.join(map(str, done.tasks))} of "
                  f"{args.shards}); follow it with: squeue -j {done.array}", file=sys.stderr)
        print(f"joulebench: submitted merge job {done.merge}" + (f" (after {done.array})" if done.array else "")
              + f"; logs in {out / 'slurm'}", file=sys.stderr)
        if not args.wait:
            return 0
        if not slurm.wait(job, done, log=lambda s: print(s, file=sys.stderr)):
            print("joulebench: error: not merged; rerun the same command to resubmit what did not finish",
                  file=sys.stderr)
            return 1
    table = out / "merged" / "table.md"
    if args.wait or (done.array is None and done.merge is None):
        print(table.read_text() if table.is_file() else "")
    return 0
