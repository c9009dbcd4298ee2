"""Your model through the ladder: a module trained by your own code, evaluated, compressed,
deployed and measured as a suite's baseline is, with the same techniques, runtimes,
windows and columns.

    from harness import api

    with api.track("fine-tune") as w:
        my_training_loop(model)
    result = api.bench(model, eval_data=(X_eval, y_eval), train_data=(X_train, y_train),
                       variants=[...],   # a suite file's variant mappings (README: Commands)
                       creation=w)       # the tracked window; a number of joules (reported); None (unknown)
    result.table                     # the typed columns of table.parquet; result.run_dir for report/compare

The given module is the baseline row: its accuracy on ``eval_data`` and its creation as
given (measured by ``api.track``, reported by you, or unknown: never 0 J). Each variant is
a suite file's variant mapping whose parent defaults to the given model. The module is
called as ``model(x)`` on float32 features (int64 where the arrays hold integers, e.g.
token ids) and must return class logits ``[N, classes]`` (a tensor, an output with
``.logits``, or a tuple whose first item is the logits). Bad input is one line
(``UserError``) before the run folder exists.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from harness.errors import UserError
from harness.execute import Result, execute, flag
from harness.progress import log as progress_log

#: The quick profile's measurement settings (a user's ``measure=`` wins over them).
QUICK_MEASURE = {"repetitions": 6, "min_window_s": 0.2, "warmup": 1, "idle_s": 1.0}


def _np(value: Any) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _pair(item: Any, what: str) -> tuple[Any, Any]:
    """(x, y) of one dataset item or loader batch: a pair, or a mapping with x/y or labels."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, Mapping):
        x = next((item[k] for k in ("x", "input_ids", "pixel_values", "features") if k in item), None)
        y = next((item[k] for k in ("y", "label", "labels") if k in item), None)
        if x is not None and y is not None:
            return x, y
    raise UserError(f"api.bench {what}: an item is {type(item).__name__}; give (x, y) pairs, or mappings with "
                    "'x' and 'y' (or 'label')")


def arrays(data: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) as arrays from a pair of arrays or tensors, a torch Dataset or DataLoader of
    (x, y) items, or a Hugging Face ``datasets.Dataset`` with numeric columns and a label."""
    from torch.utils.data import DataLoader

    if isinstance(data, DataLoader):
        batches = [(_np(x), _np(y)) for x, y in (_pair(b, what) for b in data)]
        if not batches:
            raise UserError(f"api.bench {what} holds 0 examples; give at least one")
        return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])
    if isinstance(data, tuple) and len(data) == 2:
        return _np(data[0]), _np(data[1])
    if hasattr(data, "column_names") and hasattr(data, "with_format"):  # datasets.Dataset
        label = next((c for c in ("label", "labels", "y") if c in data.column_names), None)
        if label is None:
            raise UserError(f"api.bench {what}: the dataset has no label column (it has "
                            f"{', '.join(data.column_names)}); add a 'label' column")
        table = data.with_format("numpy")
        features = [c for c in data.column_names if c != label]
        cols = [np.asarray(table[c]) for c in features]
        if any(c.dtype.kind not in "fiub" for c in cols):
            raise UserError(f"api.bench {what}: dataset columns {', '.join(features)} are not all numeric; tokenize "
                            "text first (dataset.map(tokenizer)) and keep numeric columns only")
        x = cols[0] if len(cols) == 1 else np.concatenate([c.reshape(len(c), -1) for c in cols], axis=1)
        return x, np.asarray(table[label])
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):  # a torch Dataset
        pairs = [_pair(data[i], what) for i in range(len(data))]
        if not pairs:
            raise UserError(f"api.bench {what} holds 0 examples; give at least one")
        return np.stack([_np(x) for x, _ in pairs]), np.asarray([_np(y) for _, y in pairs])
    raise UserError(f"api.bench {what} is a {type(data).__name__}; give (X, y) arrays or tensors, a torch Dataset "
                    "or DataLoader of (x, y), or a datasets.Dataset")


def classes(model: Any, inputs: np.ndarray) -> int:
    """How many classes ``model`` scores, from its output on the first few examples:
    one line where it is not ``[N, classes]`` logits."""
    import torch

    from harness.models import module_device
    from harness.models.given import logits

    n = min(8, len(inputs))
    batch = torch.as_tensor(inputs[:n]).to(module_device(model))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = logits(model(batch))
    except UserError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"api.bench: the model fails on eval_data shaped {tuple(batch.shape)} ({type(exc).__name__}: "
                        f"{first}); give data the model takes as model(x)") from None
    finally:
        model.train(was)
    if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 2 or not out.is_floating_point():
        raise UserError(f"api.bench: the model returns {str(out.dtype).replace('torch.', '')} of shape "
                        f"{tuple(out.shape)} for {n} examples; it must return class logits [N, classes], "
                        "at least 2 classes")
    return int(out.shape[1])


def _labels_fit(split: Any, what: str, k: int) -> None:
    """One line where a label is no index of the model's ``k`` logits."""
    if split.labels.max() >= k:
        raise UserError(f"api.bench {what}: label {int(split.labels.max())} is outside the model's {k} logits "
                        f"(classes 0..{k - 1}); labels are class indices of the model's output")


def creation_of(creation: Any, weights: str) -> Any:
    """How the given module's creation is known (models/given.py ``Given``)."""
    from harness.models.given import Given
    from harness.outside import MadeElsewhere
    from harness.track import Window, track

    if isinstance(creation, track):
        if creation.result is None:
            raise UserError(f"api.bench creation= is {creation}; pass the window after its with-block has ended")
        creation = creation.result
    where = "the module given to api.bench"
    if isinstance(creation, Window):
        return Given({"create": creation.measurement}, None, {
            "creation": f"trained by the user's own code, measured by api.track({creation.name!r}): {creation}"})
    if creation is None:
        made = MadeElsewhere(where, weights)
    elif isinstance(creation, (int, float)) and not isinstance(creation, bool) and math.isfinite(creation) \
            and creation > 0:
        made = MadeElsewhere(where, weights, float(creation))
    else:
        raise UserError(f"api.bench creation= is {creation!r}; give the api.track window of the training, its "
                        "energy in joules as you measured it elsewhere (reported), or None (unknown)")
    return Given({}, made, {"creation": made.note(), "train_samples": 0})


def _digest(*parts: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in parts:
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def bench(model: Any, eval_data: Any, *, train_data: Any = None, variants: Iterable[Mapping[str, Any]] = (),
          creation: Any = None, seeds: Iterable[int] = (0,), out: str | Path | None = None, quick: bool = False,
          name: str = "model", train: Mapping[str, Any] | None = None, measure: Mapping[str, Any] | None = None,
          models: Mapping[str, Any] | None = None, meter: str | None = None, device: str | None = None,
          allow_estimate: bool = False, carbon: Any = None, log: Callable[[str], None] = progress_log,
          plots: bool = True) -> Result:
    """The given module and its variants, measured; the table as ``api.run`` returns it
    (``plots=False``: without the figures).
    ``train``: the budget of variants that train (fine-tuning, distilling), as a suite's
    ``train:``; ``models``: further suite models (a distillation student's family)."""
    from torch import nn

    from harness import device as device_mod, suite as suite_mod
    from harness.compress import TECHNIQUES
    from harness.files import check_creatable
    from harness.models.given import FAMILY, held, weights_digest
    from harness.runner import carved
    from harness.tasks import Split
    from harness.tasks.tensors import checked, task_of

    plots = flag(plots, "api.bench plots")
    if not isinstance(model, nn.Module):
        raise UserError(f"api.bench takes a torch.nn.Module (or a Hugging Face model), not {type(model).__name__}")
    x, y = arrays(eval_data, "eval_data")
    evals = checked("api.bench eval_data", x, y, None, any_shape=True)
    k = classes(model, evals.inputs)
    _labels_fit(evals, "eval_data", k)
    if train_data is not None:
        trains = checked("api.bench train_data", *arrays(train_data, "train_data"), None, any_shape=True)
        _labels_fit(trains, "train_data", k)
    else:
        trains = Split(evals.inputs[:0], evals.labels[:0])
    data_sha = _digest(trains.inputs, trains.labels, evals.inputs, evals.labels)
    task = task_of("given", trains, evals, k, "api.bench train_data", "api.bench eval_data",
                   source=f"arrays given to api.bench (sha256 {data_sha[:12]})",
                   eval_split=f"eval_data ({len(evals)} examples)")
    weights = weights_digest(model)
    given = creation_of(creation, weights)
    if not isinstance(variants, Iterable) or isinstance(variants, (str, Mapping)):
        raise UserError("api.bench variants= is a list of variant mappings ({'id': 'int8', 'technique': ...})")
    listed = list(variants)
    if not all(isinstance(v, Mapping) for v in listed):
        raise UserError("api.bench variants= is a list of variant mappings ({'id': 'int8', 'technique': ...})")
    if models is not None and (not isinstance(models, Mapping) or name in models):
        raise UserError(f"api.bench models= adds suite models by name (a distillation student), other than {name!r}, "
                        "the given model's name")
    mine = {"family": FAMILY, "options": {"weights": weights}}
    measured = {**(QUICK_MEASURE if quick else {}), **dict(measure or {})}
    raw = {"name": name, "description": f"{type(model).__name__} given to api.bench",
           "task": {"name": "given", "options": {"sha256": data_sha}}, "seeds": list(seeds),
           "train": dict(train or {}), "models": {name: mine, **dict(models or {})},
           "variants": [{"parent": name, **dict(v)} for v in listed], "measure": measured}
    s = suite_mod.parse(raw, "api.bench", "quick" if quick else "full")
    if s.measure.work != "none":
        raise UserError("api.bench cannot count work yet (the work pass runs in a process of its own, which the given "
                        "module cannot reach); drop measure work, or run a suite")
    for v in s.variants:
        if train_data is None and v.technique and TECHNIQUES.get(v.technique)().trains(v.params):
            raise UserError(f"api.bench variant {v.id!r} ({v.technique}) trains on the training data; give "
                            "train_data=(X, y), or drop the variant")
    dev = device_mod.resolve(device or s.device, where="api.bench device")
    run_dir = Path(out or Path("results") / s.name / f"{datetime.now():%Y%m%d-%H%M%S}-{s.profile}")
    check_creatable(run_dir, "run directory")
    with held(weights, model, given):
        return execute(s, carved(s, task), run_dir, dev, meter=meter, allow_estimate=allow_estimate,
                       command=["harness.api.bench", name], log=log, carbon=carbon, plots=plots)
