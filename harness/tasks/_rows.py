"""Reading one split's rows from a local file (``<split>.tsv|.csv|.jsonl|.parquet``): each
row as (line, text, pair, raw label), every field checked (a malformed row is an error
naming the file, the line and the fix)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from harness.errors import UserError

FORMATS = ("tsv", "csv", "jsonl", "parquet")
Row = tuple[int, str, "str | None", Any]  # (line, text, pair, raw label)
#: The stated limit on one field (a text or a label) of a data file, in characters; a
#: longer one is an error naming its file and line (csv's own limit is 128 kB).
MAX_FIELD_CHARS = 1_000_000


def split_file(folder: Path, stem: str, fmt: str) -> tuple[Path, str]:
    """The file of split ``stem`` in ``folder`` and its format."""
    if fmt != "auto":
        path = folder / f"{stem}.{fmt}"
        if not path.is_file():
            raise UserError(f"{path} not found; the data folder must hold {stem}.{fmt} (or set format: auto)")
        return path, fmt
    found = [(folder / f"{stem}.{f}", f) for f in FORMATS if (folder / f"{stem}.{f}").is_file()]
    if not found:
        raise UserError(f"no {stem}.tsv/.csv/.jsonl/.parquet in {folder}; name the split's file {stem}.<format> "
                        "or set train_split / eval_split to its stem")
    if len(found) > 1:
        raise UserError(f"{folder} holds {' and '.join(p.name for p, _ in found)}; keep one, or set format:")
    return found[0]


def _column(header: list[str] | None, col: Any, path: Path, what: str) -> int:
    if header is None:  # header: false: columns by position
        if not isinstance(col, int) or isinstance(col, bool) or col < 0:
            raise UserError(f"{what} {col!r} must be a column position (0, 1, ...) with header: false")
        return col
    if str(col) not in header:
        raise UserError(f"{path} line 1: no column {col!r} ({what}); the header has {header}; "
                        f"set {what} to one of those")
    return header.index(str(col))


def _delimited(path: Path, fmt: str, text: Any, pair: Any, label: Any, header: bool) -> Iterator[Row]:
    opts = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    csv.field_size_limit(MAX_FIELD_CHARS)
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a BOM is not part of the first name
        reader = csv.reader(fh, **opts)
        try:
            names = next(reader) if header else None
        except StopIteration:
            raise UserError(f"{path} is empty; it needs {'a header and ' if header else ''}rows") from None
        ti = _column(names, text, path, "text_column")
        pi = _column(names, pair, path, "text_pair_column") if pair is not None else None
        li = _column(names, label, path, "label_column")
        width = len(names) if names else None
        if not header:  # the first row counts: its width is the file's
            fh.seek(0)
            reader = csv.reader(fh, **opts)
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            width = width or len(row)
            if len(row) != width or max(ti, li, pi or 0) >= len(row):
                sep = "tab-separated" if fmt == "tsv" else "comma-separated"
                raise UserError(f"{path} line {line}: expected {width} {sep} fields, got {len(row)}; "
                                "fix or remove that line")
            yield line, row[ti], row[pi] if pi is not None else None, row[li].strip()


def _jsonl(path: Path, text: Any, pair: Any, label: Any) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as fh:
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, RecursionError):
                raise UserError(f"{path} line {line}: not a flat JSON object; fix or remove that line") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path} line {line}: not a JSON object; fix or remove that line")
            for what, col in (("text_column", text), ("text_pair_column", pair), ("label_column", label)):
                if col is not None and str(col) not in obj:
                    raise UserError(f"{path} line {line}: no field {col!r} ({what}); it has {sorted(obj)}")
            yield line, obj[str(text)], obj[str(pair)] if pair is not None else None, obj[str(label)]


def _parquet(path: Path, text: Any, pair: Any, label: Any) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet are many
        raise UserError(f"{path} is not a readable Parquet file ({type(exc).__name__}); write it again, or name it "
                        "by its real format (.tsv, .csv, .jsonl)") from None
    cols = [str(c) for c in (text, pair, label) if c is not None]
    for what, col in (("text_column", text), ("text_pair_column", pair), ("label_column", label)):
        if col is not None and str(col) not in names:
            raise UserError(f"{path}: no column {col!r} ({what}); it has {names}")
    try:
        table = pq.read_table(path, columns=list(dict.fromkeys(cols))).to_pydict()  # only the named columns
    except Exception as exc:  # a readable footer over damaged pages
        raise UserError(f"{path} is damaged: its Parquet data cannot be read ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else 'no detail'}); write the file again") from None
    pairs = table[str(pair)] if pair is not None else None
    for i, (t, y) in enumerate(zip(table[str(text)], table[str(label)])):
        yield i + 1, t, pairs[i] if pairs is not None else None, y


def read_rows(path: Path, fmt: str, text: Any, pair: Any, label: Any, header: bool = True) -> Iterator[Row]:
    if fmt in ("jsonl", "parquet") and not header:
        raise UserError(f"header: false applies to tsv and csv; {fmt} columns have names")
    line = 0
    try:
        if fmt in ("tsv", "csv"):
            rows = _delimited(path, fmt, text, pair, label, header)
        elif fmt == "jsonl":
            rows = _jsonl(path, text, pair, label)
        else:
            rows = _parquet(path, text, pair, label)
        for row in rows:
            line = row[0]
            yield checked_row(row, str(path))
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; convert it to UTF-8") from None
    except csv.Error as exc:  # csv's line count is the reader's; ours is the last good row's
        raise UserError(f"{path} after line {line}: {exc} (a field over the {MAX_FIELD_CHARS:,}-character limit, "
                        "or an unclosed quote); fix that line") from None


def checked_row(row: Row, where: str) -> Row:
    """One data row as every reader (files and the Hub) hands it on: a text that is a
    string, a label that is present (not null, empty or NaN) and a string or an integer,
    each within the field limit; anything else is an error naming the file and line."""
    line, text, pair, label = row
    for what, value in (("text", text), ("text pair", pair)):
        if value is None and what == "text pair":
            continue
        if not isinstance(value, str):
            raise UserError(f"{where} line {line}: the {what} is {'missing' if value is None else type(value).__name__}"
                            ", not a string; fix that line")
        if len(value) > MAX_FIELD_CHARS:
            raise UserError(f"{where} line {line}: the {what} has {len(value):,} characters, over the "
                            f"{MAX_FIELD_CHARS:,}-character limit; shorten or remove that line")
    missing = label is None or (isinstance(label, float) and label != label) or (isinstance(label, str)
                                                                                 and not label.strip())
    if missing:
        raise UserError(f"{where} line {line}: the label is missing; give every row a label, or remove that line")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        if isinstance(label, float) and label.is_integer():
            return line, text, pair, int(label)  # Parquet and pandas store integer labels as floats beside a null
        raise UserError(f"{where} line {line}: the label is {type(label).__name__} {str(label)[:40]!r}; labels are "
                        "strings or integers")
    if isinstance(label, str) and len(label) > MAX_FIELD_CHARS:
        raise UserError(f"{where} line {line}: the label is over the {MAX_FIELD_CHARS:,}-character limit")
    return row


# -- labels --------------------------------------------------------------------------
