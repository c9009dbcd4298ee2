"""The records file: one ``RunRecord`` per finished run of a (variant, seed), appended.

Each line is complete or absent: it is written in one ``write`` and fsynced, so a
killed run leaves whole lines behind and a reader warns about (and skips) a torn tail.
Raw window values are kept; statistics are computed by the report, never stored.

``RunRecord`` is the declared type every reader uses (table, compare, merge, report,
runner): fields by name, checked on write and on read. Unknown fields are kept, so a
record written by a newer joulebench survives a round trip through an older one.

The schema and its history: ``schema_history.py`` (``upgrade`` brings an older record
to the current schema on read); the file itself: ``recordfile.py``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.free_form import FREE_FORM, TYPED_KEYS, plain
from harness.schema_history import CPU_DEVICE, EAGER_RUNTIME, SCHEMA, upgrade  # noqa: F401  (read as records.SCHEMA)

#: How a variant's creation energy is known (``Creation.source``).
CREATION_SOURCES = ("measured", "unknown", "reported")
RECORDS = "records.jsonl"
#: A record is a few hundred kB (SST-2: ~100 kB with its 872 predictions); a line far over that is no record.
MAX_LINE_CHARS = 64 << 20
ENVIRONMENT = "environment.json"
LOCK = ".lock"
#: The files joulebench keeps in a run directory: a symbolic link in any of these places
#: is refused before anything is written.
FIGURES = ("accuracy_vs_energy", "lifecycle_energy", "training_curves", "batch_size_energy")
RUN_FILES = (RECORDS, ENVIRONMENT, LOCK, "table.md", "table.csv", "table.parquet", "table.tex", "table_full.tex",
             "columns.csv", "sweeps.csv", "trials.csv", "batch_sizes.csv", "appendix.md", "appendix.tex",
             *(f"{name}.{ext}" for name in FIGURES for ext in ("png", "pdf")), "stdout.txt", "stderr.txt")


class _Model(BaseModel):
    # NaN and infinity are no measurement: a record holding one is not a valid record
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=(), allow_inf_nan=False)


class Component(_Model):
    component: str
    method: str
    energy_j: float  # gross
    uncertainty_rel: float
    idle_w: float = 0.0


class Window(_Model):
    """One energy window as recorded (see meters.base.Measurement)."""

    duration_s: float = Field(gt=0)
    energy_j: float = Field(ge=0)
    net_energy_j: float
    idle_w: float = 0.0
    method: str
    read_s: float = 0.0
    host: str = ""  # empty in records older than schema 3
    components: list[Component]
    #: The same window by a second path (NVML sampled power beside the counter), for
    #: the agreement printed under the table; never part of the energy.
    cross_check: list[Component] = Field(default_factory=list)
    #: Python modules first imported inside the window; None in records older than schema 7
    imports: int | None = None
    #: creation work shorter than the meter resolves: the work's own seconds (the window
    #: was padded to the meter's minimum), and whether the reading is only a bound
    work_s: float | None = None
    below_resolution: bool = False
    #: other processes' CPU share of the machine over the window (None: unknown, or a
    #: record older than this field) and whether it made the window shared
    others_cpu_share: float | None = Field(default=None, ge=0)
    shared: bool = False
    others_on_gpu: int | None = Field(default=None, ge=0)  # processes of other jobs on its GPUs
    unsettled: bool | None = None  # another thread of the process still working at its end (None: not checked)

    @property
    def status(self) -> str:
        """``resolved`` (a value) or ``bounded`` (an upper bound), as the monitor decided."""
        return "bounded" if self.below_resolution else "resolved"

    @property
    def provenance(self) -> str:
        """``method@host`` (just the method where the host is unknown)."""
        return f"{self.method}@{self.host}" if self.host else self.method


class Creation(_Model):
    """How the variant was made: its budget and every window spent creating it.

    A variant made outside joulebench (a checkpoint or an ONNX file given by path) had
    no window here: ``source`` is ``unknown``, or ``reported`` with the user's figure in
    ``reported_j`` (never measured, never 0 J); windows measured on top of it (an export
    by a runtime) are kept in ``extra_windows``."""

    epochs: int
    batch_size: int
    lr: float
    max_samples: int | None = None
    precision: str = "fp32"
    window: Window | None = None
    extra_windows: dict[str, Window] = Field(default_factory=dict)  # e.g. the teacher's logits
    source: str = "measured"  # measured | unknown | reported
    reported_j: float | None = Field(default=None, gt=0)
    note: str = ""  # where an unmeasured creation happened (the file it came from)
    #: the given file's digest: the same file under several seeds is one model, counted once
    origin_sha256: str | None = None

    @model_validator(mode="after")
    def _known(self) -> "Creation":
        if self.source not in CREATION_SOURCES:
            raise ValueError(f"creation source {self.source!r} is not one of {', '.join(CREATION_SOURCES)}")
        if self.source == "measured" and self.window is None:
            raise ValueError("a measured creation needs its window")
        if (self.source == "reported") != (self.reported_j is not None):
            raise ValueError("reported_j is given exactly when the creation energy is reported")
        return self

    def windows(self) -> list[Window]:
        return [w for w in (self.window, *self.extra_windows.values()) if w is not None]


class Eval(_Model):
    accuracy: float = Field(ge=0, le=1)
    correct: int = Field(ge=0)
    n: int = Field(gt=0)
    predictions: list[int]
    labels: list[int]

    @model_validator(mode="after")
    def _consistent(self) -> "Eval":
        if len(self.predictions) != self.n or len(self.labels) != self.n or self.correct > self.n:
            raise ValueError(f"{len(self.predictions)} predictions and {len(self.labels)} labels for n={self.n}")
        return self

    def correct_mask(self) -> list[bool]:
        """Per eval example: was the prediction right? (The one implementation.)"""
        return [p == y for p, y in zip(self.predictions, self.labels)]


class Work(_Model):
    """A target's counted work (work.py): a count of executed instructions, never energy."""

    metric: str = "instructions"
    instructions: int | None = Field(default=None, gt=0)  # over the counted passes, the allocator left out; None: not counted
    allocator: int | None = None  # the C allocator's calls, left out of instructions (None: in older records)
    passes: int = 0
    inferences: int = 0
    tool: str = ""
    threads: int = 1
    scope: str = ""
    #: [counted, of]: a sample of the target's eval batches (measure.work_batches); None: every one
    batches: list[int] | None = None
    #: with a sample: how far such a sample was measured to sit from every batch counted
    sample_error: str | None = None
    process_s: float | None = None  # the wall time the run waited for the group's counting job (and for its process)
    start_s: float | None = None  # the process's start, begin to ready, in the group it was first used (None: later)
    skipped: str | None = None

    @property
    def per_inference(self) -> float | None:
        return self.instructions / self.inferences if self.instructions and self.inferences else None

    @property
    def basis(self) -> str:
        """What the count is of: the tool, and the batches when a sample was counted.
        Counts on different bases are not compared."""
        return self.tool + (f", {self.batches[0]} of {self.batches[1]} eval batches" if self.batches else "")


class Inference(_Model):
    batch_size: int = Field(gt=0)
    passes: int = Field(gt=0)
    inferences_per_window: int = Field(gt=0)
    warmup_s: float
    schedule: str = ""
    include_transfer: bool = False  # host-to-device copies inside the windows
    rounds: list[int] = Field(default_factory=list)
    sequence: list[int] = Field(default_factory=list)
    compiles_in_windows: int | None = None  # graphs compiled inside these windows (None: never compiles)
    windows: list[Window] = Field(min_length=1)
    work: Work | None = None  # counted after the energy rounds, where the suite asked (measure.work)

    def j_per_inference(self, net: bool = False) -> list[float]:
        """Each window's joules per inference, gross or net of idle. (The one implementation.)"""
        return [(w.net_energy_j if net else w.energy_j) / self.inferences_per_window for w in self.windows]

    def rates(self) -> list[float]:
        """Inferences per second, per window."""
        return [self.inferences_per_window / w.duration_s for w in self.windows]


class CurvePoint(_Model):
    step: int
    examples_seen: int
    train_J: float  # cumulative training energy, gross, the validation passes' excluded
    train_J_net: float
    train_s: float
    val_accuracy: float  # on the carved validation split
    eval_J: float  # this point's validation pass


class Curve(_Model):
    """A training loop's curve (curves.py)."""

    eval_every: int = 0
    evals_per_epoch: int = 0
    target_accuracy: float | None = None
    validation: dict[str, Any] = Field(default_factory=dict)
    points: list[CurvePoint]
    eval_windows: list[Window] = Field(default_factory=list)

    @property
    def eval_j(self) -> float:
        return sum(w.energy_j for w in self.eval_windows)


class RunRecord(_Model):
    schema_version: int = Field(alias="schema")
    suite: str
    profile: str = "full"
    config_hash: str
    run_config_hash: str | None = None
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    run_key: str
    task: str
    model: str
    variant_id: str
    variant: str
    technique: str | None = None
    parent: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int
    device: dict[str, Any] = Field(default_factory=lambda: dict(CPU_DEVICE))
    runtime: dict[str, Any] = Field(default_factory=lambda: dict(EAGER_RUNTIME))
    status: str = "ok"  # or "skipped", with ``reason``; or "trial" (a sweep trial: train, curve, no eval)
    reason: str | None = None
    meter: dict[str, Any] = Field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    # Only in "ok" records:
    artifact_key: str | None = None
    #: which model this is for pooling seeds: the artifact key, or one without the seed
    #: for a model the seed does not change (a checkpoint file, its int8); None before it
    model_identity: str | None = None
    cached: dict[str, Any] | None = None
    model_info: dict[str, Any] = Field(default_factory=dict)
    architecture: str | None = None
    technique_info: dict[str, Any] = Field(default_factory=dict)
    n_params: int | None = None
    n_nonzero_params: int | None = None
    size_bytes: int | None = None
    flops: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    train: Creation | None = None
    eval: Eval | None = None
    inference: Inference | None = None  # at the table's batch size
    inference_sweep: list[Inference] = Field(default_factory=list)  # at the suite's other batch sizes
    curve: Curve | None = None  # the training curve, where the suite asked for one (and every trial)
    sweep: dict[str, Any] | None = None  # on a swept model's baseline: the trials and the selection
    #: The line it was read from (in memory only, for messages).
    line: int | None = Field(default=None, exclude=True)
    #: The identity of the run it was read from (in memory only: rundir.read sets it).
    run: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _complete(self) -> "RunRecord":
        if self.status == "ok" and (self.train is None or self.eval is None or self.inference is None):
            raise ValueError("a record with status ok needs train, eval and inference")
        for name in FREE_FORM:
            plain(getattr(self, name), name)
        for name, key, kinds in TYPED_KEYS:  # null is absence, allowed everywhere
            value = (getattr(self, name) or {}).get(key)
            if value is not None and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
                raise ValueError(f"{name}.{key} is {type(value).__name__}, not "
                                 f"{' or '.join(k.__name__ for k in kinds)}")
        trials = (self.sweep or {}).get("trials", [])
        if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
            raise ValueError("sweep.trials is not a list of trials")
        return self

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def inferences(self) -> list[Inference]:
        """Every measured batch size, the table's first."""
        return [self.inference, *self.inference_sweep] if self.inference is not None else []

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunRecord":
        return cls.model_validate(upgrade(raw))
