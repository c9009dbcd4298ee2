"""Where variants are made: a baseline is trained, a variant is compressed from its
parent, and either may instead come from the artifact cache.

Kept apart from the runner so the runner reads as "for each run: obtain the model,
evaluate, measure, record", and so a parent needed by a later variant (after a resume,
or in another shard) is obtained the same way: from memory, from the cache, or rebuilt
without being recorded twice.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from torch import nn

from harness import preloads, runtimes
from harness.cache import ArtifactCache
from harness.environment import now
from harness.compress import TECHNIQUES, CompressContext, Technique
from harness.errors import UserError, VariantSkipped
from harness.config import ModelConfig, Suite, TrainConfig
from harness.curves import CurvePlan
from harness.deploy import deploy
from harness.device import CPU, Device
from harness.evaluate import predict_logits
from harness.files import digest
from harness.meters import EnergyMonitor, Measurement
from harness.models import MODELS, Encoded, ModelBundle
from harness.lineage import Lineage, performed, task_fingerprint
from harness.made import Built, Deployed, Made
from harness.plan import RunSpec, trials
from harness.selection import Selection
from harness.tasks import TaskData
from harness.train import train


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
    #: Sweep trials made in this process, by artifact key (the selected one is the baseline).
    _trial_made: dict[str, Made] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.models = {m.name: m for m in self.suite.models}
        self.trials = trials(self.suite)
        self.by_id = {(s.variant_id, s.seed): s for s in self.specs + self.trials}
        self.data_fp = task_fingerprint(self.task)
        self.sweep_choice = Selection(self.suite, self.trials, self.log)
        self.keys = Lineage(self.suite, self.by_id, self.data_fp, self.device, self.resolve)

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

    def selection(self) -> dict[str, Any]:
        """The sweep's choice (selection.py), its trials obtained first; the trials not
        chosen are freed from memory."""
        first = self.sweep_choice._choice is None
        choice = self.sweep_choice.choose(self.obtain)
        if first:
            keep = {self.keys.artifact_key(s) for s in self.trials if s.variant_id == choice["selected"]}
            self._trial_made = {k: m for k, m in self._trial_made.items() if k in keep}
        return choice

    def note_trial(self, spec: RunSpec, curve: dict[str, Any] | None, windows_j: float) -> None:
        self.sweep_choice.note_trial(spec, curve, windows_j)

    @property
    def trial_results(self) -> dict[tuple[str, int], dict[str, Any]]:
        return self.sweep_choice.trial_results

    # -- making -----------------------------------------------------------------------
    def obtain(self, spec: RunSpec) -> Made:
        """The variant of ``spec``, made or loaded (its parent first, if not at hand), with
        what the next steps work from: the spec as run, its encoded eval split and
        training examples, its parent, and the sweep's choice or trial result. A sweep
        trial is made like a baseline; a swept baseline is its selected trial."""
        spec = self.resolve(spec)
        made = self._obtain(spec)
        bundle, name = made.built.bundle, made.built.model_name
        sweep = self.suite.sweep
        swept = sweep is not None and spec.variant_id == sweep.model and spec.trial is None
        # a new value: the made variant as the next steps take it (never the one held in memory)
        return replace(made, spec=spec, parent=self._built.get((spec.parent, spec.seed)) if spec.parent else None,
                       eval_data=self.encode_eval(name, bundle) if spec.trial is None else None,
                       train_data=self.encode_train(name, bundle, spec.train) if self.count_flops else None,
                       sweep={k: v for k, v in self.selection().items() if k != "train"} if swept else None,
                       trial=self.trial_results.get((spec.variant_id, spec.seed)) if spec.trial is not None else None,
                       identity=self.keys.identity(spec))

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
        key = self.keys.artifact_key(spec)
        cacheable = technique is None or technique.cacheable
        made = self._trial_made.get(key)  # a swept baseline: the selected trial, trained in this process
        if made is None and cacheable:
            made = self._from_cache(spec, key, technique)
        if made is None:
            preloads.before_making(spec.technique, technique, spec.params, self.log)  # before the seed
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
        return Made(built, {}, info, None, self.keys.artifact_key(self.by_id[(spec.parent, spec.seed)]), borrowed=True)

    # -- deploying --------------------------------------------------------------------
    def deploy(self, made: Made) -> Deployed:
        """The variant under its runtime (deploy.py)."""
        return deploy(made, self.suite.measure.all_batch_sizes(), self.cache, self.monitor, self.device, self.log)

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
        if bundle.given is not None:  # trained before the run (api.bench): its creation as given, never trained here
            return Made(Built(bundle.module, bundle, spec.model.name), dict(bundle.given.windows),
                        dict(bundle.given.info), elsewhere=bundle.given.elsewhere)
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
        if result.elsewhere is None and "create" not in result.windows:
            raise UserError(f"technique {spec.technique!r} made {spec.variant_id} without a creation window; its "
                            "apply must open ctx.monitor.creation_window(...) around its work and return it as "
                            "windows['create'] (docs/extending.md)")
        return Made(Built(result.module, result.bundle, spec.model.name), result.windows, result.info,
                    curve=result.curve, elsewhere=result.elsewhere)

    def teacher_logits(self, teacher: Built, teacher_spec: RunSpec, cfg: TrainConfig,
                       variant_id: str) -> tuple[torch.Tensor, Measurement | None]:
        """The teacher's logits over the student's training examples: computed once per
        teacher and budget (in memory, then the cache). The window that computed them is
        returned the first time in a run, so its energy is charged once; from the cache
        it is the window measured then, with its own method and host."""
        key = digest({"teacher": self.keys.artifact_key(teacher_spec), "max_samples": cfg.max_samples})
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
