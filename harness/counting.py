"""The process valgrind runs for the work pass (work.py says why and how):

    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \\
        python -m harness.counting JOB.json OUT.json

It rebuilds the group's variants from the artifact cache exactly as a run obtains them
(the same suite, workshop and runtimes, and the run's examples as the parent saved them:
``tasks.save``, so no data loader or its imports run again), stages each target's eval batches with
``measure.stage``, warms them up, switches instrumentation on, and counts each target's
passes between two collection toggles, dumping after each. OUT.json says which dump
holds which target. Nothing is recorded or measured for energy here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from harness import meters, runtimes, tasks
from harness.cache import ArtifactCache
from harness.device import CPU
from harness.errors import UserError, VariantSkipped
from harness.measure import Target, layout, stage
from harness.plan import expand
from harness.runner import seed_everything
from harness.suite import parse
from harness.workshop import Workshop


def instrumentation_on() -> None:
    """``callgrind_control -i on`` for this process. Valgrind takes the command while
    the process runs, so this loop keeps running (sleeping in short steps) until the
    tool has answered."""
    proc = subprocess.Popen(["callgrind_control", "-i", "on", str(os.getpid())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        time.sleep(0.002)
    if proc.returncode != 0:
        raise SystemExit(f"callgrind_control -i on exited {proc.returncode}")


def sample(target: Target, k: int | None) -> Target:
    """``k`` of the target's staged batches, evenly spaced (the first and the last
    included), or all of them: the same tensors the energy windows ran, fewer of them."""
    m = len(target.batches)
    if k is None or k >= m:
        return target
    picked = [target.batches[m // 2]] if k == 1 else [target.batches[round(i * (m - 1) / (k - 1))] for i in range(k)]
    return replace(target, batches=picked, n=sum(len(next(iter(b.values()))) for b in picked))


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    job_path, out_path = map(Path, argv)
    started = time.perf_counter()
    job = json.loads(job_path.read_text())
    suite = replace(parse(job["resolved"], job["path"], "full"), profile=job["profile"])
    task = tasks.load(Path(job["task"]))  # the run's examples, as the parent loaded them (no loader runs again)
    quiet = lambda s: None  # noqa: E731
    monitor = meters.build("estimate", log=quiet)
    specs = expand(suite)
    by_key = {s.key: s for s in specs}
    def never_rebuild(key: str, why: str) -> None:  # counting counts what the energy phase made, or nothing
        raise VariantSkipped(f"cache entry {key[:12]}: {why}; counting rebuilds nothing")

    cache = ArtifactCache(Path(job["cache"]), log=lambda s: print(s, file=sys.stderr), on_miss=never_rebuild)
    workshop = Workshop(suite, task, monitor, specs, cache, quiet, CPU, count_flops=False)
    cfg = suite.measure
    entries: list[dict[str, Any]] = []
    targets: list[tuple[dict[str, Any], Target]] = []
    wanted: dict[str, list[int]] = {}
    layouts: dict[str, str] = {}
    for key, size, digest in job["targets"]:
        wanted.setdefault(key, []).append(size)
        layouts[f"{key}@bs{size}"] = digest
    for key, sizes in wanted.items():
        spec = by_key[key]
        why = runtimes.create(spec.runtime).work_skip_on(task.kind)
        if why:
            entries += [{"name": f"{key}@bs{b}", "skipped": why} for b in sizes]
            continue
        seed_everything(spec.seed)
        try:
            made = workshop.obtain(spec)
            deployed = workshop.deploy(made)
        except VariantSkipped as why_not:
            entries += [{"name": f"{key}@bs{b}", "skipped": f"not rebuilt for counting: {why_not}"} for b in sizes]
            continue
        for b in sizes:
            target = stage(f"{key}@bs{b}", deployed.deployment.runnable, made.eval_data, cfg, CPU.torch, b)
            if layouts[target.name] and layout(target) != layouts[target.name]:
                entries.append({"name": target.name, "skipped": "not counted: the batches staged for counting differ "
                                "from the energy windows' (values, shapes or strides)"})
                continue
            of = len(target.batches)
            target = sample(target, job.get("batches"))
            entry = {"name": target.name, "passes": job["passes"], "inferences": job["passes"] * target.n,
                     "batches": [len(target.batches), of] if len(target.batches) < of else None}
            entries.append(entry)
            targets.append((entry, target))
    with torch.inference_mode():
        for _, target in targets:  # warm: allocations, kernel selection, lazy initialisation
            for _ in range(cfg.warmup):
                target.one_pass()
    loaded = time.perf_counter()
    instrumentation_on()
    with torch.inference_mode():
        for dump, (entry, target) in enumerate(targets, start=1):
            t0 = time.perf_counter()
            torch._C._valgrind_toggle()
            for _ in range(job["passes"]):
                target.one_pass()
            torch._C._valgrind_toggle_and_dump_stats()
            entry["dump"] = dump
            entry["count_s"] = time.perf_counter() - t0
    counted = time.perf_counter()
    out_path.write_text(json.dumps({"targets": entries, "load_s": loaded - started, "count_s": counted - loaded}))
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except UserError as exc:
        print(f"joulebench counting: {exc}", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: under instrumentation it costs more than the counting
