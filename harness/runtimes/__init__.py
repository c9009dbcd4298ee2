"""Runtimes: how a model or variant runs when it is evaluated and measured. One file
each, one ``@RUNTIMES.register(name)`` line each: ``eager`` (PyTorch as trained, the
default), ``compile`` (``torch.compile``), ``onnxruntime`` (the module exported to ONNX).

A runtime deploys a module: it returns a ``Runnable``, which
- ``stage``s one batch's inputs in the runtime's own form (device tensors, numpy
  arrays), once, before any energy window opens;
- is called on staged inputs: one forward pass, all the measured loop repeats;
- turns an output into host float ``logits`` (outside the windows).

Deploying is creation work with its own energy window (export, quantization,
compilation and its warm-up), and a runtime that keeps a file (an ``.onnx``) has it
cached like trained weights. A runtime may also carry out a technique's work itself,
on the parent's module (onnxruntime quantizes int8 with its own tool): the technique
names the work (``Technique.runtime_request``), the runtime lists what it performs
(``Runtime.performs``); neither knows the other's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from harness.config import RuntimeConfig
from harness.device import CPU, Device, to_device
from harness.errors import UserError
from harness.models import module_device
from harness.outside import MadeElsewhere
from harness.registry import Registry, check_options, discover, subclass_of


class Runnable:
    """A variant as it runs (see the module docstring)."""

    def stage(self, batch: dict[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    def __call__(self, staged: Any) -> Any:
        raise NotImplementedError

    def logits(self, out: Any) -> torch.Tensor:
        raise NotImplementedError

    def compilations(self) -> int | None:
        """Graphs compiled so far in this process (compile), or None for a runtime that
        never compiles. The measured loop checks it does not grow inside a window."""
        return None


class ModuleRunnable(Runnable):
    """A PyTorch module on its device: eager, or wrapped by ``torch.compile``."""

    def __init__(self, module: nn.Module, device: torch.device) -> None:
        self.module, self.device = module, device

    def stage(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return to_device(batch, self.device)

    def __call__(self, staged: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.module(**staged)

    def logits(self, out: torch.Tensor) -> torch.Tensor:
        return out.float().cpu()


def eager(module: nn.Module) -> ModuleRunnable:
    """``module`` as it is, in eval mode, where its weights are."""
    module.eval()
    return ModuleRunnable(module, module_device(module))


def as_runnable(model: nn.Module | Runnable) -> Runnable:
    """A runnable as it is; a module run eagerly."""
    return eager(model) if isinstance(model, nn.Module) else model


@dataclass
class DeployContext:
    variant_id: str
    module: nn.Module  # as it runs in PyTorch; shared with others: never change it
    #: work the runtime does in the technique's place (one of its ``performs``), or None
    request: str | None
    #: host batches of every shape the windows will run (the eval split's length
    #: buckets at each measured batch size): export examples, compilation warm-up
    samples: list[dict[str, torch.Tensor]]
    sequence_axis: bool  # dim 1 of every input is a sequence length that varies by batch
    device: Device = CPU
    threads: int = 1  # the run's torch threads: a runtime with its own pool uses as many
    log: Callable[[str], None] = print


@dataclass
class Deployment:
    runnable: Runnable
    info: dict[str, Any]  # recorded under the record's runtime.info
    artifact: bytes | None = None  # the file a cacheable runtime keeps (an .onnx)
    size_bytes: int | None = None  # size on disk as deployed; None: the module's state dict
    params: tuple[int, int] | None = None  # (parameters, nonzero) of the runtime's own file; None: the module's


class Runtime:
    """Base for runtimes; options are the constructor's keyword parameters (the
    signature is the schema, checked at suite load)."""

    name = ""
    #: Technique requests this runtime carries out itself, on the parent's module.
    performs: frozenset[str] = frozenset()
    #: Deploying does work worth its own energy window (export, compile); eager does none.
    creation_work = True
    #: Keep ``Deployment.artifact`` in the artifact cache, keyed by ``key_fields``.
    cacheable = False
    #: How FLOPs are counted for a variant under this runtime, when torch's counter on
    #: the PyTorch module is not the variant's own count; None when it is.
    flops_note: str | None = None
    #: Why the work pass (work.py) does not count instructions under this runtime, or
    #: None where it does.
    work_skip: str | None = None
    #: What the report says under a table with rows run by this runtime.
    footnote: str = ""
    #: Modules a deployment of it imports when rebuilt from the cache: the work pass's
    #: counting process imports them at its start, outside the work pass's wait.
    imports: tuple[str, ...] = ()
    #: The suite models the conformance tests deploy it on (tests/test_runtimes.py).
    examples: tuple[str, ...] = ("cnn",)

    def options(self) -> dict[str, Any]:
        return {}

    @classmethod
    def noted(cls, infos: list[dict[str, Any]]) -> str:
        """The report's footnote for rows run by this runtime, given each row's recorded
        runtime info (a record says how it ran; an older one may have run otherwise)."""
        return cls.footnote

    def work_skip_on(self, task_kind: str) -> str | None:
        """Why the work pass does not count this runtime on a task of ``task_kind``
        ("text", "image"), or None: ``work_skip`` by default."""
        return self.work_skip

    def preload(self, device: Device = CPU) -> None:
        """Pay, outside any energy window, on the run's ``device``, what deploying costs once
        per process and never again (lazy imports, a compiler's worker pool): otherwise the
        first variant deployed in a process carries it and the next seeds do not. Called
        once per runtime name and device per process (``harness/preloads.py``), right
        before the first deploy that does creation work (not one served by the cache)."""

    def given(self) -> MadeElsewhere | None:
        """The runtime's file when the user gives it by path (made outside joulebench: not
        exported here, its creation not measured), else None."""
        return None

    def validate(self, where: str) -> None:
        """Checks at suite load beyond the options' types (a given file that exists and
        is safe to load): raise UserError."""

    def preflight(self, inputs: list[str], where: str, samples: list[dict[str, Any]] | None = None,
                  classes: int | None = None) -> None:
        """Checks a given file (``given``) against the inputs the parent's encoder gives
        (``inputs``: their names), before the run folder exists: raise UserError.
        ``samples`` holds one encoded batch of every size the run will feed it (each
        measured batch size and the last, shorter batch), ``classes`` the task's."""

    def unavailable(self, device: Device) -> str | None:
        """Why the runtime cannot run on ``device`` here (one line naming the fix), or None."""
        return None

    def key_fields(self) -> dict[str, Any]:
        """What a cached artifact depends on besides the module: versions and options."""
        return {"runtime": self.name, **self.options()}

    def deploy(self, ctx: DeployContext, artifact: bytes | None = None) -> Deployment:
        """The module as this runtime runs it. With ``artifact`` (from the cache) skip
        the work that made it. Raises VariantSkipped when it cannot (export fails)."""
        raise NotImplementedError


def check_logits(logits: torch.Tensor, rows: int, classes: int | None, what: str = "the model") -> str | None:
    """Why ``logits`` cannot be scored as one batch of ``rows`` examples of ``classes``
    classes (shape, dtype, class count, finiteness), or None. A model whose outputs are
    not what the task needs is refused or skipped saying so, never given an accuracy."""
    if not isinstance(logits, torch.Tensor):
        return f"{what} returned {type(logits).__name__}, not a tensor of logits"
    if logits.ndim != 2 or logits.shape[0] != rows:
        return (f"{what} returned an output of shape {list(logits.shape)} for a batch of {rows}; it must return "
                f"logits of shape [batch, classes]")
    if classes is not None and logits.shape[1] != classes:
        return (f"{what} returned {logits.shape[1]} logits per example where the task has {classes} classes; give "
                "a model whose head has one output per class")
    if not logits.dtype.is_floating_point:
        return f"{what} returned {logits.dtype} outputs, not floating-point logits"
    if not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        return (f"{what} returned NaN or infinite logits for {bad} of {rows} examples (NaN or infinite weights?); "
                "its accuracy would be meaningless")
    return None


RUNTIMES: Registry[type[Runtime]] = Registry("runtime", subclass_of(Runtime))


def create(cfg: RuntimeConfig) -> Runtime:
    return RUNTIMES.get(cfg.name)(**cfg.options)


def check(cfg: RuntimeConfig, where: str) -> None:
    """At suite load: a known runtime, options it takes, values it accepts."""
    cls = RUNTIMES.get(cfg.name)
    check_options(cls, cfg.options, where)
    try:
        runtime = cls(**cfg.options)
    except (TypeError, UserError) as exc:
        raise UserError(f"{where}: {exc}") from None
    runtime.validate(where)


@RUNTIMES.register("eager")
class Eager(Runtime):
    """PyTorch as trained: ``module(**batch)`` under ``torch.inference_mode``."""

    examples = ("cnn", "bert")
    creation_work = False

    def deploy(self, ctx: DeployContext, artifact: bytes | None = None) -> Deployment:
        return Deployment(eager(ctx.module), {})


discover(__name__, __path__)  # every file of this package registers its entries as it loads
