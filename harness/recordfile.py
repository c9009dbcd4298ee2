"""The records file: append a record in one fsynced write, load every complete line (a torn
or foreign line is a warning, never a crash), repair a torn tail before resuming."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from harness.errors import UserError
from harness.files import open_nofollow, read_text, refuse_symlink
from harness.records import MAX_LINE_CHARS, RECORDS, RunRecord
from harness.schema_history import READABLE


def append(path: Path, record: RunRecord) -> None:
    line = record.to_json() + "\n"
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def load(path: Path) -> tuple[list[RunRecord], list[str]]:
    """(records, warnings). A line that is not a complete record is skipped with a warning.
    A file that is not UTF-8 text is one UserError naming it."""
    records, warnings = [], []
    for number, line in enumerate(read_text(path, "records file").splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            warnings.append(f"{path} line {number} is {len(line):,} characters, over the {MAX_LINE_CHARS:,} a record "
                            "may hold; skipped it")
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            warnings.append(f"{path} line {number} is truncated or not JSON; skipped it")
            continue
        except RecursionError:
            warnings.append(f"{path} line {number} is nested too deeply to be a record; skipped it")
            continue
        if not isinstance(raw, dict) or raw.get("schema") not in READABLE:
            warnings.append(f"{path} line {number} is not a joulebench record (schema {sorted(READABLE)}); skipped it")
            continue
        try:
            rec = RunRecord.from_dict(raw)
        except (ValueError, TypeError, RecursionError, AttributeError, KeyError, OverflowError) as exc:
            if not isinstance(exc, ValidationError):
                warnings.append(f"{path} line {number} is not a valid record ({str(exc)[:120]}); skipped it")
                continue
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            warnings.append(f"{path} line {number} is not a valid record ({where}: {first['msg']}); skipped it")
            continue
        rec.line = number
        records.append(rec)
    return records, warnings


def load_dir(run_dir: Path) -> tuple[list[RunRecord], list[str]]:
    """Records of one run dir, or a one-line UserError when it is not one."""
    path = Path(run_dir) / RECORDS
    if not Path(run_dir).is_dir():
        raise UserError(f"{run_dir} is not a folder; pass a run directory written by 'joulebench run'")
    if not path.is_file():
        raise UserError(f"{run_dir} holds no {RECORDS}; pass a run directory written by 'joulebench run'")
    return load(path)


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline: the write was interrupted). Returns
    the bytes dropped; complete lines are never touched."""
    refuse_symlink(path)
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with os.fdopen(open_nofollow(path, os.O_RDWR), "r+b") as fh:
        fh.truncate(keep)
    return len(data) - keep
