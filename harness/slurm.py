"""A suite as a Slurm job array: one shard per array task, then a merge that waits for
all of them (``afterok``), all under one folder:

    DIR/slurm/array.sbatch    one task per shard: joulebench run SUITE --shard i/N --out DIR/shardI --no-plots
    DIR/slurm/merge.sbatch    joulebench merge DIR/shard1 ... DIR/shardN --out DIR/merged
    DIR/slurm/*.out, *.err    each task's log
    DIR/cache/                the artifact cache the tasks share: a parent is trained once
    DIR/shardI/, DIR/merged/  run folders

The scripts are plain bash with ``#SBATCH`` lines: edit them and ``sbatch`` them by hand
if you like. Running the command again resumes: a shard whose run finished (its table
written, or an empty shard) is kept; one that started is resumed (``--resume``); only
those are resubmitted, and the merge after them.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.files import ensure_dir, write_atomic


@dataclass(frozen=True)
class Job:
    suite: str
    shards: int
    out: Path
    quick: bool = False
    data_dir: str | None = None
    meter: str | None = None
    partition: str | None = None
    time: str | None = None
    cpus_per_task: int | None = None
    gpus_per_task: int | None = None
    exclusive: bool = True  # energy windows share no node with another job
    sbatch_args: tuple[str, ...] = field(default_factory=tuple)

    def shard_dir(self, i: int) -> Path:
        return self.out / f"shard{i}"


def sbatch() -> str:
    """The ``sbatch`` on PATH, or one line saying there is none (before anything is written)."""
    found = shutil.which("sbatch")
    if found is None:
        raise UserError("no sbatch on PATH: run this on a Slurm login node (or module load slurm); the array and "
                        "merge scripts can also be written and submitted by hand (docs/compare.md)")
    return found


def finished(run_dir: Path) -> bool:
    """A shard's run finished: its table written, or an empty shard."""
    env = run_dir / "environment.json"
    if (run_dir / "table.csv").is_file():
        return True
    try:
        return env.is_file() and bool(json.loads(env.read_text()).get("empty_shard"))
    except (OSError, ValueError):
        return False


def missing(job: Job) -> list[int]:
    return [i for i in range(1, job.shards + 1) if not finished(job.shard_dir(i))]


def _header(job: Job, name: str, log: str) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --output={job.out / 'slurm' / log}.out",
             f"#SBATCH --error={job.out / 'slurm' / log}.err"]
    for flag, value in (("partition", job.partition), ("time", job.time), ("cpus-per-task", job.cpus_per_task),
                        ("gpus-per-task", job.gpus_per_task)):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={value}")
    if job.exclusive:
        lines.append("#SBATCH --exclusive  # the energy windows share no node with another job")
    lines += [f"#SBATCH {arg}" for arg in job.sbatch_args]
    return lines


def array_script(job: Job, tasks: list[int]) -> str:
    python = shlex.quote(sys.executable)
    run = [python, "-m", "harness", "run", shlex.quote(str(Path(job.suite).resolve())), "--shard",
           f'"$SLURM_ARRAY_TASK_ID/{job.shards}"', "--cache-dir", shlex.quote(str(job.out / "cache")),
           "--no-plots"]  # the merge draws the figures of the whole run
    if job.quick:
        run.append("--quick")
    if job.data_dir:
        run += ["--data-dir", shlex.quote(str(Path(job.data_dir).resolve()))]
    if job.meter:
        run += ["--meter", shlex.quote(job.meter)]
    shard = shlex.quote(str(job.out)) + '/shard"$SLURM_ARRAY_TASK_ID"'
    return "\n".join(_header(job, f"joulebench-{Path(job.suite).stem}", "shard-%a") + [
        f"#SBATCH --array={','.join(map(str, tasks))}",
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd()))}",
        f"dir={shard}",
        "# a shard that started before is finished where it stopped; a new one starts",
        'if [ -e "$dir/environment.json" ]; then',
        f'  exec {" ".join(run)} --resume "$dir"',
        "else",
        f'  exec {" ".join(run)} --out "$dir"',
        "fi", ""])


def merge_script(job: Job) -> str:
    dirs = " ".join(shlex.quote(str(job.shard_dir(i))) for i in range(1, job.shards + 1))
    return "\n".join(_header(job, f"joulebench-{Path(job.suite).stem}-merge", "merge") + [
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd()))}",
        f"exec {shlex.quote(sys.executable)} -m harness merge {dirs} --out {shlex.quote(str(job.out / 'merged'))}",
        ""])


def _submit(command: list[str]) -> str:
    got = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if got.returncode != 0:
        raise UserError(f"sbatch refused the job ({(got.stderr or got.stdout).strip().splitlines()[-1:]}); "
                        f"fix the option it names, or edit and submit {command[-1]} by hand")
    return got.stdout.strip().split(";")[0]


@dataclass(frozen=True)
class Submitted:
    array: str | None  # the array's job id (None: every shard had finished)
    merge: str | None  # the merge's job id (None: already merged)
    tasks: list[int]


def submit(job: Job) -> Submitted:
    """Write the scripts and submit what is missing: the shards not finished, then the merge."""
    command = sbatch()
    merged = job.out / "merged"
    if finished(merged):
        return Submitted(None, None, [])
    tasks = missing(job)
    folder = ensure_dir(job.out / "slurm", "slurm folder")
    write_atomic(folder / "merge.sbatch", lambda p: p.write_text(merge_script(job)))
    array = None
    if tasks:
        write_atomic(folder / "array.sbatch", lambda p: p.write_text(array_script(job, tasks)))
        array = _submit([command, "--parsable", str(folder / "array.sbatch")])
    if merged.exists() and not finished(merged):  # a merge that failed half-way: redone from the shards
        shutil.rmtree(merged)
    after = [f"--dependency=afterok:{array}", "--kill-on-invalid-dep=yes"] if array else []
    merge = _submit([command, "--parsable", *after, str(folder / "merge.sbatch")])
    return Submitted(array, merge, tasks)


def wait(job: Job, submitted: Submitted, poll_s: float = 2.0, log=print) -> bool:
    """Poll ``squeue`` until the array and the merge have left the queue; True if merged."""
    ids = [j for j in (submitted.array, submitted.merge) if j]
    squeue = shutil.which("squeue")
    while ids and squeue:
        got = subprocess.run([squeue, "-h", "-o", "%i %T", "-j", ",".join(ids)], capture_output=True, text=True,
                             timeout=60)
        if not got.stdout.strip():
            break
        time.sleep(poll_s)
    ok = finished(job.out / "merged")
    if not ok:
        for i in missing(job):
            err = job.out / "slurm" / f"shard-{i}.err"
            tail = err.read_text(errors="replace").strip().splitlines()[-5:] if err.is_file() else ["(no log)"]
            log(f"joulebench: shard {i} did not finish; the end of {err}:")
            for line in tail:
                log(f"  {line}")
    return ok


#: What Slurm's energy figure is, said wherever it is shown.
ACCOUNTED = ("Slurm's own energy accounting (sacct ConsumedEnergyRaw, its acct_gather_energy plugin) for whole jobs: "
             "start-up, training, evaluation and measurement; a cross-check, not joulebench's measurement")


def accounted(job_ids: list[str]) -> dict:
    """Slurm's energy of the jobs (``sacct``), where its accounting is configured: the
    joules per job and in total, or why there is none (no sacct, no accounting storage,
    no energy plugin: ConsumedEnergyRaw empty or 0). Never 0 J as a figure."""
    found = shutil.which("sacct")
    if found is None:
        return {"unavailable": "no sacct on PATH", "what": ACCOUNTED}
    try:
        got = subprocess.run([found, "-n", "-P", "--noconvert", "-j", ",".join(job_ids),
                              "--format=JobID,ConsumedEnergyRaw"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"unavailable": f"sacct failed ({exc})", "what": ACCOUNTED}
    if got.returncode != 0:
        return {"unavailable": (got.stderr.strip().splitlines() or ["sacct failed"])[-1][:200], "what": ACCOUNTED}
    jobs: dict[str, float] = {}
    for line in got.stdout.splitlines():
        job, _, raw = line.partition("|")
        if "." in job or not raw.strip():  # a step (batch, extern): within its job's figure
            continue
        try:
            joules = float(raw)
        except ValueError:
            continue
        if joules > 0:
            jobs[job] = joules
    if not jobs:
        return {"unavailable": "sacct gave no energy for these jobs (no acct_gather_energy plugin here)",
                "what": ACCOUNTED}
    return {"jobs": jobs, "total_j": sum(jobs.values()), "missing": sorted(set(job_ids) - set(jobs)),
            "what": ACCOUNTED}

