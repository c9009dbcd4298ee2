"""Arrays as a task, by YAML alone: features or images with integer labels, one file per
split in a local folder, read as data.

    task:
      name: tensors
      options: {data: my_arrays}      # a folder, resolved against --data-dir if relative

The folder holds ``<split>.npz`` (arrays ``x`` and ``y``), ``<split>.pt`` (a mapping of
tensors ``x`` and ``y``, read with ``torch.load(weights_only=True)``: tensors only),
``<split>.parquet`` (a ``label`` column, every other column a feature) or
``<split>_x.npy`` with ``<split>_y.npy``; the split names are options (``train`` and
``eval`` by default). ``x`` is (N, features) or (N, C, H, W), any real dtype, read as
float32; ``y`` holds integer labels 0..K-1. Nothing in a file runs code: ``.npy``/``.npz``
are read with ``allow_pickle=False`` (an object array is refused), a ``.pt`` that holds
anything but tensors is refused by torch's restricted loader. Every check is one line
naming the file and the fix, before any run folder exists: shapes that disagree, a
non-finite feature, a label that is not a whole number in range, an empty split, an eval
split that is the training data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from harness.errors import UserError
from harness.registry import between
from harness.tasks import TASKS, Split, TaskData, resolve_folder

Text = Annotated[str, Field(min_length=1, max_length=4_096)]
FORMATS = ("npz", "pt", "parquet", "npy")
#: The most examples a split may hold (a split is held in memory), and the most labels.
MAX_ROWS = 50_000_000
MAX_LABELS = 100_000
#: An eval split that repeats at least this share of the training rows is the training data.
HELD_IN_SHARE = 0.5


def _find(folder: Path, split: str) -> tuple[Path, str]:
    found = [(folder / f"{split}.{fmt}", fmt) for fmt in ("npz", "pt", "parquet")
             if (folder / f"{split}.{fmt}").is_file()]
    if (folder / f"{split}_x.npy").is_file():
        found.append((folder / f"{split}_x.npy", "npy"))
    if not found:
        raise UserError(f"no {split} split in {folder}: give {split}.npz (x, y), {split}.pt, {split}.parquet or "
                        f"{split}_x.npy with {split}_y.npy")
    if len(found) > 1:
        raise UserError(f"{folder} holds the {split} split twice ({', '.join(p.name for p, _ in found)}); keep one")
    return found[0]


def _read(path: Path, fmt: str) -> tuple[Any, Any]:
    """(x, y) as the file holds them, nothing executed."""
    try:
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("x", "y") if k not in z.files]
                if missing:
                    raise UserError(f"{path} has no array {missing[0]!r} (it holds {', '.join(z.files) or 'none'}); "
                                    "save it with np.savez(path, x=features, y=labels)")
                return z["x"], z["y"]
        if fmt == "npy":
            y_path = path.with_name(path.name[:-len("_x.npy")] + "_y.npy")
            if not y_path.is_file():
                raise UserError(f"{path} has no labels beside it: save them as {y_path.name}")
            return np.load(path, allow_pickle=False), np.load(y_path, allow_pickle=False)
        if fmt == "pt":
            import torch

            obj = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(obj, dict) or not all(isinstance(obj.get(k), torch.Tensor) for k in ("x", "y")):
                raise UserError(f"{path} must hold a mapping of tensors x and y (torch.save({{'x': X, 'y': Y}}, "
                                "path)), not " + type(obj).__name__)
            return obj["x"].numpy(), obj["y"].numpy()
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "label" not in table.column_names or table.num_columns < 2:
            raise UserError(f"{path} needs a 'label' column and at least one feature column "
                            f"(it has {', '.join(table.column_names)})")
        features = [c for c in table.column_names if c != "label"]
        return (np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in features], axis=1),
                table.column("label").to_numpy(zero_copy_only=False))
    except UserError:
        raise
    except Exception as exc:  # a pickle, a truncated archive, a tensor file of other kinds: one line
        if fmt == "pt":
            raise UserError(f"{path} holds something other than tensors, or is no torch file (torch.load with "
                            "weights_only=True refused it); save a mapping of tensors: torch.save({'x': X, 'y': Y}, "
                            "path)") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"{path} cannot be read as {fmt} arrays ({type(exc).__name__}: {first}); save plain "
                        "numeric arrays (no pickled objects)") from None


def checked(path: Path | str, x: Any, y: Any, num_labels: int | None, any_shape: bool = False) -> Split:
    """The rows of one split, checked (the tensors task's files and api.bench's arrays
    alike): numbers, one finite example per label, whole-number labels in range. Features
    are float32; ``any_shape`` (a given module, which may embed token ids) keeps integer
    features as int64 and takes any shape with an example axis."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind not in "fiub":
        raise UserError(f"{path}: x is {x.dtype}, not numbers; save a numeric array")
    if (x.ndim < 2) if any_shape else (x.ndim not in (2, 4)):
        raise UserError(f"{path}: x has shape {x.shape}; give (N, features)"
                        + (", or (N, ...) with one example per row" if any_shape else
                           " or (N, channels, height, width)"))
    if not 0 < len(x) <= MAX_ROWS:
        raise UserError(f"{path}: the split holds {len(x)} examples; give 1 to {MAX_ROWS:,}")
    if y.shape != (len(x),):
        raise UserError(f"{path}: y has shape {y.shape} for {len(x)} examples in x; give one label per example")
    x = x.astype(np.int64 if any_shape and x.dtype.kind in "iu" else np.float32)
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(bad):
        raise UserError(f"{path}: example {int(bad[0])} holds a NaN or infinite feature ({len(bad)} such); "
                        "clean or drop them")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise UserError(f"{path}: labels must be whole numbers 0..K-1 (a class index), not {y.dtype} values")
    if y.dtype.kind not in "fiu":
        raise UserError(f"{path}: labels are {y.dtype}; give integer class indices 0..K-1")
    y = y.astype(np.int64)
    top = num_labels if num_labels is not None else MAX_LABELS
    if y.min() < 0 or y.max() >= top:
        raise UserError(f"{path}: label {int(y.min() if y.min() < 0 else y.max())} is outside 0..{top - 1}; "
                        "labels are class indices" + (" (num_labels)" if num_labels is not None else ""))
    return Split(x, y)


def _held_in(train: Split, evals: Split) -> float:
    if train.inputs.shape[1:] != evals.inputs.shape[1:]:
        return 0.0
    seen = {hashlib.sha256(row.tobytes()).digest() for row in train.inputs}
    return float(np.mean([hashlib.sha256(row.tobytes()).digest() in seen for row in evals.inputs]))


@TASKS.register("tensors")
def load_tensors(data_dir: Path | None, *, data: Text, train_split: Text = "train", eval_split: Text = "eval",
                 num_labels: between(2, MAX_LABELS, int) | None = None) -> TaskData:
    folder = resolve_folder(data, data_dir)
    if not folder.is_dir():
        raise UserError(f"tensors data folder {folder} not found; pass --data-dir or an existing data: folder")
    if train_split == eval_split:
        raise UserError(f"tensors train_split and eval_split are both {train_split!r}; evaluate on a held-out split")
    splits = {}
    for name in (train_split, eval_split):
        path, fmt = _find(folder, name)
        splits[name] = (checked(path, *_read(path, fmt), num_labels), path)
    (train, train_path), (evals, eval_path) = splits[train_split], splits[eval_split]
    return task_of("tensors", train, evals, num_labels, str(train_path), str(eval_path),
                   source=f"{folder} ({train_path.name}, {eval_path.name})",
                   eval_split=f"{eval_split} ({eval_path.name}, {len(evals)} examples)")


def task_of(name: str, train: Split, evals: Split, num_labels: int | None, train_where: str, eval_where: str,
            source: str, eval_split: str) -> TaskData:
    """Two checked splits as a task: the same features in both, an eval split that is
    not the training data, at least two classes. ``train`` may be empty (api.bench with
    no training data: nothing is trained)."""
    if len(train) and train.inputs.shape[1:] != evals.inputs.shape[1:]:
        raise UserError(f"{eval_where}: examples of shape {evals.inputs.shape[1:]} where {train_where} has "
                        f"{train.inputs.shape[1:]}; both splits need the same features")
    held_in = _held_in(train, evals) if len(train) else 0.0
    if held_in >= HELD_IN_SHARE:
        raise UserError(f"{held_in:.0%} of {eval_where} repeats {train_where} example for example; evaluate on a "
                        "held-out split, never on the training data")
    k = num_labels if num_labels is not None else int(max(train.labels.max(initial=0), evals.labels.max())) + 1
    if k < 2:
        raise UserError(f"{train_where} holds one class only; a classifier needs at least 2 (or set num_labels)")
    digest = hashlib.sha256(train.inputs.tobytes() + train.labels.tobytes()).hexdigest()
    return TaskData(name=name, train=train, eval=evals, num_labels=k,
                    kind="image" if evals.inputs.ndim == 4 else "features", source=source, eval_split=eval_split,
                    info={"n_total": len(train) + len(evals), "shape": list(evals.inputs.shape[1:]),
                          "train_sha256": digest})
