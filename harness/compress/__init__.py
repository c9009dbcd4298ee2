"""Compression techniques: one file each, one ``@TECHNIQUES.register(name)`` line each.

A technique turns a trained parent into a variant. ``validate`` runs at suite load, so a
bad parameter (a sparsity of 1.5) fails before any training starts; ``apply`` does the
work and returns the new module with the energy windows spent creating it. A technique
that cannot run on this machine (fp16 on a CPU) raises VariantSkipped with the reason.

Each technique also declares its traits, so no module outside ``compress/`` needs to
know technique names: whether its result is worth caching, whether torch's FLOP counter
can see its kernels, which suite model's architecture the variant has, how to rebuild
the variant's structure from its parent for loading cached weights (the artifact cache
stores weights only, never pickled modules), how to finalize it for running (2:4
weights handed to sparse kernels), and what work a deployment runtime may do in its
place (``runtime_request``: int8 quantization by onnxruntime's own tool).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pydantic import BaseModel
from torch import nn

from harness.device import CPU, Device
from harness.errors import UserError, VariantSkipped
from harness.meters import EnergyMonitor, Measurement
from harness.models import Encoded, ModelBundle
from harness.registry import OPTION_CONFIG, Registry, discover, subclass_of, validate as validate_options
from harness.config import ModelConfig, TrainConfig
from harness.curves import CurvePlan, CurveRecorder  # curves imports evaluation only when a point is taken
from harness.outside import MadeElsewhere
from harness.tasks import TaskData


__all__ = ["TECHNIQUES", "CompressContext", "CompressResult", "NoParams", "Technique", "VariantSkipped"]


@dataclass
class CompressContext:
    """Everything a technique's ``apply`` works from, as values made before it is called
    (the workshop prepares them; a technique never calls back into it): the parent, the
    training examples encoded for the variant, a fresh module where the variant has its
    own architecture, the teacher's logits where the technique asks for them, and how to
    record a training curve."""

    variant_id: str
    model_name: str  # the suite model whose architecture (and encoder) the parent has
    parent: nn.Module  # a private copy: the technique may change it in place
    parent_bundle: ModelBundle
    params: Mapping[str, Any]
    train_cfg: TrainConfig
    seed: int
    task: TaskData
    monitor: EnergyMonitor
    models: Mapping[str, ModelConfig]  # every model in the suite
    #: the training examples (``train_cfg.max_samples`` of them), encoded for the
    #: variant's architecture (``Technique.architecture``)
    train_data: Encoded
    #: where ``Technique.architecture`` names another model than the parent's (a
    #: distillation student): a newly built module of it on the run's device, with its
    #: encoder; None otherwise
    fresh: ModelBundle | None = None
    #: where ``Technique.uses_teacher_logits``: (the parent's logits over the training
    #: examples, the window that computed them, or None when they were computed and
    #: charged once before in this run); None otherwise
    teacher_logits: tuple[Any, Measurement | None] | None = None
    #: how the technique's training loop records its curve (``curve`` below)
    curves: CurvePlan | None = None
    device: Device = CPU  # where the run's modules live (the parent is already there)

    def curve(self, key: str, module: nn.Module) -> CurveRecorder:
        """The recorder for a training loop in window ``key`` that trains ``module``: its
        ``window()`` replaces ``monitor.window(key)`` and its ``checkpoint`` goes to
        train(); it records a curve where the suite asks for one, and nothing otherwise
        (the curve's validation split is already encoded for the variant's architecture)."""
        return (self.curves or CurvePlan(self.monitor)).recorder(key, module)


@dataclass
class CompressResult:
    module: nn.Module
    bundle: ModelBundle  # whose ``encode`` feeds the variant (a student's for distill)
    windows: dict[str, Measurement]  # "create" always; e.g. "teacher_logits" too
    info: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, Any] | None = None  # CurveRecorder.curve() of its training loop, if any
    #: A variant made outside joulebench (checkpoint.py): the file it came from and the
    #: creation energy its maker reports; ``windows`` is then empty (nothing was measured).
    elsewhere: MadeElsewhere | None = None


class NoParams(BaseModel):
    model_config = OPTION_CONFIG


class Technique:
    """Base for techniques; subclasses set ``name`` and override validate/apply, and the
    traits below where the defaults do not hold."""

    name = ""
    #: Store the result in the artifact cache. False where redoing it takes seconds and
    #: its structure cannot be rebuilt from weights alone (int8 packed modules).
    cacheable = True
    #: torch's FLOP counter cannot see this variant's kernels (int8 linear counts 0), so
    #: the variant reports its parent's FLOPs, labelled as such.
    flops_from_parent = False

    #: The params' names, types and ranges, declared once: a pydantic model configured
    #: with ``registry.OPTION_CONFIG`` (unknown keys, wrong types, NaN are errors).
    Params: type[BaseModel] = NoParams
    #: (suite model, params) the conformance checks build this technique with
    #: (harness.testing, tests/test_compress.py): every technique, a plugin's too, says it
    #: here; models: cnn, mlp (digits), bert (a tiny text model, checkout tests only).
    example: tuple[str, Mapping[str, Any]] | None = None

    def validate(self, params: Mapping[str, Any], where: str, models: set[str] = frozenset()) -> None:
        """Check params at suite load against ``Params``, then ``check``'s rules."""
        validate_options(self.Params, params, where)
        self.check(params, where, models)

    def check(self, params: Mapping[str, Any], where: str, models: set[str]) -> None:
        """Rules across params, or against the suite (``models``: its model names), that a
        type and a range cannot say (exactly one of two options, a student that exists)."""

    def preflight(self, params: Mapping[str, Any], parent: nn.Module, where: str) -> None:
        """Checks against the parent's architecture (``parent``: a freshly built module of
        the suite model a baseline parent has), run before the run folder exists: raise
        UserError. Called only for techniques that override it (a checkpoint's keys and
        shapes), and only where the parent is a trained baseline."""

    def key_fields(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """What the variant depends on beyond its params and parent, for the artifact key
        (a checkpoint file's digest)."""
        return {}

    def preload(self, params: Mapping[str, Any]) -> None:
        """Pay, outside any energy window, what ``apply`` costs once per process (lazy
        imports, a backend's first use), so the first seed's creation window does not
        carry it and the next seeds' do not lack it. Called once per (technique, params)
        per process (``harness/preloads.py``), right before the first variant of it is
        made (not one loaded from the cache)."""

    def architecture(self, params: Mapping[str, Any], parent_architecture: str) -> str:
        """The suite model whose architecture and encoder the variant has (the parent's,
        by default). Called at suite load, before ``validate``."""
        return parent_architecture

    def rebuild(self, parent: nn.Module, fresh: nn.Module, params: Mapping[str, Any],
                info: Mapping[str, Any]) -> nn.Module:
        """A module with the variant's structure, for cached weights to be loaded into.

        ``parent`` is a private copy of the (rebuilt) parent, ``fresh`` a newly built
        module of the variant's architecture, ``info`` what ``apply`` recorded. The
        default, the parent's own structure, fits techniques that change values only."""
        return parent

    def same_under_every_seed(self, params: Mapping[str, Any], parent_is: bool) -> bool:
        """Whether the variant is one model whatever the run's seed: it neither trains nor
        samples (so it is that wherever its parent is: ``parent_is``), or it comes from a
        file. The table pools such a model once, not once per seed: copies of one model
        are not seeds. False by default: a technique that trains or samples."""
        return False

    def trains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``apply`` trains on the task's training split (fine-tuning after
        pruning, distilling): api.bench refuses such a variant where no training data was
        given. True by default: a technique that does not train says so."""
        return True

    def uses_teacher_logits(self, params: Mapping[str, Any]) -> bool:
        """Whether ``apply`` reads ``ctx.teacher_logits`` (distillation): the parent's
        logits are computed (once per teacher and budget, in their own window) only then."""
        return False

    def counts_flops_on_parent(self, params: Mapping[str, Any]) -> bool:
        """Whether this variant reports its parent's FLOPs (``flops_from_parent``, or
        per variant where only some parameters hide the kernels from torch's counter)."""
        return self.flops_from_parent

    def runtime_request(self, params: Mapping[str, Any]) -> str | None:
        """The work this variant asks for, named so a deployment runtime can do it in the
        technique's place on the parent's module (``Runtime.performs``): e.g.
        "int8_dynamic", which onnxruntime quantizes with its own tool. None: the
        technique always runs in PyTorch, and the runtime runs its result."""
        return None

    def finalize(self, module: nn.Module, params: Mapping[str, Any], info: dict[str, Any], device: Any) -> nn.Module:
        """The module as it will run (evaluated and measured): ``module`` itself (the
        default), or a new one, e.g. with weights handed to special kernels. ``module``
        must not be changed: children derive from it and the cache stores it. Redone on
        every load; may update ``info`` and raise VariantSkipped."""
        return module

    def apply(self, ctx: CompressContext) -> CompressResult:
        raise NotImplementedError


TECHNIQUES: Registry[type[Technique]] = Registry("technique", subclass_of(Technique))

discover(__name__, __path__)  # every file of this package registers its entries as it loads
