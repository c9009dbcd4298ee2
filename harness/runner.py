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

import fcntl
import os
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from harness import environment, records, runtimes, work
from harness.rundir import check_environment
from harness.cache import ArtifactCache
from harness.compress import TECHNIQUES, Technique
from harness.config import Suite
from harness.device import CPU, Device, prepare as prepare_device
from harness.errors import UserError, VariantSkipped
from harness.evaluate import EvalResult, evaluate
from harness.files import (digest, ensure_dir, open_nofollow, read_json, refuse_links_in, write_atomic,
                           write_json_atomic)
from harness.counts import Counter, Counts
from harness.measure import InferenceResult, Target, layout, measure_rounds, prepare
from harness.meters import EnergyMonitor, Measurement
from harness.outside import MadeElsewhere
from harness.plan import RunSpec, describe, expand, shard
from harness.records import RunRecord
from harness.tasks import TASKS, TaskData
from harness.train import preload as train_preload, unsupported_precision
from harness.workshop import Deployed, Made, Workshop, now

LOCK = records.LOCK


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_task(suite: Suite, data_dir: Path | None) -> TaskData:
    """The task's data; with a validation split carved out of its training split where
    the suite needs one (curves, a sweep). The eval split is never touched."""
    task = TASKS.get(suite.task.name)(data_dir, **suite.task.options)
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


def _every_batch_shape(enc: Any, sizes: tuple[int, ...] | list[int]) -> list[dict[str, torch.Tensor]]:
    """One batch of every size a run feeds a model: each batch size (at most the split's
    length) and each last, shorter batch, taken from the split's own buckets (so token
    batches keep the widths the run will use)."""
    out, seen = [], set()
    for b in sizes:
        for idx in enc.buckets(b):
            if len(idx) not in seen:
                seen.add(len(idx))
                out.append(enc.batch(idx))
    return out


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
        self.preflight()
        self.work_skip: str | None = None  # why the suite's work pass cannot count here
        if suite.measure.work != work.NONE:
            self.work_skip = work.unavailable(device.torch.type)
            if self.work_skip is None and cache is None:
                self.work_skip = ("instructions not counted: the work pass rebuilds every variant from the artifact "
                                  "cache; run without --no-cache")
        self.counter = Counter(suite.measure.batch_size)
        self.fingerprint: dict[str, Any] = {}
        self._lock_fd: int | None = None

    def preflight(self) -> None:
        """Checks a technique or a runtime makes against its parent's architecture (a
        checkpoint's keys and shapes, an ONNX file's inputs), before the run folder
        exists: one fresh module (and encoder) per architecture. First, whether each
        model fits the memory the device has free (fits.py)."""
        from harness import fits
        from harness.models import MODELS

        fits.check(self.suite, self.task, self.device, lambda m: MODELS.get(m.family)(self.task, **m.options))
        bundles: dict[str, Any] = {}
        seen: set[str] = set()
        for spec in self.specs:  # a given runtime file: its inputs are the ones the encoder gives
            runtime = runtimes.create(spec.runtime)
            if spec.variant_id in seen or runtime.given() is None:
                continue
            seen.add(spec.variant_id)
            if spec.model.name not in bundles:
                bundles[spec.model.name] = self.workshop.build(spec.model)
            enc = bundles[spec.model.name].encode(self.task.eval)
            runtime.preflight(list(enc.features), f"{self.suite.path} variant {spec.variant_id!r}",
                              _every_batch_shape(enc, self.suite.measure.all_batch_sizes()), self.task.num_labels)
        built = {name: b.module for name, b in bundles.items()}
        for v in self.suite.variants:
            technique = TECHNIQUES.get(v.technique)() if v.technique else None
            if technique is None or type(technique).preflight is Technique.preflight:
                continue
            model = next((m for m in self.suite.models if m.name == v.parent), None)
            if model is None:  # a variant parent's shapes exist once it is made: checked then
                continue
            if model.name not in built:
                built[model.name] = self.workshop.build(model).module
            technique.preflight(v.params, built[model.name], f"{self.suite.path} variant {v.id!r}")

    def lock(self) -> None:
        """Hold an exclusive lock on the run dir until the process ends (or ``unlock``)."""
        fd = open_nofollow(self.out_dir / LOCK, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"another joulebench process is writing {self.out_dir} (it holds {self.out_dir / LOCK}); "
                            "wait for it to finish, or pass another --out") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def start(self, resume: bool = False) -> set[str]:
        """Prepare the run dir; returns the run keys already recorded (on resume)."""
        path = self.out_dir / records.RECORDS
        env_path = self.out_dir / records.ENVIRONMENT
        done: set[str] = set()
        if resume and not env_path.is_file():
            if os.path.lexists(path) or not self.out_dir.is_dir():
                raise UserError(f"{self.out_dir} is not a run directory (no {records.ENVIRONMENT}); "
                                "run without --resume to start one")
            # killed between making the folder and writing its environment: nothing was recorded
            self.log(f"  resume: {self.out_dir} holds no {records.ENVIRONMENT} and no records (interrupted as it "
                     "started); starting it afresh")
            resume = False
        refuse_links_in(self.out_dir, records.RUN_FILES)  # before anything is written or truncated
        if not resume and os.path.lexists(path):
            raise UserError(f"{self.out_dir} already holds records; pass a new --out, or --resume {self.out_dir}")
        ensure_dir(self.out_dir, "run directory")
        self.lock()  # before anything is changed: a second process stops here
        if resume:
            old = check_environment(read_json(env_path, "environment file"), env_path)
            if (old.get("suite") or {}).get("config_hash") != self.suite.config_hash():
                raise UserError(f"{self.out_dir} was run with another configuration ({records.ENVIRONMENT}); "
                                "resume with the same suite file and profile")
            if path.exists():
                dropped = records.repair_tail(path)
                if dropped:
                    self.log(f"  resume: dropped a torn last line ({dropped} bytes) left by the interruption")
                recs, _ = records.load(path)
                done = {r.run_key for r in recs}
                for r in recs:  # a recorded trial's result serves the selection without retraining
                    if r.status == "trial" and (r.variant_id, r.seed) in self.workshop.by_id:
                        self.workshop.note_trial(self.workshop.by_id[(r.variant_id, r.seed)],
                                                 r.curve.model_dump() if r.curve else None,
                                                 sum(w.energy_j for w in r.train.windows()))
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
        # the run's identity (a history database stores a run once, however often it is
        # imported or copied) and when it started; kept as first written on resume
        env["run_id"] = uuid.uuid4().hex
        env["started_at"] = now()
        self.fingerprint = environment.fingerprint(env)
        # written before any measurement: a kill from here on (the idle baseline included)
        # leaves a run directory that --resume accepts
        if resume and env_path.is_file():
            env = read_json(env_path, "environment file")
        else:
            write_json_atomic(env_path, env)
        prepare_device(self.device)  # the CUDA context exists before idle is measured, as in every window
        self.preload(done)
        idle = self.measure_idle()
        if env.get("idle_w") is None:  # a new run, or one killed before its idle baseline
            write_json_atomic(env_path, {**env, "idle_w": idle})
        return done

    def preload(self, done: set[str] = frozenset()) -> None:
        """Every runtime's and technique's once-per-process work (imports, worker pools),
        before the first window: a window holds one variant's work, whatever its place in
        the process."""
        train_preload()
        seen: set[object] = set()
        for spec in self.todo:
            if spec.key in done:  # recorded before a resume: nothing of it runs again
                continue
            runtime = runtimes.create(spec.runtime)
            if runtime.name not in seen and runtime.unavailable(self.device) is None:
                seen.add(runtime.name)
                runtime.preload(self.device)
            if spec.technique and (spec.technique, describe(spec.params)) not in seen:
                seen.add((spec.technique, describe(spec.params)))
                TECHNIQUES.get(spec.technique)().preload(spec.params)

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
        done = self.start(resume)
        try:
            return self._run(done)
        finally:
            self.unlock()

    def _run(self, done: set[str]) -> Path:
        path = self.out_dir / records.RECORDS
        todo = [s for s in self.todo if s.key not in done]
        count, count_all = 0, len(todo)
        for spec in (s for s in todo if s.trial is not None):  # a sweep's trials: all of them before any selection
            count += 1
            self.log(f"[{count}/{count_all}] {self.suite.name}: {spec.key} (sweep trial: {describe(spec.trial)})")
            records.append(path, RunRecord.model_validate(self.trial_record(spec)))
        todo = [s for s in todo if s.trial is None]
        seeds = list(dict.fromkeys(s.seed for s in todo))
        for g, seed in enumerate(seeds):
            if self.suite.measure.idle_between_seeds and g > 0:
                self.measure_idle()
            pending: list[Pending] = []
            for spec in (s for s in todo if s.seed == seed):
                count += 1
                self.log(f"[{count}/{count_all}] {self.suite.name}: {spec.key}")
                made = self.prepare_one(spec)
                if isinstance(made, Pending):
                    pending.append(made)
                else:
                    records.append(path, RunRecord.model_validate(made))
            if not pending:
                continue
            cfg = self.suite.measure
            sizes = cfg.all_batch_sizes()
            self.log(f"  measuring {len(pending)} variant(s) of seed {seed}"
                     + (f" at batch sizes {', '.join(map(str, sizes))}" if len(sizes) > 1 else "")
                     + f": {cfg.repetitions} interleaved rounds of one window each "
                     f"(>= {max(cfg.min_window_s, self.monitor.min_window_s()):g} s) on {self.device.name}")
            results = measure_rounds([t for p in pending for t in p.targets], cfg, self.monitor,
                                     desc=f"measure seed {seed}",
                                     start=self.suite.seeds.index(seed) * cfg.repetitions)
            counted = self.count_work(pending)
            for p in pending:
                mine, results = results[:len(p.targets)], results[len(p.targets):]
                records.append(path, RunRecord.model_validate(self.finish(p, mine, counted)))
        return path

    def _base(self, spec: RunSpec) -> dict[str, Any]:
        return {"schema": records.SCHEMA, "suite": self.suite.name, "profile": self.suite.profile,
                "config_hash": self.suite.config_hash(), "run_config_hash": run_config_hash(self.suite, spec),
                "fingerprint": self.fingerprint, "run_key": spec.key, "task": self.task.name,
                "model": spec.model.name, "variant_id": spec.variant_id, "variant": spec.variant,
                "technique": spec.technique, "parent": spec.parent, "params": dict(spec.params), "seed": spec.seed,
                "device": self.device.describe()}

    def _data(self, spec: RunSpec, n_eval: int | None) -> dict[str, Any]:
        return {"source": self.task.source, "eval_split": self.task.eval_split,
                "metric": self.task.info.get("metric", "accuracy"),
                "n_train": min(len(self.task.train), spec.train.max_samples or len(self.task.train)),
                "n_eval": n_eval, "validation": self.task.info.get("validation")}

    @staticmethod
    def _creation(spec: RunSpec, windows: dict[str, Any], elsewhere: MadeElsewhere | None = None) -> dict[str, Any]:
        """The creation block: its windows; for a variant made outside joulebench no
        window of its own (``source`` unknown or reported; windows measured on top of
        it, such as an export, are extra windows)."""
        out = {"epochs": spec.train.epochs, "batch_size": spec.train.batch_size, "lr": spec.train.lr,
               "max_samples": spec.train.max_samples, "precision": spec.train.precision,
               "window": windows["create"].to_dict() if "create" in windows else None,
               "extra_windows": {k: w.to_dict() for k, w in windows.items() if k != "create"}}
        if elsewhere is not None:
            out.update(source=elsewhere.source, reported_j=elsewhere.reported_j, note=elsewhere.note(),
                       origin_sha256=elsewhere.sha256)
        return out

    def trial_record(self, spec: RunSpec) -> dict[str, Any]:
        """A sweep trial: trained under its own window, validated on the carved split
        (its curve), never evaluated on the eval split nor measured for inference."""
        started = now()
        seed_everything(spec.seed)
        made = self.workshop.obtain(spec)
        self.log(f"  validation accuracy {made.trial['val_accuracy']:.4f}; trial energy {made.trial['energy_J']:.1f} J "
                 f"({made.windows['create'].method}{', cached' if made.cached else ''})")
        return {**self._base(spec), "status": "trial", "params": dict(spec.trial), "artifact_key": made.key,
                "cached": made.cached, "architecture": made.built.model_name, "technique_info": made.info,
                "data": self._data(spec, None), "train": self._creation(spec, made.windows), "curve": made.curve,
                "meter": self._meter(), "started_at": started, "finished_at": now()}

    def prepare_one(self, spec: RunSpec) -> dict[str, Any] | Pending:
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
            return {**self._base(self.workshop.resolve(spec)), "status": "skipped", "reason": str(why),
                    "meter": self._meter(), "started_at": started, "finished_at": now()}
        self.log(f"  eval accuracy {result.accuracy:.4f} on {result.n} held-out examples"
                 + (f" (under {made.spec.runtime.name})" if deployed.window is not None else ""))
        counts = self.counter.count(made, deployed)
        cfg = self.suite.measure
        targets = [prepare(f"{made.spec.key}@bs{b}", runnable, made.eval_data, cfg, self.monitor, self.device.torch, b)
                   for b in cfg.all_batch_sizes()]
        return Pending(self._record(made, deployed, windows, result, counts, started), targets)

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

    def _record(self, made: Made, deployed: Deployed, windows: dict[str, Measurement], result: EvalResult,
                counts: Counts, started: str) -> dict[str, Any]:
        """The record of an obtained, deployed, evaluated and counted variant; its
        inference windows are added by ``finish``."""
        spec, built = made.spec, made.built
        elsewhere = made.elsewhere or deployed.elsewhere
        info = dict(made.info)
        if elsewhere is not None:
            info["creation"] = elsewhere.note()
        if deployed.elsewhere is not None:  # the runtime's file is the whole model: the parent's module is not it
            info = {"train_samples": 0, "module": f"the ONNX file {deployed.elsewhere.path}, not the parent's module",
                    "creation": elsewhere.note(), "sparsity": None}
        info.setdefault("sparsity", counts.sparsity)
        return {
            **self._base(spec), "status": "ok",
            "artifact_key": made.key, "model_identity": made.identity, "cached": made.cached,
            "model_info": built.bundle.info, "architecture": built.model_name,
            "technique_info": info,
            "runtime": {"name": spec.runtime.name, "options": deployed.runtime.options(),
                        "info": deployed.deployment.info, "artifact_key": deployed.key or None,
                        "cached": deployed.cached},
            "n_params": counts.n_params, "n_nonzero_params": counts.n_nonzero, "size_bytes": counts.size_bytes,
            "flops": counts.flops,
            "data": self._data(spec, result.n),
            "train": self._creation(spec, windows, elsewhere),
            "curve": made.curve,
            "sweep": made.sweep,
            "eval": {"accuracy": result.accuracy, "correct": result.correct, "n": result.n,
                     "predictions": result.predictions, "labels": made.eval_data.labels.tolist()},
            "started_at": started,
        }

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
               "batches": cfg.work_batches}
        self.log(f"  work pass: counting instructions of {len(requests)} target(s) under valgrind "
                 "(one process, one thread)")
        try:
            return work.count(job, self.task, requests, self.log)
        except work.WorkFailed as exc:
            self.log(f"  work pass failed: {exc}")
            return {r.name: work.skipped(f"counting failed: {exc}") for r in requests}

    def finish(self, pending: Pending, results: list[InferenceResult],
               counted: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The record, with the windows at the table's batch size (and at the others),
        each with its counted work where the suite asked for a work pass."""
        counted = counted or {}
        key = pending.record["run_key"]

        def block(inference: InferenceResult) -> dict[str, Any]:
            return {"batch_size": inference.batch_size, "passes": inference.passes,
                    "inferences_per_window": inference.inferences_per_window,
                    "warmup_s": inference.warmup_s, "schedule": inference.schedule,
                    "include_transfer": self.suite.measure.include_transfer,
                    "rounds": list(inference.rounds), "sequence": list(inference.sequence),
                    "compiles_in_windows": inference.compiles_in_windows,
                    "windows": [w.to_dict() for w in inference.windows],
                    "work": counted.get(work.Request(key, inference.batch_size).name)}

        out = {**pending.record, "inference": block(results[0]), "meter": self._meter(), "finished_at": now()}
        if len(results) > 1:
            out["inference_sweep"] = [block(r) for r in results[1:]]
        return out

    def _meter(self) -> dict[str, Any]:
        return {"method": self.monitor.method, "formulas": self.monitor.formulas()}


def write_empty_shard(suite: Suite, out_dir: Path, shard_spec: tuple[int, int], command: list[str]) -> None:
    """A shard that holds no run: its folder with an empty records file and an
    environment that says so, so a merge over every shard folder skips it cleanly."""
    refuse_links_in(out_dir, records.RUN_FILES)
    if os.path.lexists(out_dir / records.RECORDS):
        raise UserError(f"{out_dir} already holds records; pass a new --out")
    ensure_dir(out_dir, "run directory")
    write_atomic(out_dir / records.RECORDS, lambda p: p.write_text(""))
    write_json_atomic(out_dir / records.ENVIRONMENT, {
        "suite": {"name": suite.name, "path": suite.path, "profile": suite.profile,
                  "config_hash": suite.config_hash()},
        "shard": list(shard_spec), "empty_shard": True, "command": command, "run_id": uuid.uuid4().hex,
        "started_at": now()})


def run_config_hash(suite: Suite, spec: RunSpec) -> str:
    """Hash of everything this one run depends on (not the rest of the suite)."""
    return digest({"task": asdict(suite.task), "spec": asdict(spec), "measure": asdict(suite.measure),
                   "meter": asdict(suite.meter)}, 16)
