"""The history database: one SQLite file holding every imported run.

SQLite because every language, notebook and the ``sqlite3`` shell read it, and one
file travels as a CI artifact. Tables (schema ``schema.SCHEMA``):

- ``meta``: ``schema_version`` and the joulebench that last wrote the file.
- ``runs``: one row per run, keyed by the run's identity (``run_id`` from its
  ``environment.json``; for runs written before it existed, the digest of that file),
  with the environment and its fingerprint as JSON, and the machine the series key
  uses (``machine``: a digest of host, CPU, GPUs and the device the run used;
  ``machine_label`` says it in words).
- ``records``: every record of every run, whole (JSON), with its key fields as columns.
- ``windows``: every raw energy window (training, extra creation windows, each
  inference window at each batch size, validation passes of training curves), with
  method, host and stated relative uncertainty.
- ``results``: per (run, variant), the table row joulebench reports (accuracy and its
  95% interval over examples, median J/inference and its within-run interval, the
  meter's stated uncertainty), derived from the records on import by the same code as
  ``joulebench report``.
- view ``points``: ``results`` joined with the run's date, commit and machine: one row
  per night of every series.

Importing is idempotent (a run already stored with the same records is left alone; a
run whose records grew, e.g. after ``--resume``, is replaced; a merged run takes the
place of its shards, and a shard of a stored merged run is not stored) and
transactional: one
``history add`` is one transaction, so a kill at any point leaves the file as it was.
Nothing read from the file is executed; JSON columns are parsed as data."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import comparable
from harness.errors import UserError
from harness.history import schema

def connect(path: Path, create: bool = False) -> sqlite3.Connection:
    """Open a history database, creating it (``create``) or upgrading it as needed.

    Autocommit mode: every change happens inside an explicit BEGIN ... COMMIT."""
    path = Path(path)
    schema.check_file(path)
    if not path.exists():
        if not create:
            raise UserError(f"no history database at {path}; create one with "
                            f"'joulebench history add RUN_DIR... --db {path}'")
        if not path.parent.is_dir():
            raise UserError(f"cannot create history database {path}: the folder {path.parent} does not exist")
    try:
        con = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA trusted_schema = OFF")  # no function a view or trigger names runs
        damage = [r[0] for r in con.execute("PRAGMA quick_check")]
        if damage != ["ok"]:
            con.close()
            raise UserError(f"history database {path} is damaged ({str(damage[0])[:120]}); restore it from a copy, "
                            "or start another --db")
        names = {n for _, n, _ in schema.objects(con)}
        if names and "meta" not in names:
            raise UserError(f"{path} is a SQLite database but not a joulebench history (no meta table); "
                            "pass another --db path")
        if names:  # before the meta table is even read: nothing of the file's own may run
            schema.check_schema(con, path)
        version = schema.version_of(con, path)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot open history database {path}: damaged or unreadable ({exc}); restore it from a "
                        "copy, or pass a writable path to a history database made by 'joulebench history add'") from None
    if version is not None and version > schema.SCHEMA:
        con.close()
        raise UserError(f"{path} has history schema {version}, newer than this joulebench reads ({schema.SCHEMA}); "
                        "upgrade joulebench (pip install -U joulebench) to read it")
    try:
        if version is None and not create:
            raise UserError(f"{path} is an empty database; fill it with "
                            f"'joulebench history add RUN_DIR... --db {path}'")
        if version is not None and version < schema.SCHEMA:  # upgrade on open, all steps or none
            with transaction(con):
                for v in range(version, schema.SCHEMA):
                    schema.MIGRATIONS[v](con)
                con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(schema.SCHEMA),))
    except sqlite3.OperationalError as exc:
        con.close()
        raise UserError(f"cannot upgrade history database {path} ({exc}); pass a path you can write") from None
    except BaseException:
        con.close()
        raise
    return con


def create(con: sqlite3.Connection) -> None:
    """The tables of a new database (inside the caller's transaction: a first import
    that is killed leaves no half-made schema behind)."""
    for statement in schema.DDL.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(schema.SCHEMA),))
    con.execute("INSERT INTO meta VALUES ('written_by', ?)", (joulebench_version(),))


class transaction:
    """``with transaction(con):`` BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.con.execute("COMMIT")
        elif self.con.in_transaction:
            self.con.execute("ROLLBACK")


def joulebench_version() -> str:
    from harness import __version__

    return __version__


@dataclass(frozen=True)
class History:
    """The database as DataFrames (``harness.history.load``)."""

    runs: pd.DataFrame
    results: pd.DataFrame
    points: pd.DataFrame  # results with each run's date, commit and machine: the series' nights
    records: pd.DataFrame
    windows: pd.DataFrame


def load(db: str | os.PathLike, with_records: bool = True) -> History:
    """Every table as a DataFrame. ``records.record`` is each record's JSON text."""
    con = connect(Path(db))
    try:
        def frame(sql: str) -> pd.DataFrame:
            return pd.read_sql_query(sql, con)

        empty = "SELECT * FROM {} WHERE 0"
        runs = frame("SELECT * FROM runs ORDER BY started_at")
        points = frame("SELECT * FROM points ORDER BY started_at, run_id")
        # the measuring code of each night (comparable.code): a series compares like with like
        code = {rid: comparable.code(json.loads(fp)) for rid, fp in zip(runs["run_id"], runs["fingerprint"])}
        points["measure_code"] = points["run_id"].map(code).astype(object)
        return History(runs=runs, results=frame("SELECT * FROM results"), points=points,
                       records=frame("SELECT * FROM records" if with_records else empty.format("records")),
                       windows=frame("SELECT * FROM windows" if with_records else empty.format("windows")))
    finally:
        con.close()
