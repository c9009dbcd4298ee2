"""RunSpecs -> records: for each seed, obtain every variant (trained, compressed, or from
the cache) and evaluate it on the held-out split, then measure their inference energy
in interleaved rounds and append one complete record per variant.

Everything that can fail on bad input (suite, data, meter) fails before the output
directory is created, so a mistake never leaves a half-written run behind. A killed run
leaves whole lines only; ``resume`` repairs a torn tail and does only what is missing.
A run holds an exclusive lock on its directory while it writes, so a second run or
resume of the same directory stops with one line instead of interleaving records.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from harness import environment, preflight, rundir, work
from harness.cache import ArtifactCache
from harness.config import Suite
from harness.device import CPU, Device, prepare as prepare_device
from harness.errors import UserError, VariantSkipped
from harness.evaluate import evaluate
from harness.counts import Counter
from harness.measure import SETTLE_MAX_S, Target, calibrate, layout, measure_rounds, stage
from harness.meters import EnergyMonitor, Measurement
from harness.plan import RunSpec, describe, expand, shard
from harness.progress import Progress
from harness.recording import Recorder
from harness.records import RunRecord
from harness.tasks import TASKS, TaskData
from harness.train import unsupported_precision
from harness.environment import now
from harness.made import Deployed, Made
from harness.workshop import Workshop



def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_task(suite: Suite, data_dir: Path | None) -> TaskData:
    """The task's data; with a validation split carved out of its training split where
    the suite needs one (curves, a sweep). The eval split is never touched."""
    return carved(suite, TASKS.get(suite.task.name)(data_dir, **suite.task.options))


def carved(suite: Suite, task: TaskData) -> TaskData:
    """``task`` with the suite's validation split carved out of its training split, if any."""
    if suite.validation is not None:
        v = suite.validation
        try:
            task = task.carve(v.fraction, v.max_examples, v.seed)
        except ValueError as exc:
            raise UserError(f"{suite.path} validation: {exc}; change validation.fraction") from None
    return task


@dataclass(frozen=True)
class Pending:
    """A variant obtained and evaluated, waiting for its inference windows: one target
    per measured batch size, the table's own first."""

    record: dict[str, Any]
    targets: list[Target]


class Runner:
    def __init__(self, suite: Suite, task: TaskData, monitor: EnergyMonitor, out_dir: Path,
                 cache: ArtifactCache | None = None, shard_spec: tuple[int, int] | None = None,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr), device: Device = CPU,
                 command: list[str] | None = None) -> None:
        self.suite, self.task, self.monitor, self.out_dir, self.log = suite, task, monitor, out_dir, log
        self.command = command
        self.device = device
        self.specs = expand(suite)
        self.todo = shard(self.specs, *shard_spec) if shard_spec else self.specs
        self.shard_spec = shard_spec
        for spec in self.specs:  # before anything is written: a precision this device cannot train
            why = unsupported_precision(spec.train.precision, device.torch)
            if why:
                raise UserError(f"{spec.variant_id}: {why}")
        self.workshop = Workshop(suite, task, monitor, self.specs, cache, log, device)
        self.work_skip: str | None = None  # why the suite's work pass cannot count here
        self.work_forks = 1  # how many targets the work pass counts at once
        if suite.measure.work != work.NONE:
            self.work_forks = work.forks()  # a bad $JOULEBENCH_WORK_FORKS stops the run here, before its folder exists
            self.work_skip = work.unavailable(device.torch.type)
            if self.work_skip is None and cache is None:
                self.work_skip = ("instructions not counted: the work pass rebuilds every variant from the artifact "
                                  "cache; run without --no-cache")
        self.counter = Counter(suite.measure.batch_size, cache)
        self.work_process = work.Process(task, log)  # ended with the run (run_all), or by a refusal below
        measured = [s for s in self.todo if s.trial is None]
        if measured and suite.measure.work != work.NONE and not self.work_skip:
            # begun before the preflight and the run's start: its start-up (valgrind_start.py) overlaps
            # them and the run's own work between windows; it is stopped in every window
            self.monitor.hold(self.work_process.begin(work.imports(measured, task.kind)))
        try:
            preflight.check(self.suite, self.task, self.device, self.specs, self.workshop.build)
        except BaseException:
            self.work_process.close()
            raise
        self.recorder: Recorder | None = None  # once the run folder's environment is written (start)
        self.folder = rundir.Writer(out_dir, log)

    def start(self, resume: bool = False) -> set[str]:
        """Open the run dir (rundir.Writer); returns the run keys already recorded (on resume)."""
        resume, recorded = self.folder.open(resume, self.suite.config_hash())
        done = {r.run_key for r in recorded}
        for r in recorded:  # a recorded trial's result serves the selection without retraining
            if r.status == "trial" and (r.variant_id, r.seed) in self.workshop.by_id:
                self.workshop.note_trial(self.workshop.by_id[(r.variant_id, r.seed)],
                                         r.curve.model_dump() if r.curve else None,
                                         sum(w.energy_j for w in r.train.windows()))
        if resume:
            self.log(f"  resume: {len(done)} runs already recorded, {len([s for s in self.todo if s.key not in done])} to go")
        if self.work_skip:
            self.log(f"  work pass: {self.work_skip}")
        env = environment.environment(self.monitor.method, self.monitor.formulas(), self.device.describe())
        env["idle_w"] = None  # measured below, after the environment is on disk
        env["suite"] = {"name": self.suite.name, "path": self.suite.path, "profile": self.suite.profile,
                        "config_hash": self.suite.config_hash(), "resolved": self.suite.resolved}
        env["data"] = {"source": self.task.source, "eval_split": self.task.eval_split,
                       "n_train": len(self.task.train), "n_eval": len(self.task.eval), **self.task.info,
                       "train_sha256": self.workshop.data_fp}
        env["shard"] = list(self.shard_spec) if self.shard_spec else None
        env["command"] = self.command  # as typed (paths relative to where it was run)
        # written before any measurement: a kill from here on (the idle baseline included)
        # leaves a run directory that --resume accepts; a resumed run keeps its identity
        env = self.folder.environment(env, resume)
        self.recorder = Recorder(self.suite, self.task, self.device,
                                 {"method": self.monitor.method, "formulas": self.monitor.formulas()},
                                 environment.fingerprint(env))
        prepare_device(self.device)  # the CUDA context exists before idle is measured, as in every window
        idle = self.measure_idle()
        if env.get("idle_w") is None:  # a new run, or one killed before its idle baseline
            self.folder.update_environment({**env, "idle_w": idle})
        return done

    def measure_idle(self) -> dict[str, float]:
        seconds = self.suite.measure.idle_s
        if seconds <= 0:
            return {}
        idle = self.monitor.measure_idle(seconds)
        self.log(f"  idle baseline over {seconds:g} s: {sum(idle.values()):.3g} W ("
                 + ", ".join(f"{c} {w:.3g} W" for c, w in idle.items()) + ")")
        return idle

    def run_all(self, resume: bool = False) -> Path:
        """Seed by seed: obtain and evaluate every variant of the seed, measure them all in
        interleaved rounds (measure.py says why), then append one record per variant.
        A skipped variant is recorded at once; a kill loses at most the seed's windows,
        and its trained variants come back from the cache on resume."""
        try:
            return self._run(self.start(resume))
        finally:
            self.work_process.close()
            self.folder.close()

    def _run(self, done: set[str]) -> Path:
        todo = [s for s in self.todo if s.key not in done]
        if not any(s.trial is None for s in todo):
            self.work_process.close()  # a resume with nothing left to measure: nothing to count
        progress = Progress(len(todo))
        for spec in (s for s in todo if s.trial is not None):  # a sweep's trials: all of them before any selection
            self.log(progress.step(f"{self.suite.name}: {spec.key} (sweep trial: {describe(spec.trial)})"))
            self.folder.append(self.trial(spec))
        todo = [s for s in todo if s.trial is None]
        # the sweep's choice made (its trials obtained above), every spec's artifact key and
        # identity are computed once, before anything is made (lineage.py)
        self.workshop.keys.compute(todo)
        seeds = list(dict.fromkeys(s.seed for s in todo))
        for g, seed in enumerate(seeds):
            if self.suite.measure.idle_between_seeds and g > 0:
                self.measure_idle()
            pending: list[Pending] = []
            for spec in (s for s in todo if s.seed == seed):
                self.log(progress.step(f"{self.suite.name}: {spec.key}"))
                made = self.prepare_one(spec)
                if isinstance(made, Pending):
                    pending.append(made)
                else:
                    self.folder.append(made)
            if not pending:
                continue
            cfg = self.suite.measure
            sizes = cfg.all_batch_sizes()
            self.log(f"  measuring {len(pending)} variant(s) of seed {seed}"
                     + (f" at batch sizes {', '.join(map(str, sizes))}" if len(sizes) > 1 else "")
                     + f": {cfg.repetitions} interleaved rounds of one window each "
                     f"(>= {max(cfg.min_window_s, self.monitor.min_window_s()):g} s) on {self.device.name}")
            targets = [calibrate(t, cfg, self.monitor) for p in pending for t in p.targets]
            results = measure_rounds(targets, cfg, self.monitor,
                                     desc=f"measure seed {seed}",
                                     start=self.suite.seeds.index(seed) * cfg.repetitions)
            unsettled = sum(r.unsettled for r in results)
            if unsettled:
                self.log(f"  WARNING: {unsettled} of {sum(len(r.windows) for r in results)} window(s) ended with another "
                         f"thread of this process still working after {SETTLE_MAX_S:g} s (a plugin's thread, a pool "
                         "left running?): its work is inside them")
            counted = self.count_work(pending)
            for p in pending:
                mine, results = results[:len(p.targets)], results[len(p.targets):]
                self.folder.append(self.recorder.finished(p.record, mine, counted))
        return self.folder.records_path

    def trial(self, spec: RunSpec) -> RunRecord:
        """A sweep trial: obtained (trained and validated), recorded."""
        started = now()
        seed_everything(spec.seed)
        made = self.workshop.obtain(spec)
        self.log(f"  validation accuracy {made.trial['val_accuracy']:.4f}; trial energy {made.trial['energy_J']:.1f} J "
                 f"({made.windows['create'].method}{', cached' if made.cached else ''})")
        return self.recorder.trial(spec, made, started)

    def prepare_one(self, spec: RunSpec) -> RunRecord | Pending:
        """One variant, top to bottom, each step taking the one before's value: obtain
        (make, or load from the cache or a file) -> deploy under its runtime -> evaluate
        on the eval split -> count (FLOPs, weights, bytes) -> stage its batches for the
        inference windows. A variant that cannot run here is a skip record."""
        started = now()
        seed_everything(spec.seed)
        t0 = time.perf_counter()
        try:
            made = self.workshop.obtain(spec)
            deployed = self.workshop.deploy(made)
            windows = self._creation_windows(made, deployed, time.perf_counter() - t0)
            runnable = deployed.deployment.runnable
            result = evaluate(runnable, made.eval_data, self.suite.measure.batch_size, self.task.num_labels)
        except VariantSkipped as why:
            self.log(f"  skipped {spec.variant_id}: {why}")
            return self.recorder.skipped(self.workshop.resolve(spec), str(why), started)
        self.log(f"  eval accuracy {result.accuracy:.4f} on {result.n} held-out examples"
                 + (f" (under {made.spec.runtime.name})" if deployed.window is not None else ""))
        counts = self.counter.count(made, deployed)
        cfg = self.suite.measure
        targets = [stage(f"{made.spec.key}@bs{b}", runnable, made.eval_data, cfg, self.device.torch, b)
                   for b in cfg.all_batch_sizes()]  # warmed up and calibrated right before the rounds
        return Pending(self.recorder.made(made, deployed, windows, result, counts, started), targets)

    def _creation_windows(self, made: Made, deployed: Deployed, seconds: float) -> dict[str, Measurement]:
        """The variant's creation windows (its own, and deploying it: creation work too),
        logged as made, fetched from the cache, or made outside joulebench."""
        elsewhere = made.elsewhere or deployed.elsewhere  # made outside joulebench: its creation is not measured
        windows = dict(made.windows)
        if deployed.window is not None:  # deploying is creation work: the variant's own, or on top of its technique's
            windows["create" if "create" not in windows and elsewhere is None else "runtime"] = deployed.window
        create_j = sum(w.energy_j for w in windows.values())
        cached = made.cached or deployed.cached
        if elsewhere is not None:
            self.log(f"  loaded in {seconds:.1f} s; {elsewhere.note()}"
                     + (f"; {create_j:.1f} J measured deploying it" if windows else ""))
        else:
            self.log(f"  {'fetched' if cached else 'created'} in {seconds:.1f} s; "
                     f"creation energy {create_j:.1f} J ({windows['create'].method}"
                     f"{', measured ' + cached['measured_at'] if cached else ''})")
        return windows

    def count_work(self, pending: list[Pending]) -> dict[str, dict[str, Any]]:
        """The work pass over a group's targets, after its energy rounds (work.py): each
        target's work block by name; none where the suite asks for no work pass."""
        cfg = self.suite.measure
        if cfg.work == work.NONE:
            return {}
        requests = [work.Request(p.record["run_key"], t.batch_size, layout(t)) for p in pending for t in p.targets]
        if self.work_skip:
            return {r.name: work.skipped(self.work_skip) for r in requests}
        job = {"resolved": dict(self.suite.resolved), "path": self.suite.path, "profile": self.suite.profile,
               "cache": str(self.workshop.cache.root), "passes": cfg.work_passes,
               "batches": cfg.work_batches, "forks": self.work_forks}
        self.log(f"  work pass: counting instructions of {len(requests)} target(s) under valgrind "
                 f"(one process; each target in a fork of it, one thread, {self.work_forks} at once)")
        try:
            return self.work_process.count(job, requests)
        except work.WorkFailed as exc:
            self.log(f"  work pass failed: {exc}")
            return {r.name: work.skipped(f"counting failed: {exc}") for r in requests}

