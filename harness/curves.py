"""Training curves: validation accuracy against the training energy spent to reach it.

A ``CurveRecorder`` is the training loop's checkpoint. At each point it reads the open
training window without closing it (``EnergyMonitor.lap``), then evaluates on the
validation split carved from the training data, in a window of its own nested inside
the training window. The evaluations' joules are subtracted, so a point's ``train_J`` is
training only, and ``window`` yields the training window less every evaluation: the
evaluations are reported beside the training figure, never inside it. The eval split is
never touched here.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from harness.meters import EnergyMonitor, Measurement

if TYPE_CHECKING:  # the report reads j_to_target without importing the models
    from torch import nn

    from harness.models import Encoded

#: Without a suite target, J_to_target is the energy to first reach this share of the
#: run's own final validation accuracy.
DEFAULT_TARGET_SHARE = 0.99


@dataclass(frozen=True)
class CurvePlan:
    """How a training loop records its curve, as a value: the carved validation split
    encoded for the module that trains (None: no curve), and the suite's schedule. The
    workshop makes one per training loop and hands it to whoever trains (a baseline, a
    technique), who asks it for the loop's ``recorder``."""

    monitor: EnergyMonitor
    data: "Encoded | None" = None
    batch_size: int = 128
    validation: dict[str, Any] = field(default_factory=dict)
    target_accuracy: float | None = None
    schedule: dict[str, Any] = field(default_factory=dict)

    def recorder(self, key: str, module: "nn.Module") -> "CurveRecorder":
        """The recorder of the training loop in window ``key`` that trains ``module``."""
        return CurveRecorder(self.monitor, key, module, self.data, self.batch_size, dict(self.validation),
                             self.target_accuracy, dict(self.schedule))


@dataclass
class CurveRecorder:
    monitor: EnergyMonitor
    key: str  # the training window's key
    module: "nn.Module"
    data: "Encoded | None" = None  # the carved validation split, encoded for this module; None: no curve
    batch_size: int = 128
    validation: dict[str, Any] = field(default_factory=dict)  # how the split was carved (recorded)
    target_accuracy: float | None = None
    schedule: dict[str, Any] = field(default_factory=dict)  # eval_every / evals_per_epoch, as configured
    points: list[dict[str, Any]] = field(default_factory=list)
    evals: list[Measurement] = field(default_factory=list)  # each validation pass as reported
    spent: list[Measurement] = field(default_factory=list)  # each pass's whole window, padding included

    @contextmanager
    def window(self) -> Iterator[list[Measurement]]:
        """The training window; ``out[0]`` is its training-only part once it closes."""
        result: list[Measurement] = []
        with self.monitor.window(self.key) as out:
            yield result
        result.append(self.monitor.minus(self.key, out[0], self.spent) if self.spent else out[0])

    @property
    def checkpoint(self) -> "CurveRecorder | None":
        """What train() takes as its checkpoint: this recorder, or None without a curve."""
        return self if self.data is not None else None

    def __call__(self, step: int, seen: int) -> None:
        """A point: the training so far (less earlier evaluations), then a validation pass."""
        from harness.evaluate import evaluate  # evaluate -> runtimes -> compress -> this module

        lap = self.monitor.lap(self.key)
        was = self.module.training
        self.module.eval()
        # a validation pass lasts milliseconds: padded to the meter's resolution like short
        # creation work, reported for the pass alone where resolved, else as a bound; its
        # whole window (padding included) is what it takes out of the training window
        with self.monitor.creation_window(f"{self.key}:val{len(self.evals) + 1}", spent=self.spent) as out:
            accuracy = evaluate(self.module, self.data, self.batch_size).accuracy
        self.module.train(was)
        self.points.append({
            "step": step, "examples_seen": seen,
            "train_J": lap.energy_j - sum(m.energy_j for m in self.spent[:-1]),
            "train_J_net": lap.net_energy_j - sum(m.net_energy_j for m in self.spent[:-1]),
            "train_s": lap.duration_s - sum(m.duration_s for m in self.spent[:-1]),
            "val_accuracy": accuracy, "eval_J": out[0].energy_j,
        })
        self.evals.append(out[0])

    def curve(self) -> dict[str, Any] | None:
        """The record's ``curve`` block; None when no point was taken."""
        if not self.points:
            return None
        return {**self.schedule, "target_accuracy": self.target_accuracy, "validation": self.validation,
                "points": self.points, "eval_windows": [m.to_dict() for m in self.evals]}


def target_of(points: list[dict[str, Any]], target_accuracy: float | None) -> float:
    """The accuracy a curve must reach: the suite's, else 99% of its own final one."""
    if target_accuracy is not None:
        return target_accuracy
    return DEFAULT_TARGET_SHARE * points[-1]["val_accuracy"]


def j_to_target(points: list[dict[str, Any]], target_accuracy: float | None) -> float | None:
    """Training joules at the first point whose validation accuracy reached the target;
    None when no point did. Resolution: one curve interval."""
    if not points:
        return None
    target = target_of(points, target_accuracy)
    for p in points:
        if p["val_accuracy"] >= target:
            return p["train_J"]
    return None
