"""Where variants are made: a baseline is trained, a variant is compressed from its
parent, and either may instead come from the artifact cache.

Kept apart from the runner so the runner reads as "for each run: obtain the model,
evaluate, measure, record", and so a parent needed by a later variant (after a resume,
or in another shard) is obtained the same way: from memory, from the cache, or rebuilt
without being recorded twice.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from harness import cache as cache_mod
from harness import runtimes
from harness.cache import ArtifactCache
from harness.compress import TECHNIQUES, CompressContext, Technique
from harness.errors import VariantSkipped
from harness.config import ModelConfig, Suite, TrainConfig
from harness.curves import CurvePlan
from harness.device import CPU, Device
from harness.evaluate import predict_logits
from harness.files import digest
from harness.meters import EnergyMonitor, Measurement
from harness.models import MODELS, Encoded, ModelBundle
from harness.outside import MadeElsewhere
from harness.plan import RunSpec, describe, trials
from harness.runtimes import DeployContext, Deployment, Runtime
from harness.tasks import TaskData
from harness.train import train


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def task_fingerprint(task: TaskData) -> str:
    """Hash of the training data (inputs and labels): a checkpoint depends on it."""
    h = hashlib.sha256()
    inputs = task.train.inputs
    if isinstance(inputs, np.ndarray):
        h.update(np.ascontiguousarray(inputs).tobytes())
    else:
        for item in inputs:  # a text, or a (text, pair) tuple
            for text in (item if isinstance(item, tuple) else (item,)):
                h.update(text.encode())
                h.update(b"\0")
    h.update(task.train.labels.tobytes())
    if task.validation is not None:  # the curve (kept with a cached module) depends on it
        h.update(b"validation")
        h.update(task.validation.positions().tobytes())
    return h.hexdigest()


def performed(spec: RunSpec, runtime: Runtime) -> str | None:
    """The technique's work that ``runtime`` does in its place ("int8_dynamic"), or None."""
    if not spec.technique:
        return None
    request = TECHNIQUES.get(spec.technique)().runtime_request(spec.params)
    return request if request in runtime.performs else None


@dataclass
class Built:
    module: nn.Module  # as created or cached: what children derive from, what is sized
    bundle: ModelBundle
    model_name: str  # the suite model whose architecture and encoder it has
    runnable: nn.Module | None = None  # as it runs: the technique's finalize (2:4 kernels), else module

    @property
    def runs(self) -> nn.Module:
        """The module evaluated and measured."""
        return self.runnable if self.runnable is not None else self.module


@dataclass
class Made:
    """A variant as made (or fetched): the module, its creation windows and details."""

    built: Built
    windows: dict[str, Measurement]
    info: dict[str, Any]
    cached: dict[str, Any] | None = None  # {"measured_at", "host", "key"} when it came from the cache
    key: str = ""
    borrowed: bool = False  # the parent's module itself, run by another runtime (see Workshop._borrow)
    curve: dict[str, Any] | None = None  # its training curve (curves.py), where the suite asked for one
    elsewhere: MadeElsewhere | None = None  # made outside joulebench (a checkpoint file): no creation window
    # -- what the steps after obtaining work from (set by Workshop.obtain) ----------------
    spec: RunSpec | None = None  # as run: a swept baseline's with the selected trial's budget
    eval_data: Encoded | None = None  # the eval split, encoded for its architecture (not for a sweep trial)
    train_data: Encoded | None = None  # its training examples, encoded: what FLOPs are counted on
    parent: Built | None = None  # its parent as obtained in this process (FLOPs counted on it)
    sweep: dict[str, Any] | None = None  # the swept baseline's: how its budget was chosen, what the search cost
    trial: dict[str, Any] | None = None  # a sweep trial's result: validation accuracy and energy
    identity: str = ""  # the model's, for pooling seeds (Workshop.identity)


@dataclass
class Deployed:
    """A variant as it runs under its runtime, and what deploying it cost."""

    runtime: Runtime
    deployment: Deployment
    window: Measurement | None  # export / quantization / compilation; None for eager
    cached: dict[str, Any] | None = None  # {"measured_at", "host", "key"} when the artifact came from the cache
    key: str = ""
    elsewhere: MadeElsewhere | None = None  # the runtime's file was given by path: not made here, not measured


@dataclass
class Workshop:
    suite: Suite
    task: TaskData
    monitor: EnergyMonitor
    specs: list[RunSpec]
    cache: ArtifactCache | None = None
    log: Callable[[str], None] = print
    device: Device = CPU
    #: obtain also encodes each variant's training examples, which FLOPs are counted on
    #: (the work pass's process counts no FLOPs and skips it)
    count_flops: bool = True
    _encoded: dict[tuple, Encoded] = field(default_factory=dict)
    _built: dict[tuple[str, int], Built] = field(default_factory=dict)
    _skipped: dict[tuple[str, int], str] = field(default_factory=dict)
    _logits: dict[str, tuple[torch.Tensor, Measurement | None]] = field(default_factory=dict)
    _keys: dict[tuple[str, int], str] = field(default_factory=dict)
    #: Sweep trials made in this process, by artifact key (the selected one is the baseline).
    _trial_made: dict[str, Made] = field(default_factory=dict)
    #: (trial id, seed) -> what selection needs: params, val_accuracy, energy_J, run_key.
    trial_results: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    _selection: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.models = {m.name: m for m in self.suite.models}
        self.trials = trials(self.suite)
        self.by_id = {(s.variant_id, s.seed): s for s in self.specs + self.trials}
        self.data_fp = task_fingerprint(self.task)

    # -- encoders ---------------------------------------------------------------------
    def build(self, model: ModelConfig) -> ModelBundle:
        """A fresh module of ``model``'s architecture, on the run's device, and its encoder."""
        bundle = MODELS.get(model.family)(self.task, **model.options)
        bundle.module.to(self.device.torch)
        return bundle

    def encode_train(self, model_name: str, bundle: ModelBundle, cfg: TrainConfig) -> Encoded:
        """Tokenize once per model and training budget: the same tensors serve every seed."""
        key = (model_name, "train", cfg.max_samples)
        if key not in self._encoded:
            self._encoded[key] = bundle.encode(self.task.train.subset(cfg.max_samples))
        return self._encoded[key]

    def encode_eval(self, model_name: str, bundle: ModelBundle) -> Encoded:
        key = (model_name, "eval", None)
        if key not in self._encoded:
            self._encoded[key] = bundle.encode(self.task.eval)
        return self._encoded[key]

    def curves(self, model_name: str, bundle: ModelBundle, cfg: TrainConfig, always: bool = False) -> CurvePlan:
        """How a training loop of ``cfg``'s budget records its curve: on the carved
        validation split, encoded for ``model_name``, where ``cfg`` asks for a curve (or
        ``always``: a sweep trial's final validation accuracy); nothing otherwise."""
        if self.task.validation is None or not (cfg.curve or always):
            return CurvePlan(self.monitor)
        enc = (model_name, "validation", None)
        if enc not in self._encoded:
            self._encoded[enc] = bundle.encode(self.task.validation)
        return CurvePlan(self.monitor, self._encoded[enc], self.suite.measure.batch_size,
                         dict(self.task.info.get("validation", {})), cfg.target_accuracy,
                         {"eval_every": cfg.eval_every, "evals_per_epoch": cfg.evals_per_epoch})

    # -- sweeps -----------------------------------------------------------------------
    def resolve(self, spec: RunSpec) -> RunSpec:
        """The swept model's baseline with the selected trial's budget; any other spec as it is."""
        sweep = self.suite.sweep
        if sweep is None or spec.variant_id != sweep.model or spec.trial is not None:
            return spec
        return replace(spec, train=self.selection()["train"])

    def note_trial(self, spec: RunSpec, curve: dict[str, Any] | None, windows_j: float) -> None:
        """What selection needs from a trial: its final validation accuracy and its energy
        (its creation windows' ``windows_j`` and its validation passes: the search needs both)."""
        joules = windows_j + sum(w["energy_j"] for w in (curve or {}).get("eval_windows", []))
        self.trial_results[(spec.variant_id, spec.seed)] = {
            "trial": spec.variant_id, "seed": spec.seed, "run_key": spec.key, "params": dict(spec.trial or {}),
            "val_accuracy": curve["points"][-1]["val_accuracy"] if curve else None, "energy_J": joules}

    def selection(self) -> dict[str, Any]:
        """The sweep's choice: the trial with the best mean validation accuracy over seeds
        (the first on a tie). Trials not yet at hand are obtained (cache, else trained),
        without being recorded."""
        if self._selection is None:
            for spec in self.trials:
                if (spec.variant_id, spec.seed) not in self.trial_results:
                    self.log(f"  obtaining trial {spec.key} for the selection (not recorded here)")
                    self.obtain(spec)
            rows = [self.trial_results[(s.variant_id, s.seed)] for s in self.trials]
            means: dict[str, list[float]] = {}
            for r in rows:
                means.setdefault(r["trial"], []).append(r["val_accuracy"])
            best = max(means, key=lambda t: float(np.mean(means[t])))  # max keeps the first of equals
            chosen = next(s for s in self.trials if s.variant_id == best)
            keep = {self.artifact_key(s) for s in self.trials if s.variant_id == best}
            self._trial_made = {k: m for k, m in self._trial_made.items() if k in keep}  # free the others
            sweep = self.suite.sweep
            self._selection = {
                "model": sweep.model, "method": sweep.method, "space": sweep.space, "select_on": sweep.select_on,
                "selected": best, "params": dict(chosen.trial), "train": chosen.train,
                "mean_val_accuracy": {t: float(np.mean(v)) for t, v in means.items()},
                "trials": rows, "tuning_J": sum(r["energy_J"] for r in rows),
                # per seed, like a row's train J (a mean over seeds): lineage and J at N
                # queries add it to per-seed figures
                "tuning_J_per_seed": sum(r["energy_J"] for r in rows) / len(self.suite.seeds)}
            self.log(f"  sweep over {sweep.model}: selected {best} ({describe(chosen.trial)}; mean validation "
                     f"accuracy {self._selection['mean_val_accuracy'][best]:.4f} over {len(self.suite.seeds)} "
                     f"seed(s)); {len(rows)} trial runs cost {self._selection['tuning_J']:.1f} J "
                     f"({self._selection['tuning_J_per_seed']:.1f} J per seed)")
        return self._selection

    # -- keys -------------------------------------------------------------------------
    def artifact_key(self, spec: RunSpec) -> str:
        """Hash of everything that determines the trained module, lineage included. A
        swept baseline's is its selected trial's (the same training)."""
        spec = self.resolve(spec)
        k = (spec.variant_id, spec.seed)
        if k not in self._keys:
            parent = self.artifact_key(self.by_id[(spec.parent, spec.seed)]) if spec.parent else None
            self._keys[k] = digest({
                "artifact_version": cache_mod.ARTIFACT_VERSION, "code": cache_mod.code_digest(),
                "device": self.device.cache_tag,  # a module trained on a GPU is not the CPU one
                "torch": torch.__version__, "transformers": metadata.version("transformers"),
                "task": self.suite.task.name, "task_options": self.suite.task.options, "data": self.data_fp,
                "model": asdict(spec.model), "train": asdict(spec.train), "seed": spec.seed,
                "technique": spec.technique, "params": spec.params, "parent": parent,
                # a plugin's technique: its distribution and version (its code is not in code_digest)
                **({"plugin": TECHNIQUES.origin(spec.technique)} if spec.technique and TECHNIQUES.origin(spec.technique) else {}),
                **(TECHNIQUES.get(spec.technique)().key_fields(spec.params) if spec.technique else {}),
            })
        return self._keys[k]

    def same_under_every_seed(self, spec: RunSpec) -> bool:
        """A model the seed does not change (a checkpoint file, its int8; see
        ``Technique.same_under_every_seed``); a trained baseline never is."""
        if not spec.parent:
            return False
        parent_is = self.same_under_every_seed(self.by_id[(spec.parent, spec.seed)])
        if not spec.technique:  # the parent's module, run by another runtime
            return parent_is
        return TECHNIQUES.get(spec.technique)().same_under_every_seed(spec.params, parent_is)

    def identity(self, spec: RunSpec) -> str:
        """Which model this is, for pooling seeds in the table: its artifact key (seed
        included), or, for a model the seed does not change, a key without the seed, so
        its rows under several seeds are one model, not several."""
        spec = self.resolve(spec)
        given = runtimes.create(spec.runtime).given()
        if given is not None:  # the runtime's file is the whole model
            return digest({"file": given.sha256})
        if not self.same_under_every_seed(spec):
            return self.artifact_key(spec)
        parent = self.by_id[(spec.parent, spec.seed)]
        technique = TECHNIQUES.get(spec.technique)() if spec.technique else None
        return digest({"seedless": 1, "model": asdict(spec.model), "technique": spec.technique, "params": spec.params,
                       **(technique.key_fields(spec.params) if technique else {}),
                       "parent": self.identity(parent) if self.same_under_every_seed(parent) else None})

    # -- making -----------------------------------------------------------------------
    def obtain(self, spec: RunSpec) -> Made:
        """The variant of ``spec``, made or loaded (its parent first, if not at hand), with
        what the next steps work from: the spec as run, its encoded eval split and
        training examples, its parent, and the sweep's choice or trial result. A sweep
        trial is made like a baseline; a swept baseline is its selected trial."""
        spec = self.resolve(spec)
        made = self._obtain(spec)
        made.spec, made.parent = spec, self._built.get((spec.parent, spec.seed)) if spec.parent else None
        bundle = made.built.bundle
        if spec.trial is None:
            made.eval_data = self.encode_eval(made.built.model_name, bundle)
        if self.count_flops:
            made.train_data = self.encode_train(made.built.model_name, bundle, spec.train)
        sweep = self.suite.sweep
        if sweep is not None and spec.variant_id == sweep.model and spec.trial is None:
            made.sweep = {k: v for k, v in self.selection().items() if k != "train"}
        made.trial = self.trial_results.get((spec.variant_id, spec.seed)) if spec.trial is not None else None
        made.identity = self.identity(spec)
        return made

    def _obtain(self, spec: RunSpec) -> Made:
        if spec.parent:
            parent_spec = self.by_id[(spec.parent, spec.seed)]
            if (spec.parent, spec.seed) in self._skipped:
                raise VariantSkipped(f"its parent {spec.parent} was skipped ({self._skipped[(spec.parent, spec.seed)]})")
            if (spec.parent, spec.seed) not in self._built:
                self.log(f"  obtaining parent {parent_spec.key} (already recorded; not recorded again)")
                try:
                    self.obtain(parent_spec)
                except VariantSkipped as why:
                    self._skipped[(spec.parent, spec.seed)] = str(why)
                    raise VariantSkipped(f"its parent {spec.parent} was skipped ({why})") from None
        technique = TECHNIQUES.get(spec.technique)() if spec.technique else None
        if spec.parent and (technique is None or performed(spec, runtimes.create(spec.runtime))):
            return self._borrow(spec)
        key = self.artifact_key(spec)
        cacheable = technique is None or technique.cacheable
        made = self._trial_made.get(key)  # a swept baseline: the selected trial, trained in this process
        if made is None and cacheable:
            made = self._from_cache(spec, key, technique)
        if made is None:
            torch.manual_seed(spec.seed)
            try:
                made = self._variant(spec) if spec.technique else self._baseline(spec)
            except VariantSkipped as why:
                self._skipped[(spec.variant_id, spec.seed)] = str(why)
                raise
            made.key = key
            if self.cache is not None and cacheable:
                self.cache.put_module(key, made.built.module, {
                    "variant": spec.key, "model_name": made.built.model_name, "measured_at": now(),
                    "host": self.monitor.host, "curve": made.curve,
                    "windows": {k: w.to_dict() for k, w in made.windows.items()}, "info": made.info})
        if spec.trial is not None:
            self._trial_made[key] = made
            self.note_trial(spec, made.curve, sum(w.energy_j for w in made.windows.values()))
        if technique is not None:
            try:
                made.built.runnable = technique.finalize(made.built.module, spec.params, made.info, self.device)
            except VariantSkipped as why:
                self._skipped[(spec.variant_id, spec.seed)] = str(why)
                raise
        self._built[(spec.variant_id, spec.seed)] = made.built
        return made

    def _borrow(self, spec: RunSpec) -> Made:
        """A variant that runs its parent's module under another runtime (which may do the
        technique's work itself, e.g. onnxruntime's int8): nothing is made in PyTorch."""
        parent = self._built[(spec.parent, spec.seed)]
        built = Built(parent.module, parent.bundle, parent.model_name, parent.runnable)
        self._built[(spec.variant_id, spec.seed)] = built
        info = {"train_samples": 0, "module": f"the parent's ({spec.parent}), run by {spec.runtime.name}"}
        if spec.technique:
            info["performed_by"] = spec.runtime.name
        return Made(built, {}, info, None, self.artifact_key(self.by_id[(spec.parent, spec.seed)]), borrowed=True)

    # -- deploying --------------------------------------------------------------------
    def deploy(self, made: Made) -> Deployed:
        """The variant under its runtime. Exporting, quantizing or compiling is creation
        work in its own window; a runtime's file (an .onnx) comes from the cache when an
        identical one was made before, charged with the window measured then."""
        spec = made.spec
        runtime = runtimes.create(spec.runtime)
        why = runtime.unavailable(self.device)
        if why:
            raise VariantSkipped(why)
        if not runtime.creation_work:  # eager: the module as it is, nothing to prepare
            return Deployed(runtime, runtime.deploy(DeployContext(spec.variant_id, made.built.runs, None, [], False)),
                            None)
        data = made.eval_data
        shapes: dict[tuple, dict[str, torch.Tensor]] = {}
        for size in self.suite.measure.all_batch_sizes():
            for idx in data.buckets(size):
                batch = data.batch(idx)
                shapes.setdefault(tuple(tuple(v.shape) for v in batch.values()), batch)
        ctx = DeployContext(spec.variant_id, made.built.runs, performed(spec, runtime), list(shapes.values()),
                            data.lengths is not None, self.device, torch.get_num_threads(), self.log)
        given = runtime.given()
        if given is not None:  # the user's own file: nothing made here, nothing measured, nothing cached
            self.log(f"  loading {spec.key} from {given.path} ({runtime.name}; made outside joulebench)")
            return Deployed(runtime, runtime.deploy(ctx), None, None, given.sha256, elsewhere=given)
        key = digest({"artifact_version": cache_mod.ARTIFACT_VERSION, "module": made.key, "request": ctx.request,
                      **runtime.key_fields()}) if runtime.cacheable else ""
        got = self.cache.get_file(key) if self.cache is not None and key else None
        if got is not None:
            artifact, meta = got
            try:
                deployment = runtime.deploy(ctx, artifact)
                window = Measurement.from_dict(meta["window"])
            except (VariantSkipped, KeyError, TypeError, ValueError) as why:  # the runtime refuses the file
                self.cache.discard(key, f"unusable ({str(why)[:120]})")
            else:
                self.log(f"  cached: {runtime.name} artifact of {spec.key} (made {meta.get('measured_at', '?')} on "
                         f"{window.host or 'an unknown host'}; its creation energy is the one measured then)")
                return Deployed(runtime, deployment, window,
                                {"measured_at": meta.get("measured_at"), "host": window.host, "key": key}, key)
        self.log(f"  deploying {spec.key} on {runtime.name}")
        with self.monitor.creation_window(f"{spec.key}:{runtime.name}") as out:
            deployment = runtime.deploy(ctx)
        if self.cache is not None and runtime.cacheable and deployment.artifact is not None:
            self.cache.put_file(key, deployment.artifact, {"variant": spec.key, "runtime": runtime.name,
                                                           "measured_at": now(), "window": out[0].to_dict()})
        return Deployed(runtime, deployment, out[0], None, key)

    def _from_cache(self, spec: RunSpec, key: str, technique: Technique | None) -> Made | None:
        """The variant from the cache: its structure rebuilt (from config, or from its
        parent plus the technique's recorded edits), then its stored weights loaded."""
        if self.cache is None:
            return None
        built: list[ModelBundle] = []

        def skeleton(meta: dict[str, Any]) -> nn.Module:  # called on a hit only
            built.append(self.build(spec.model))  # the encoder, and a fresh module of the architecture
            if technique is None:
                return built[0].module
            parent = copy.deepcopy(self._built[(spec.parent, spec.seed)].module)
            return technique.rebuild(parent, built[0].module, spec.params, meta["info"])

        got = self.cache.get_module(key, skeleton)
        if got is None:
            return None
        module, meta = got
        bundle = built[0]
        bundle.module = module
        windows = {k: Measurement.from_dict(w) for k, w in meta["windows"].items()}
        self.log(f"  cached: {spec.key} (made {meta['measured_at']} on {meta.get('host', 'an unknown host')}; "
                 "its creation energy is the one measured then)")
        return Made(Built(module, bundle, spec.model.name), windows, meta["info"],
                    {"measured_at": meta["measured_at"], "host": meta.get("host"), "key": key}, key,
                    curve=meta.get("curve"))

    def _baseline(self, spec: RunSpec) -> Made:
        bundle = self.build(spec.model)
        data = self.encode_train(spec.model.name, bundle, spec.train)
        recorder = self.curves(spec.model.name, bundle, spec.train, always=spec.trial is not None).recorder(
            f"{spec.key}:train", bundle.module)
        with recorder.window() as out:
            stats = train(bundle.module, data, spec.train, spec.seed, desc=f"train {spec.key}",
                          checkpoint=recorder.checkpoint)
        info = {"steps": stats.steps, "train_samples": stats.samples, "final_loss": stats.final_loss}
        return Made(Built(bundle.module, bundle, spec.model.name), {"create": out[0]}, info, curve=recorder.curve())

    def _variant(self, spec: RunSpec) -> Made:
        """The technique applied to a private copy of the parent, with everything it works
        from made here first (it calls nothing back): a fresh module where the variant
        has its own architecture (built right after seeding), the training examples
        encoded for that architecture, the teacher's logits where it asks for them, and
        the curve's plan."""
        parent = self._built[(spec.parent, spec.seed)]
        technique = TECHNIQUES.get(spec.technique)()
        fresh = self.build(spec.model) if spec.model.name != parent.model_name else None
        bundle = fresh or parent.bundle  # the variant's architecture's encoder
        teacher = (self.teacher_logits(parent, self.by_id[(spec.parent, spec.seed)], spec.train, spec.variant_id)
                   if technique.uses_teacher_logits(spec.params) else None)
        ctx = CompressContext(
            variant_id=spec.variant_id, model_name=parent.model_name, parent=copy.deepcopy(parent.module),
            parent_bundle=parent.bundle, params=spec.params, train_cfg=spec.train, seed=spec.seed,
            task=self.task, monitor=self.monitor, models=self.models,
            train_data=self.encode_train(spec.model.name, bundle, spec.train), fresh=fresh,
            teacher_logits=teacher, curves=self.curves(spec.model.name, bundle, spec.train), device=self.device)
        result = technique.apply(ctx)
        return Made(Built(result.module, result.bundle, spec.model.name), result.windows, result.info,
                    curve=result.curve, elsewhere=result.elsewhere)

    def teacher_logits(self, teacher: Built, teacher_spec: RunSpec, cfg: TrainConfig,
                       variant_id: str) -> tuple[torch.Tensor, Measurement | None]:
        """The teacher's logits over the student's training examples: computed once per
        teacher and budget (in memory, then the cache). The window that computed them is
        returned the first time in a run, so its energy is charged once; from the cache
        it is the window measured then, with its own method and host."""
        key = digest({"teacher": self.artifact_key(teacher_spec), "max_samples": cfg.max_samples})
        if key in self._logits:
            return self._logits[key][0], None
        got = self.cache.get_tensor(key) if self.cache is not None else None
        if got is not None:
            tensor, meta = got
            window = Measurement.from_dict(meta["window"])
            self.log(f"  cached: teacher logits of {teacher_spec.key} (computed {meta.get('measured_at', '?')} on "
                     f"{window.host or 'an unknown host'}; charged with the energy measured then)")
            self._logits[key] = (tensor, window)
            return tensor, window
        data = self.encode_train(teacher.model_name, teacher.bundle, cfg)  # the student's examples
        with self.monitor.creation_window(f"{variant_id}:teacher_logits") as out:
            tensor = predict_logits(teacher.module, data, 128)
        if self.cache is not None:
            self.cache.put_tensor(key, tensor, {"teacher": teacher_spec.key, "measured_at": now(),
                                                "window": out[0].to_dict()})
        self._logits[key] = (tensor, out[0])
        return tensor, out[0]
