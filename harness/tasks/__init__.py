"""Tasks: where the data comes from and which split is the eval split.

A task is one file with one ``@TASKS.register(name)`` loader. The loader takes the
user's data folder (or None) plus its suite options and returns a TaskData whose eval
split is a real held-out split: accuracy is never computed on training data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harness.registry import Registry, discover


@dataclass(frozen=True)
class Split:
    inputs: Sequence[Any]  # list[str] (or (text, pair) tuples) for text, float array (N, ...) for images
    labels: np.ndarray  # int64, (N,)
    #: Each example's position in the split as the task loaded it (None: 0..N-1), so a
    #: carved validation split and the examples trained on can be checked for overlap.
    index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def positions(self) -> np.ndarray:
        return self.index if self.index is not None else np.arange(len(self))

    def take(self, idx: np.ndarray) -> "Split":
        inputs = self.inputs[idx] if isinstance(self.inputs, np.ndarray) else [self.inputs[i] for i in idx]
        return Split(inputs, self.labels[idx], self.positions()[idx])

    def subset(self, max_samples: int | None, seed: int = 0) -> "Split":
        """A fixed, seeded subset, so every variant and seed sees the same examples."""
        if max_samples is None or max_samples >= len(self):
            return self
        return self.take(np.sort(np.random.default_rng(seed).permutation(len(self))[:max_samples]))


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
    #: Carved from the training split (``carve``) for curves and sweep selection; never
    #: the eval split, never trained on.
    validation: Split | None = None

    def carve(self, fraction: float, max_examples: int, seed: int) -> "TaskData":
        """This task with a fixed, seeded validation split taken out of its training
        split: ``fraction`` of it, at most ``max_examples``. Training then sees only the
        rest (the ``max_samples`` subset is drawn from the rest)."""
        n = len(self.train)
        k = min(max_examples, int(round(fraction * n)))
        if not 1 <= k < n:
            raise ValueError(f"validation fraction {fraction} of {n} training examples leaves no validation or no "
                             "training example")
        perm = np.random.default_rng(seed).permutation(n)
        val, rest = np.sort(perm[:k]), np.sort(perm[k:])
        carved = {"fraction": fraction, "max_examples": max_examples, "seed": seed, "n": int(k),
                  "from": "the training split", "n_train_left": int(n - k)}
        return replace(self, train=self.train.take(rest), validation=self.train.take(val),
                       info={**self.info, "validation": carved})


def save(task: TaskData, folder: Path) -> None:
    """``task`` as plain files in ``folder`` (JSON and ``.npy``, never a pickle), for a
    process that must see the same examples without loading them again (counting.py)."""
    meta: dict[str, Any] = {k: getattr(task, k) for k in ("name", "num_labels", "kind", "source", "eval_split", "info")}
    for name in ("train", "eval", "validation"):
        split = getattr(task, name)
        if split is None:
            continue
        np.save(folder / f"{name}.labels.npy", split.labels, allow_pickle=False)
        if split.index is not None:
            np.save(folder / f"{name}.index.npy", split.index, allow_pickle=False)
        if isinstance(split.inputs, np.ndarray):
            np.save(folder / f"{name}.inputs.npy", split.inputs, allow_pickle=False)
            meta[name] = "array"
            meta[f"{name}_strides"] = list(split.inputs.strides)
        else:
            meta[name] = [list(x) if isinstance(x, tuple) else x for x in split.inputs]
    (folder / "task.json").write_text(json.dumps(meta))


def _strided(array: np.ndarray, strides: list[int]) -> np.ndarray:
    """``array`` with the strides it had when saved, where they differ only on axes of
    length 1 (``x[:, None]`` leaves such a stride behind, and PyTorch reads it: a
    (N, 1, 8, 8) batch with a channel stride of 4 bytes runs another convolution kernel,
    27% more instructions, than one with the stride np.load gives)."""
    if list(array.strides) == strides or any(s != t and n != 1 for n, s, t in zip(array.shape, array.strides, strides)):
        return array
    return np.lib.stride_tricks.as_strided(array, array.shape, strides)  # the same bytes: no axis of length > 1 changes


def load(folder: Path) -> TaskData:
    """What ``save`` wrote: the same examples, in the same order."""
    meta = json.loads((folder / "task.json").read_text())

    def split(name: str) -> Split | None:
        if name not in meta:
            return None
        if meta[name] == "array":
            inputs = _strided(np.load(folder / f"{name}.inputs.npy", allow_pickle=False), meta[f"{name}_strides"])
        else:
            inputs = [tuple(x) if isinstance(x, list) else x for x in meta[name]]
        index = folder / f"{name}.index.npy"
        return Split(inputs, np.load(folder / f"{name}.labels.npy", allow_pickle=False),
                     np.load(index, allow_pickle=False) if index.is_file() else None)

    return TaskData(meta["name"], split("train"), split("eval"), meta["num_labels"], meta["kind"], meta["source"],
                    meta["eval_split"], meta["info"], split("validation"))


def resolve_folder(data: str, data_dir: Path | None) -> Path:
    """A task's ``data:`` folder: as given if absolute, else against ``--data-dir``, which
    may name the folder itself (sst2/) or the folder that holds it."""
    folder = Path(data).expanduser()
    if not folder.is_absolute() and data_dir is not None:
        base = Path(data_dir)
        folder = base / data if (base / data).is_dir() or not base.is_dir() else base
    return folder


TaskLoader = Callable[..., TaskData]
TASKS: Registry[TaskLoader] = Registry("task")

discover(__name__, __path__)  # every file of this package registers its entries as it loads
