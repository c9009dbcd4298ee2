"""Read a GLUE-format TSV (header row, tab-separated, no quoting) strictly.

Strict on purpose: a silently skipped malformed row changes the eval set, and a paper's
accuracy with it. Every problem is reported with its file and line number.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.tasks import Split


def read_tsv(path: Path, text_column: str = "sentence", label_column: str = "label",
             labels: tuple[int, ...] = (0, 1)) -> Split:
    if not path.is_file():
        raise UserError(f"{path} not found; the data folder must hold {path.name} in GLUE format")
    texts: list[str] = []
    ys: list[int] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            raise UserError(f"{path} is empty; expected a header '{text_column}<TAB>{label_column}' and rows") from None
        except UnicodeDecodeError:
            raise UserError(f"{path} is not UTF-8 text; supply the GLUE TSV file") from None
        if text_column not in header or label_column not in header:
            raise UserError(f"{path} line 1: header {header!r} lacks '{text_column}' and '{label_column}'; "
                            "supply a GLUE-format TSV with that header")
        ti, li = header.index(text_column), header.index(label_column)
        try:
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise UserError(f"{path} line {line}: expected {len(header)} tab-separated fields, got {len(row)}; "
                                    "fix or remove that line")
                raw = row[li].strip()
                try:
                    y = int(raw)
                except ValueError:
                    y = None
                if y not in labels:
                    raise UserError(f"{path} line {line}: label {raw!r} is not in the label set "
                                    f"{{{', '.join(map(str, labels))}}}; fix or remove that line")
                texts.append(row[ti])
                ys.append(y)
        except UnicodeDecodeError:
            raise UserError(f"{path} is not UTF-8 text; supply the GLUE TSV file") from None
    if not ys:
        raise UserError(f"{path} has a header but no rows; supply the full GLUE file")
    return Split(texts, np.asarray(ys, dtype=np.int64))
