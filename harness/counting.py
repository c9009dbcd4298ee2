"""The process valgrind runs for the work pass (work.py says why and how):

    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no python -m harness.counting

One process serves the whole run: it imports once, then takes one job per group of
variants on stdin (a line naming JOB.json and OUT.json) and answers on stdout. For each
job it rebuilds the group's variants from the artifact cache exactly as a run obtains them
(the same suite, workshop and runtimes, and the run's examples as the parent saved them:
``tasks.save``, so no data loader or its imports run again), stages each target's eval batches with
``measure.stage`` and samples them, all uninstrumented; then ``counting_forks`` warms each
target up and counts its passes between two collection toggles in a fork of its own,
which dumps once and exits (instrumentation is on only in the forks and the process that
warms and takes them). OUT.json says which fork, so which dump, holds which target.
Nothing is recorded or measured for energy here.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch

from harness import meters, runtimes, tasks, work
from harness.cache import ArtifactCache
from harness.counting_forks import forked
from harness.device import CPU
from harness.errors import UserError, VariantSkipped
from harness.measure import Target, layout, stage
from harness.plan import expand
from harness.runner import seed_everything
from harness.suite import parse
from harness.workshop import Workshop


def sample(target: Target, k: int | None) -> Target:
    """``k`` of the target's staged batches, evenly spaced (the first and the last
    included; the middle one for k = 1), or all of them: the same tensors the energy
    windows ran, fewer of them."""
    m = len(target.batches)
    if k is None or k >= m:
        return target
    picked = [target.batches[m // 2]] if k == 1 else [target.batches[round(i * (m - 1) / (k - 1))] for i in range(k)]
    return replace(target, batches=picked, n=sum(size(b) for b in picked))


def size(batch: dict[str, Any]) -> int:
    return len(next(iter(batch.values())))


def shapes(batches: list[Any]) -> list[Any]:
    """One batch of each distinct shape, in order: what a warm-up has to run (kernels are
    chosen and primitives built once per shape)."""
    seen: dict[tuple, Any] = {}
    for b in batches:
        seen.setdefault(tuple((k, tuple(getattr(v, "shape", ()))) for k, v in sorted(b.items())), b)
    return list(seen.values())


@contextmanager
def no_init(wanted: bool) -> Iterator[None]:
    """torch's and transformers' weight-init functions as no-ops while the variants are
    rebuilt from the cache (transformers' ``no_init_weights``): every persistent tensor is
    then loaded strictly from the cache, and non-persistent buffers come from their
    creation ops (BERT's position and token-type ids: checked equal, and the outputs
    equal, against a normal rebuild). Under valgrind the init is emulated AVX2 work:
    about 6 s per BERT-tiny skeleton. Only on a text task, where transformers is imported
    anyway (importing it under valgrind costs more than a small CNN's init), and only
    where it has ``no_init_weights`` (transformers 5)."""
    if not wanted:
        yield
        return
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        yield
        return
    with no_init_weights():
        yield


class Counting:
    """This process's state across the run's jobs (one run: one suite, one task): the
    suite parsed and the variants' workshop built at the first job."""

    def __init__(self) -> None:
        self.built: tuple[dict[str, Any], Workshop] | None = None

    def workshop(self, job: dict[str, Any]) -> tuple[dict[str, Any], Workshop]:
        if self.built is None:
            suite = replace(parse(job["resolved"], job["path"], "full"), profile=job["profile"])
            task = tasks.load(Path(job["task"]))  # the run's examples as the parent loaded them (no loader runs again)
            specs = expand(suite)

            def never_rebuild(key: str, why: str) -> None:  # counting counts what the energy phase made, or nothing
                raise VariantSkipped(f"cache entry {key[:12]}: {why}; counting rebuilds nothing")

            cache = ArtifactCache(Path(job["cache"]), log=lambda s: print(s, file=sys.stderr), on_miss=never_rebuild)
            quiet = lambda s: None  # noqa: E731
            shop = Workshop(suite, task, meters.build("estimate", log=quiet), specs, cache, quiet, CPU,
                            count_flops=False)
            self.built = ({s.key: s for s in specs}, shop)
        return self.built

    def job(self, job: dict[str, Any], out: Path) -> dict[str, Any]:
        """Rebuild, stage and sample the job's targets uninstrumented, then warm each one
        up and count its passes between two collection toggles in a fork of its own
        (``forked``; one dump per target). ``out``: where the answer will be written (the
        forks write beside it)."""
        started = time.perf_counter()
        by_key, workshop = self.workshop(job)
        cfg = workshop.suite.measure
        entries: list[dict[str, Any]] = []
        targets: list[tuple[dict[str, Any], Target]] = []
        wanted: dict[str, list[tuple[int, str]]] = {}
        for key, bs, digest in job["targets"]:
            wanted.setdefault(key, []).append((bs, digest))
        for key, sizes in wanted.items():
            spec = by_key[key]
            why = runtimes.create(spec.runtime).work_skip_on(workshop.task.kind)
            if why:
                entries += [{"name": f"{key}@bs{b}", "skipped": why} for b, _ in sizes]
                continue
            seed_everything(spec.seed)
            try:
                with no_init(workshop.task.kind == "text"):  # the cached weights are loaded strictly over it
                    made = workshop.obtain(spec)
                deployed = workshop.deploy(made)
            except VariantSkipped as why_not:
                entries += [{"name": f"{key}@bs{b}", "skipped": f"not rebuilt for counting: {why_not}"} for b, _ in sizes]
                continue
            for b, digest in sizes:
                target = stage(f"{key}@bs{b}", deployed.deployment.runnable, made.eval_data, cfg, CPU.torch, b)
                if digest and layout(target) != digest:
                    entries.append({"name": target.name, "skipped": "not counted: the batches staged for counting "
                                    "differ from the energy windows' (values, shapes or strides)"})
                    continue
                of = len(target.batches)
                target = sample(target, job.get("batches"))
                entry = {"name": target.name, "passes": job["passes"], "inferences": job["passes"] * target.n,
                         "batches": [len(target.batches), of] if len(target.batches) < of else None}
                entries.append(entry)
                targets.append((entry, target))
        gc.collect()  # the collector off while counting (as timeit does): when it runs depends on the
        gc.disable()  # process's whole allocation history (imports, what else the process loaded)

        def warm(target: Target) -> None:  # allocations, kernel selection, lazy initialisation (once per shape)
            with torch.inference_mode():
                for _ in range(cfg.warmup):
                    for batch in shapes(target.batches):
                        target.runnable(batch)

        loaded = time.perf_counter()
        if targets:
            forked(targets, job["passes"], out, job["forks"], warm)
        gc.enable()
        return {"targets": entries, "load_s": loaded - started, "count_s": time.perf_counter() - loaded}


def main(argv: list[str]) -> int:
    """Import the modules ``argv`` names (what the suite's variants load when rebuilt:
    paid while the run works between windows, not after them), say ``ready TIME``, then
    serve the parent's jobs, one line each on stdin (``JOB.json OUT.json``), answering
    each with a line on stdout once OUT.json is written; an empty line or end of input ends."""
    torch.set_num_threads(1)
    for name in [*work.ALWAYS_IMPORTED, *argv]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # not installed, or another version's layout: the rebuild imports what it needs, or says why not
    counting = Counting()
    print(f"ready {time.time()}", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        job_path, out_path = map(Path, line.split())
        try:
            out = counting.job(json.loads(job_path.read_text()), out_path)
        except UserError as exc:
            out = {"error": str(exc)}
        out_path.write_text(json.dumps(out))
        print("done", flush=True)
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
