"""Any text-classification data, by configuration: ``text_classification``.

A local folder holding one file per split (``<split>.tsv|.csv|.jsonl|.parquet``), or a
Hub dataset (``data: hub:<id>``, with ``config:``). Single sentences or sentence pairs
(``text_pair_column``); integer or string labels, mapped through ``labels`` (the names
in id order) or else the sorted set seen in train.

Strict on purpose, as GLUE reading always was here: a malformed row is an error naming
the file and line, never skipped (a silently dropped row changes the eval set, and a
paper's accuracy with it); an eval label train never saw is an error, not a new class;
train and eval must be different splits. Rows are read one at a time from the file
(CSV/TSV/JSONL stream; Parquet reads only the named columns), and each split's sha256 is
recorded with its size.

The GLUE presets (``glue.yaml`` beside this file: sst2, mrpc, rte, qnli, cola, qqp,
mnli, wnli) are data: each is a task name bound to these options, registered below.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Sequence

import numpy as np
import yaml
from pydantic import Field

from harness.errors import DataUnavailable, UserError
from harness.files import file_sha256
from harness.registry import between
from harness.tasks import TASKS, Split, TaskData, resolve_folder
from harness.tasks._rows import FORMATS, Row, checked_row, read_rows, split_file

METRICS = ("accuracy", "f1", "mcc")
HUB_HOST = "huggingface.co"

#: The options' types and ranges (the registry checks a suite against them at load).
Text = Annotated[str, Field(min_length=1, max_length=4_096)]
Column = Text | between(0, 10_000, int)  # a name, or a position with header: false
LabelNames = Annotated[list[Text | int], Field(min_length=2, max_length=100_000)]



def hub_reachable(timeout_s: float = 3.0) -> bool:
    """A fast check, so an offline machine is told at once instead of after ~25 s of retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


# -- reading one split file ----------------------------------------------------------
def _int_like(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())


class Labels:
    """Label names in id order, and the mapping of raw values onto ids."""

    def __init__(self, names: Sequence[Any]) -> None:
        self.names = list(names)
        self._ids = {str(n): i for i, n in enumerate(self.names)}
        self._by_position = not all(_int_like(n) for n in self.names)  # "entailment" files may hold 0/1

    def id_of(self, raw: Any) -> int | None:
        key = str(raw).strip()
        if key in self._ids:
            return self._ids[key]
        if self._by_position and _int_like(raw) and int(raw) < len(self.names):
            return int(raw)
        return None

    @classmethod
    def from_train(cls, raws: Sequence[Any]) -> "Labels":
        seen = {str(r).strip() for r in raws}
        if all(s.lstrip("-").isdigit() for s in seen):
            return cls(sorted((int(s) for s in seen)))
        return cls(sorted(seen))


# -- the task ------------------------------------------------------------------------
def _read_local(folder: Path, stem: str, o: dict[str, Any]) -> tuple[list[Row], Path]:
    if not folder.is_dir():
        raise UserError(f"data folder {folder} does not exist; set task.options.data to a folder holding "
                        f"{stem}.tsv (or .csv/.jsonl/.parquet), or pass --data-dir")
    path, fmt = split_file(folder, stem, o["format"])
    rows = list(read_rows(path, fmt, o["text_column"], o["text_pair_column"], o["label_column"], o["header"]))
    if not rows:
        raise UserError(f"{path} has no rows; split {stem!r} must hold examples")
    return rows, path


def _read_hub(hub_id: str, config: str | None, splits: tuple[str, str], o: dict[str, Any],
              how: str) -> list[list[Row]]:
    if not hub_reachable():
        raise DataUnavailable(f"dataset {hub_id}{'/' + config if config else ''} is not on disk and the Hugging "
                              f"Face Hub is unreachable; {how}")
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, config)
    except Exception as exc:  # the Hub's failure modes are many; the fix is the same
        raise DataUnavailable(f"could not load {hub_id}{'/' + config if config else ''} from the Hub "
                              f"({type(exc).__name__}); {how}") from None
    out = []
    for name in splits:
        if name not in ds:
            raise UserError(f"{hub_id} has no split {name!r}; it has {', '.join(ds)}")
        part = ds[name]
        for col in (o["text_column"], o["text_pair_column"], o["label_column"]):
            if col is not None and col not in part.column_names:
                raise UserError(f"{hub_id} split {name!r} has no column {col!r}; it has {part.column_names}")
        pairs = part[o["text_pair_column"]] if o["text_pair_column"] else None
        out.append([checked_row((i + 1, t, pairs[i] if pairs is not None else None, y), f"{hub_id}:{name}")
                    for i, (t, y) in enumerate(zip(part[o["text_column"]], part[o["label_column"]]))])
    return out


#: A Hub dataset id: a name, or owner/name.
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
#: The share of eval rows found verbatim (text and label) in the training split from
#: which the eval split is not held out (SST-2's validation: 0 of 872).
HELD_IN_SHARE = 0.5


def _held_in(train_rows: list[Row], eval_rows: list[Row]) -> float:
    """The share of eval rows that are train rows, text, pair and label alike."""
    seen = {(t, p, str(y)) for _, t, p, y in train_rows}
    return sum((t, p, str(y)) in seen for _, t, p, y in eval_rows) / max(len(eval_rows), 1)


def _content_sha256(rows: list[Row]) -> str:
    h = hashlib.sha256()
    for _, t, p, y in rows:
        h.update(json.dumps([t, p, y], ensure_ascii=False).encode())
    return h.hexdigest()


@TASKS.register("text_classification")
def load_text_classification(data_dir: Path | None, *, data: Text | None = None, train_split: Text = "train",
                             eval_split: Text = "validation", text_column: Column = "sentence",
                             text_pair_column: Column | None = None, label_column: Column = "label",
                             labels: LabelNames | None = None, format: Text = "auto", header: bool = True,
                             config: Text | None = None, hub: Text | None = None, name: Text = "text_classification",
                             metric: Text = "accuracy", eval_description: Text | None = None) -> TaskData:
    """``data``: a folder (relative to --data-dir / JOULEBENCH_DATA when given) or
    ``hub:<id>``; ``hub``: the Hub dataset to fall back on when no data folder is given
    (the GLUE presets)."""
    o = {"text_column": text_column, "text_pair_column": text_pair_column, "label_column": label_column,
         "format": format, "header": header}
    if format not in ("auto", *FORMATS):
        raise UserError(f"format {format!r} is not one of auto, {', '.join(FORMATS)}")
    if metric not in METRICS:
        raise UserError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    if train_split == eval_split:
        raise UserError(f"train_split and eval_split are both {train_split!r}; evaluate on a held-out split, "
                        "never on the training data")
    if labels is not None and (not isinstance(labels, list) or len({str(x) for x in labels}) != len(labels)
                               or len(labels) < 2):
        raise UserError(f"labels {labels!r} must list at least 2 distinct label names, in id order")
    how = (f"pass --data-dir DIR or set JOULEBENCH_DATA=DIR, where DIR holds {data or name}/{train_split}.tsv and "
           f"{data or name}/{eval_split}.tsv, or run online")
    hub_id = data[4:] if data and data.startswith("hub:") else (hub if data_dir is None and hub else None)
    if hub_id is not None and (not HUB_ID.fullmatch(hub_id) or ".." in hub_id):
        raise UserError(f"hub:{hub_id} is not a Hugging Face dataset id; write hub:<name> or hub:<owner>/<name> "
                        "(letters, digits, '-', '_', '.'), e.g. hub:nyu-mll/glue, or give a local folder")
    if hub_id is not None:
        train_rows, eval_rows = _read_hub(hub_id, config, (train_split, eval_split), o, how)
        sources = (f"hub:{hub_id}{'/' + config if config else ''}:{train_split}",
                   f"hub:{hub_id}{'/' + config if config else ''}:{eval_split}")
        source = f"hub:{hub_id}{'/' + config if config else ''}"
        sha = (_content_sha256(train_rows), _content_sha256(eval_rows))
    else:
        if data is None:
            raise UserError(f"task {name} needs options.data: a folder holding {train_split}.<format> and "
                            f"{eval_split}.<format>, or hub:<dataset id>")
        folder = resolve_folder(data, data_dir)
        train_rows, train_path = _read_local(folder, train_split, o)
        eval_rows, eval_path = _read_local(folder, eval_split, o)
        sources = (str(train_path), str(eval_path))
        source = str(folder)  # as the user gave it: a relative --data-dir stays portable
        sha = (file_sha256(train_path), file_sha256(eval_path))
    if sha[0] == sha[1] or (hub_id is None and Path(sources[0]).resolve() == Path(sources[1]).resolve()):
        raise UserError(f"the eval split {sources[1]} is the same data as the train split {sources[0]}; evaluate on "
                        "a held-out split, never on the training data")
    held_in = _held_in(train_rows, eval_rows)
    if held_in >= HELD_IN_SHARE:
        raise UserError(f"{held_in:.0%} of the eval split {sources[1]} ({len(eval_rows)} rows) is in the train split "
                        "word for word; evaluate on a held-out split, never on the training data")
    names = Labels(labels) if labels is not None else Labels.from_train([y for *_, y in train_rows])
    train = _split(train_rows, names, sources[0], "train")
    evals = _split(eval_rows, names, sources[1], "eval")
    if len(names.names) < 2:
        raise UserError(f"{sources[0]} holds one label ({names.names[0]!r}); a classifier needs at least 2")
    return TaskData(
        name=name, train=train, eval=evals, num_labels=len(names.names), kind="text", source=source,
        eval_split=eval_description or f"{eval_split} ({len(evals)} rows)",
        info={"labels": [str(n) for n in names.names], "metric": metric, "pairs": text_pair_column is not None,
              "train_file_sha256": sha[0], "eval_file_sha256": sha[1], "eval_rows": len(evals)},
    )


def _split(rows: list[Row], names: Labels, where: str, role: str) -> Split:
    texts: list[Any] = []
    ys = np.empty(len(rows), dtype=np.int64)
    for k, (line, text, pair, raw) in enumerate(rows):
        y = names.id_of(raw)
        if y is None:
            seen = "is not in labels" if role == "train" else "never appears in train (and is not in labels)"
            raise UserError(f"{where} line {line}: label {raw!r} {seen} {names.names}; fix that line or list the "
                            "label in task.options.labels")
        texts.append((text, pair) if pair is not None else text)
        ys[k] = y
    return Split(texts, ys)


# -- presets: GLUE tasks as data ------------------------------------------------------
PRESETS: dict[str, dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "glue.yaml").read_text())
for _name, _options in PRESETS.items():
    TASKS.register(_name)(functools.partial(load_text_classification, **{"name": _name, **_options}))
