"""The process valgrind runs for the work pass (work.py says why and how):

    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no python -m harness.counting

One process serves the whole run: it imports once, then takes one job per group of
variants on stdin (a line naming JOB.json and OUT.json) and answers on stdout. For each
job it rebuilds the group's variants from the artifact cache exactly as a run obtains them
(the same suite, workshop and runtimes, and the run's examples as the parent saved them:
``tasks.save``, so no data loader or its imports run again), stages each target's eval batches with
``measure.stage``, warms them all up, switches instrumentation on, and counts each
target's passes between two collection toggles in a fork of its own (as many at once as
the process has CPUs), which dumps once and exits (instrumentation is on only while a
job counts). OUT.json says which fork, so which dump, holds which target. Nothing is
recorded or measured for energy here.
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

from harness import callgrind, meters, runtimes, tasks
from harness.cache import ArtifactCache
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


def forked(targets: list[tuple[dict[str, Any], Target]], passes: int, out: Path, at_once: int,
           order: list[int] | None = None) -> None:
    """Each target's passes counted in a fork of this process. Every fork is taken first,
    one after another, after every target was rebuilt, staged and warmed and before any was
    counted; each waits on a pipe of its own until it is let go, at most ``at_once`` at a
    time, in ``order`` (default: as listed). A target's count so starts from the same state
    whichever targets precede it, in whatever order they are let go and however many count
    beside it (nothing a count does stays in the process; its allocations and caches leave
    with its fork; and the process does nothing between the forks but take them: forked
    while earlier ones were reaped, the last targets' counts moved with the heap's layout,
    quick digits' mlp rows by 0.6% once the slowest were let go first). The fork toggles
    collection around its passes, dumps once (callgrind names the dump ``cg.out.PID.1``) and
    exits; ``entry`` gets the fork's pid and its seconds, or ``skipped`` where it failed. A
    fork whose pipe closes unwritten (this process gone) leaves without counting. (Warming a
    target's shapes in its fork instead, beside the other forks, was slower on quick digits,
    38 s against 35 s: each fork translated the same code again.)"""
    waiting: list[tuple[int, int, dict[str, Any], Path]] = []
    for i, (entry, target) in enumerate(targets):
        said = out.parent / f"{out.name}.fork{i}.json"
        go, let_go = os.pipe()
        pid = os.fork()
        if pid == 0:  # the fork: wait to be let go, count, say how long, leave without any teardown
            code = 1
            try:
                for _, other, _, _ in waiting:
                    os.close(other)  # only the process holds each pipe's end: its death is every fork's EOF
                os.close(let_go)
                if os.read(go, 1):
                    t0 = time.perf_counter()
                    with torch.inference_mode():
                        torch._C._valgrind_toggle()
                        for _ in range(passes):
                            target.one_pass()
                        torch._C._valgrind_toggle_and_dump_stats()
                    said.write_text(json.dumps({"count_s": time.perf_counter() - t0}))
                    code = 0
            finally:
                os._exit(code)
        os.close(go)
        waiting.append((pid, let_go, entry, said))
    queue = [waiting[i] for i in (order if order is not None else range(len(waiting)))]
    running: dict[int, tuple[dict[str, Any], Path]] = {}
    while queue or running:
        while queue and len(running) < at_once:
            pid, let_go, entry, said = queue.pop(0)
            os.write(let_go, b"1")
            os.close(let_go)
            running[pid] = (entry, said)
        pid, status = os.wait()
        entry, said = running.pop(pid)
        if status == 0 and said.exists():
            entry.update(json.loads(said.read_text()), pid=pid)
            said.unlink()
        else:
            entry["skipped"] = f"not counted: its counting fork ended with wait status {status}"


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
        """Rebuild, stage, sample and warm the job's targets uninstrumented, then count each
        target's passes between two collection toggles in a fork of its own (``forked``;
        one dump per target). ``out``: where the answer will be written (the forks
        write beside it)."""
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
        warm_s = []
        with torch.inference_mode():
            for _, target in targets:  # warm: allocations, kernel selection, lazy initialisation (once per shape)
                t0 = time.perf_counter()
                for _ in range(cfg.warmup):
                    for batch in shapes(target.batches):
                        target.runnable(batch)
                warm_s.append(time.perf_counter() - t0)
        # let go slowest first (by its warm-up, uninstrumented): the forks share the CPUs evenly to the
        # end instead of the last slow target counting alone (quick digits: counting 15 s against 17-18 s
        # in the order the suite lists, two interleaved pairs)
        slowest = sorted(range(len(targets)), key=lambda i: -warm_s[i])
        loaded = time.perf_counter()
        if targets:
            callgrind.request(callgrind.START_INSTRUMENTATION)  # the forks inherit it (a client request: it
            forked(targets, job["passes"], out, job["forks"], slowest)  # reaches only the process that makes it)
            callgrind.request(callgrind.STOP_INSTRUMENTATION)  # the next job's loading runs uninstrumented again
        gc.enable()
        return {"targets": entries, "load_s": loaded - started, "count_s": time.perf_counter() - loaded}


def main(argv: list[str]) -> int:
    """Import the modules ``argv`` names (what the suite's variants load when rebuilt:
    paid while the run works between windows, not after them), say ``ready TIME``, then
    serve the parent's jobs, one line each on stdin (``JOB.json OUT.json``), answering
    each with a line on stdout once OUT.json is written; an empty line or end of input ends."""
    torch.set_num_threads(1)
    for name in ["numpy.random", *argv]:  # numpy.random: seed_everything's first call would import it
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
