"""The configuration a suite resolves to: frozen dataclasses and nothing else.

A leaf module: it imports no other part of joulebench, so the YAML parser (suite.py),
the training loop, the techniques and the planner can all depend on it without an
import loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.files import digest

PROFILES = ("full", "quick")
PRECISIONS = ("fp32", "bf16", "fp16")
GPU_IDLE = ("exclude", "include")


@dataclass(frozen=True)
class TrainConfig:
    """Training budget. ``max_samples`` caps the training split (a fixed, seeded subset)."""

    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-3
    max_samples: int | None = None
    weight_decay: float = 0.0
    warmup_fraction: float = 0.0
    schedule: str = "constant"  # or "linear": linear decay to 0 after warm-up
    #: Arithmetic of the forward and backward passes: fp32, or autocast to bf16 / fp16
    #: (fp16 adds a GradScaler). The weights and the optimizer stay in fp32.
    precision: str = "fp32"
    #: Training curve: evaluate on the carved validation split every ``eval_every``
    #: steps, or ``evals_per_epoch`` times per epoch (0 and 0: no curve). The energy of
    #: those evaluations is kept apart from the training figure and reported.
    eval_every: int = 0
    evals_per_epoch: int = 0
    #: Validation accuracy whose first crossing gives J_to_target; None: 99% of the
    #: run's own final validation accuracy.
    target_accuracy: float | None = None

    @property
    def curve(self) -> bool:
        return self.eval_every > 0 or self.evals_per_epoch > 0

    def checkpoint_every(self, steps_per_epoch: int) -> int:
        """Steps between curve points (0: no curve)."""
        if self.eval_every:
            return self.eval_every
        if self.evals_per_epoch:
            return max(1, -(-steps_per_epoch // self.evals_per_epoch))
        return 0


#: Training hyperparameters a sweep may vary (TrainConfig fields).
SWEEPABLE = ("lr", "batch_size", "epochs", "weight_decay", "warmup_fraction", "schedule", "max_samples")


@dataclass(frozen=True)
class ValidationConfig:
    """The validation split carved from the training data for curves and sweep
    selection: a fixed, seeded ``fraction`` (at most ``max_examples``). The eval split is
    never used for either; the carved examples are never trained on."""

    fraction: float = 0.1
    max_examples: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class SweepConfig:
    """A hyperparameter search over one model's training: every trial trained, measured
    and recorded; the trial with the best mean validation accuracy over seeds becomes the
    model's baseline row, which carries the energy of the whole search (tuning J)."""

    model: str
    trials: tuple[Mapping[str, Any], ...]  # each: {hyperparameter: value}, in plan order
    method: str  # "grid" or "random"
    space: Mapping[str, Any]  # as written, for the record
    select_on: str = "validation"


@dataclass(frozen=True)
class MeasureConfig:
    """Inference measurement: ``repetitions`` windows, each at least ``min_window_s`` long.

    Six repetitions are the fewest for which a distribution-free 95% interval of the
    median exists (order statistics of a Binomial(n, 1/2)); five only reach 93.8%.
    """

    batch_size: int = 64
    warmup: int = 1
    repetitions: int = 7
    min_window_s: float = 1.0
    idle_s: float = 5.0  # idle baseline before the suite; 0 turns it off (net = gross)
    idle_between_seeds: bool = False  # re-measure idle before each seed's measurement rounds
    #: Inference batch sizes to measure, each its own row in batch_sizes.csv; the table's
    #: J/inference is the one at ``batch_size``. Empty: just ``batch_size``.
    batch_sizes: tuple[int, ...] = ()
    #: Copy each batch from host memory inside the window (off: batches are staged on
    #: the device before any window opens, so the windows hold forward passes only).
    include_transfer: bool = False
    #: After the energy rounds, count each target's work under valgrind (work.py):
    #: ``instructions`` (instructions per inference, callgrind), or ``none``.
    work: str = "none"
    #: Passes over the eval split counted per target (the count is deterministic: one
    #: pass is enough, more only cost time).
    work_passes: int = 1
    #: Count this many of each target's eval batches, evenly spaced over them (the first
    #: and last included): the work pass's time on a large eval set, for a figure over
    #: those batches' examples, labelled so; runs counted over other batches are not
    #: compared. ``all`` (None): every batch the energy windows ran. The default's error
    #: against the full split is measured by benchmarks/scripts/work_check.py (work.SAMPLE_ERROR).
    work_batches: int | None = 4

    def all_batch_sizes(self) -> tuple[int, ...]:
        """Every batch size measured, the table's own first."""
        return (self.batch_size,) + tuple(b for b in self.batch_sizes if b != self.batch_size)


@dataclass(frozen=True)
class MeterConfig:
    """``meter: auto`` or ``meter: {name: auto, gpu_idle: exclude, cross_check: false}``."""

    name: str = "auto"
    #: On a CPU run on a GPU machine the GPUs did none of the work, so their (idle) draw
    #: is left out; ``include`` adds it for a whole-box view.
    gpu_idle: str = "exclude"
    #: Where an NVML energy counter exists, also integrate sampled power over the same
    #: windows and report how the two agree (the counter stays the figure used).
    cross_check: bool = False


@dataclass(frozen=True)
class DecideConfig:
    """How a variant is judged against its parent (decisions.py; docs/statistics.md):
    accuracy is non-inferior when a one-sided paired test puts its loss below
    ``accuracy_margin`` (a share: 0.01 is one point) at ``accuracy_alpha``; J/inference is
    lower when a one-sided rank test over its units says so at ``energy_alpha``."""

    accuracy_margin: float = 0.01
    accuracy_alpha: float = 0.05
    energy_alpha: float = 0.05


@dataclass(frozen=True)
class TaskConfig:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeConfig:
    """How a model or variant runs when it is evaluated and measured: ``eager`` PyTorch
    (the default), or a deployment runtime (``runtime: onnxruntime``, or a mapping with
    ``name:`` and the runtime's options, e.g. ``{name: compile, mode: max-autotune}``)."""

    name: str = "eager"
    options: Mapping[str, Any] = field(default_factory=dict)


EAGER = RuntimeConfig()


@dataclass(frozen=True)
class ModelConfig:
    name: str
    family: str
    options: Mapping[str, Any]
    train: TrainConfig
    runtime: RuntimeConfig = EAGER


@dataclass(frozen=True)
class VariantConfig:
    """A variant of a parent (a model name or another variant id): compressed by a
    technique, run under another runtime, or both."""

    id: str
    parent: str
    technique: str | None  # None: the parent's module itself, under ``runtime``
    params: Mapping[str, Any]
    train: TrainConfig  # resolved: the variant's overrides over its architecture's budget
    #: The suite model whose architecture (and encoder) the variant has: its parent's,
    #: unless the technique says otherwise (distill: the student). Resolved at load.
    architecture: str = ""
    runtime: RuntimeConfig = EAGER  # not inherited from the parent: every row says its own


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    profile: str
    description: str
    task: TaskConfig
    models: tuple[ModelConfig, ...]
    variants: tuple[VariantConfig, ...]
    seeds: tuple[int, ...]
    measure: MeasureConfig
    meter: MeterConfig
    allow_estimate: bool
    resolved: Mapping[str, Any]  # the merged raw mapping, for the config hash
    device: str = "auto"  # auto | cpu | cuda | cuda:N, resolved at run time (--device overrides)
    #: The carved validation split; None when nothing needs one (no curve, no sweep).
    validation: ValidationConfig | None = None
    sweep: SweepConfig | None = None
    decide: DecideConfig = DecideConfig()

    def config_hash(self) -> str:
        return digest(self.resolved, 16)
