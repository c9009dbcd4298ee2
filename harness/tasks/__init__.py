"""Tasks: where the data comes from and which split is the eval split.

A task is one file with one ``@TASKS.register(name)`` loader. The loader takes the
user's data folder (or None) plus its suite options and returns a TaskData whose eval
split is a real held-out split: accuracy is never computed on training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from harness.registry import Registry


@dataclass(frozen=True)
class Split:
    inputs: Sequence[Any]  # list[str] (or (text, pair) tuples) for text, float array (N, ...) for images
    labels: np.ndarray  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, max_samples: int | None, seed: int = 0) -> "Split":
        """A fixed, seeded subset, so every variant and seed sees the same examples."""
        if max_samples is None or max_samples >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:max_samples])
        inputs = self.inputs[idx] if isinstance(self.inputs, np.ndarray) else [self.inputs[i] for i in idx]
        return Split(inputs, self.labels[idx])


@dataclass(frozen=True)
class TaskData:
    name: str
    train: Split
    eval: Split
    num_labels: int
    kind: str  # "text" or "image"
    source: str  # where the data was read from, recorded with the results
    eval_split: str  # the name of the held-out split, e.g. "validation (GLUE dev)"
    info: dict[str, Any] = field(default_factory=dict)


TaskLoader = Callable[..., TaskData]
TASKS: Registry[TaskLoader] = Registry("task")

# Registering imports: one line per task file.
from harness.tasks import digits, text  # noqa: E402,F401  (text also registers the GLUE presets)
