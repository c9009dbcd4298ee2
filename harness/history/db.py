"""The history database: one SQLite file holding every imported run.

SQLite because every language, notebook and the ``sqlite3`` shell read it, and one
file travels as a CI artifact. Tables (schema ``SCHEMA``):

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
Nothing read from the file is executed; JSON columns are parsed as data.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from harness import records as records_mod
from harness import comparable, rundir
from harness.errors import UserError
from harness.files import digest, refuse_symlink

SCHEMA = 2
#: The schema version ``DDL`` below creates.
DDL_VERSION = 2
#: (old name in schema 1, name now): the results table's columns carry the table's own
#: names (columns.py), so CSV, Parquet and SQLite agree.
RENAMED = (("j_per_inference", "J_per_inference"), ("j_per_inference_ci95_lo", "J_per_inference_within_run_ci95_lo"),
           ("j_per_inference_ci95_hi", "J_per_inference_within_run_ci95_hi"),
           ("j_per_inference_net", "J_per_inference_net"), ("uncertainty_rel", "energy_uncertainty"),
           ("train_j", "train_J"))


def _to_2(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the table's names, and every declared column as JSON (``columns``)."""
    for old, new in RENAMED:
        con.execute(f"ALTER TABLE results RENAME COLUMN {old} TO {new}")
    con.execute("ALTER TABLE results ADD COLUMN columns TEXT")


#: schema version -> the statements that bring a file of that version to the next one.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _to_2}
MAGIC = b"SQLite format 3\x00"

DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    content_sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    suite TEXT NOT NULL,
    profile TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    git_commit TEXT,
    git_dirty INTEGER,
    host TEXT,
    machine TEXT NOT NULL,
    machine_label TEXT NOT NULL,
    meter TEXT,
    joulebench TEXT,
    environment TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE TABLE records (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    run_key TEXT NOT NULL,
    variant_id TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    accuracy REAL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, line)
);
CREATE TABLE windows (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    phase TEXT NOT NULL,
    idx INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    energy_j REAL NOT NULL,
    net_energy_j REAL NOT NULL,
    idle_w REAL,
    method TEXT NOT NULL,
    host TEXT,
    uncertainty_rel REAL,
    PRIMARY KEY (run_id, line, phase, idx)
);
CREATE TABLE results (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    suite TEXT NOT NULL,
    variant_id TEXT NOT NULL,
    task TEXT, model TEXT, runtime TEXT, device TEXT,
    seeds INTEGER NOT NULL,
    n_eval INTEGER,
    accuracy REAL, accuracy_ci95_lo REAL, accuracy_ci95_hi REAL, accuracy_ci_method TEXT,
    J_per_inference REAL, J_per_inference_within_run_ci95_lo REAL, J_per_inference_within_run_ci95_hi REAL,
    J_per_inference_net REAL,
    energy_uncertainty REAL,
    meter TEXT NOT NULL,
    energy_method TEXT,
    train_J REAL,
    inferences_per_s REAL,
    columns TEXT,
    PRIMARY KEY (run_id, suite, variant_id)
);
CREATE INDEX results_variant ON results (suite, variant_id);
CREATE VIEW points AS
    SELECT r.*, runs.profile, runs.started_at, runs.git_commit, runs.git_dirty, runs.machine,
           runs.machine_label, runs.host
    FROM results r JOIN runs USING (run_id);
"""


def _json_value(value: Any) -> Any:
    """A typed cell as JSON: null for missing, numbers and booleans as such."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_file(path: Path) -> None:
    """An existing path must be a SQLite file: anything else is refused, never overwritten."""
    refuse_symlink(path, "history database")
    if path.is_dir():
        raise UserError(f"history database {path} is a folder; pass a file path such as {path / 'history.sqlite'}")
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
        if head != MAGIC:
            raise UserError(f"{path} is not a SQLite database; pass a history database made by "
                            "'joulebench history add', or a new path")


def _version(con: sqlite3.Connection, path: Path) -> int | None:
    """The file's schema version; None for an empty (new) database."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "meta" not in tables:
        raise UserError(f"{path} is a SQLite database but not a joulebench history (no meta table); "
                        "pass another --db path")
    row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise UserError(f"{path} has no readable schema_version in its meta table; pass another --db path") from None
    if version < 1 or (version < SCHEMA and version not in MIGRATIONS):
        raise UserError(f"{path} says it is history schema {row[0]!r}, which no joulebench wrote; pass another --db "
                        "path")
    return version


def _ddl_v1() -> str:
    """The schema-1 DDL: today's, with the results table's old names and no ``columns``."""
    ddl = DDL.replace("    columns TEXT,\n", "")
    for old, new in RENAMED:
        ddl = ddl.replace(f" {new} REAL", f" {old} REAL")
    return ddl


def _allowed() -> set[tuple[str, str, str]]:
    """Every object definition a history of a readable schema may hold: what the DDL of
    each version creates (schema 1's, and today's ``DDL``, which is DDL_VERSION's), and
    what each of them becomes at every step of the migrations after it (ALTER TABLE
    rewrites a table's text)."""
    out: set[tuple[str, str, str]] = set()
    for base, ddl in ((1, _ddl_v1()), (DDL_VERSION, DDL)):
        mem = sqlite3.connect(":memory:", isolation_level=None)
        mem.executescript(ddl)
        out |= _objects(mem)
        for v in range(base, SCHEMA):
            if v not in MIGRATIONS:
                break
            MIGRATIONS[v](mem)
            out |= _objects(mem)
        mem.close()
    return out


def _objects(con: sqlite3.Connection) -> set[tuple[str, str, str]]:
    return {(t, n, " ".join((sql or "").split())) for t, n, sql in
            con.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}


def _check_schema(con: sqlite3.Connection, path: Path) -> None:
    """A history holds exactly the tables, indexes and view we create, each by its whole
    definition (a ``runs`` table redefined with ON CONFLICT REPLACE would delete a stored
    night on the next add; a trigger or view someone added would run on our reads and
    writes), so a database that differs is refused before anything is read, upgraded or
    written."""
    extra = _objects(con) - _allowed()
    if extra:
        kind, name, _ = sorted(extra)[0]
        raise UserError(f"{path} holds a {kind} {name!r} that joulebench did not create as it is; a history database "
                        "runs nothing it finds: restore it, or start another --db")


def connect(path: Path, create: bool = False) -> sqlite3.Connection:
    """Open a history database, creating it (``create``) or upgrading it as needed.

    Autocommit mode: every change happens inside an explicit BEGIN ... COMMIT."""
    path = Path(path)
    _check_file(path)
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
        names = {n for _, n, _ in _objects(con)}
        if names and "meta" not in names:
            raise UserError(f"{path} is a SQLite database but not a joulebench history (no meta table); "
                            "pass another --db path")
        if names:  # before the meta table is even read: nothing of the file's own may run
            _check_schema(con, path)
        version = _version(con, path)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot open history database {path}: damaged or unreadable ({exc}); restore it from a "
                        "copy, or pass a writable path to a history database made by 'joulebench history add'") from None
    if version is not None and version > SCHEMA:
        con.close()
        raise UserError(f"{path} has history schema {version}, newer than this joulebench reads ({SCHEMA}); "
                        "upgrade joulebench (pip install -U joulebench) to read it")
    try:
        if version is None and not create:
            raise UserError(f"{path} is an empty database; fill it with "
                            f"'joulebench history add RUN_DIR... --db {path}'")
        if version is not None and version < SCHEMA:  # upgrade on open, all steps or none
            with transaction(con):
                for v in range(version, SCHEMA):
                    MIGRATIONS[v](con)
                con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA),))
    except sqlite3.OperationalError as exc:
        con.close()
        raise UserError(f"cannot upgrade history database {path} ({exc}); pass a path you can write") from None
    except BaseException:
        con.close()
        raise
    return con


def _create(con: sqlite3.Connection) -> None:
    """The tables of a new database (inside the caller's transaction: a first import
    that is killed leaves no half-made schema behind)."""
    for statement in DDL.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA),))
    con.execute("INSERT INTO meta VALUES ('written_by', ?)", (_joulebench(),))


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


def _joulebench() -> str:
    from harness import __version__

    return __version__


# ---------------------------------------------------------------- reading run dirs


@dataclass
class RunRows:
    """Everything one run dir contributes, read and checked before the database is touched."""

    run: dict[str, Any]
    records: list[tuple]
    windows: list[tuple]
    results: list[dict[str, Any]]
    warnings: list[str]


def machine(fp: dict[str, Any]) -> tuple[str, str]:
    """(key, label) of the machine a run was measured on (comparable.machine_key). Package
    versions and the commit are not part of it: they are what a nightly history watches change."""
    return comparable.machine_key(fp)


def _windows(run_id: str, rec: records_mod.RunRecord) -> Iterable[tuple]:
    from harness.table import w_unc

    def rows(phase: str, windows: list[records_mod.Window]) -> Iterable[tuple]:
        for i, w in enumerate(windows):
            unc = w_unc(w) if w.energy_j > 0 else None
            yield (run_id, rec.line, phase, i, w.duration_s, w.energy_j, w.net_energy_j, w.idle_w, w.method,
                   w.host, unc)

    if rec.train is not None:
        yield from rows("train", [rec.train.window] if rec.train.window is not None else [])
        for name, w in rec.train.extra_windows.items():
            yield from rows(f"train:{name}", [w])
    for inf in rec.inferences():
        yield from rows(f"inference@{inf.batch_size}", inf.windows)
    if rec.curve is not None:
        yield from rows("curve_eval", rec.curve.eval_windows)


def _results(recs: list[records_mod.RunRecord]) -> list[dict[str, Any]]:
    """The report's table rows, one per variant, with the series' meter."""
    from harness import stats
    from harness import columns as columns_mod
    from harness.lifecycle import add_lifecycle, carbon_from
    from harness.table import build_table, w_unc

    ok = [r for r in recs if r.ok and r.eval is not None and r.inference is not None]
    if not ok:
        return []
    table = columns_mod.derived(add_lifecycle(build_table(ok), carbon_from()))
    data = columns_mod.typed(table[[n for n in columns_mod.names() if n in table.columns]])
    out = []
    for row, typed_row in zip(table.to_dict("records"), data.to_dict("records")):
        group = [r for r in ok if r.variant_id == row["variant_id"]]
        windows = [w for r in group for w in r.inference.windows]
        out.append({
            "suite": row["suite"], "variant_id": row["variant_id"], "task": row["task"], "model": row["model"],
            "runtime": row["runtime"], "device": row["device"], "seeds": int(row["seeds"]),
            "n_eval": int(row["n_eval"]), "accuracy": row["accuracy"],
            "accuracy_ci95_lo": row["accuracy_ci95_lo"], "accuracy_ci95_hi": row["accuracy_ci95_hi"],
            "accuracy_ci_method": row["accuracy_ci_method"],
            "J_per_inference": row["J_per_inference"],
            "J_per_inference_within_run_ci95_lo": row["J_per_inference_within_run_ci95_lo"],
            "J_per_inference_within_run_ci95_hi": row["J_per_inference_within_run_ci95_hi"],
            "J_per_inference_net": row["J_per_inference_net"],
            "energy_uncertainty": stats.median([w_unc(w) for w in windows]),
            # the series key's method: how the J/inference figures were obtained
            "meter": "+".join(sorted({w.method for w in windows})),
            "energy_method": row["energy_method"], "train_J": row["train_J"],
            "inferences_per_s": row["inferences_per_s"],
            # every declared column of the table, by its name (a column added to columns.py
            # is in the history with no schema change): JSON, null for missing
            "columns": json.dumps({k: _json_value(v) for k, v in typed_row.items()}),
        })
    return out


def read_run(run_dir: Path) -> RunRows:
    """One run dir as rows; a one-line UserError if it is not a run dir with records."""
    run_dir = Path(run_dir)
    got = rundir.read(run_dir)
    recs, warnings, env, fp, run_id = got.records, got.warnings, got.environment, got.fingerprint, got.run_id
    first = recs[0]
    content = hashlib.sha256((run_dir / records_mod.RECORDS).read_bytes()).hexdigest()
    key, label = machine(fp)
    suite = got.suite
    started = env.get("started_at") or min((r.started_at for r in recs if r.started_at), default=None)
    run = {"run_id": run_id, "content_sha256": content, "source": str(run_dir),
           "suite": suite.get("name") or first.suite, "profile": suite.get("profile") or first.profile,
           "started_at": started, "finished_at": max((r.finished_at for r in recs if r.finished_at), default=None),
           "git_commit": fp.get("git_commit"), "git_dirty": None if fp.get("git_dirty") is None else int(fp["git_dirty"]),
           "host": fp.get("host"), "machine": key, "machine_label": label, "meter": fp.get("meter"),
           "joulebench": fp.get("joulebench"), "environment": json.dumps(env, sort_keys=True),
           "fingerprint": json.dumps(fp, sort_keys=True, default=str), "imported_at": _now()}
    rec_rows = [(run_id, r.line, r.run_key, r.variant_id, r.seed, r.status, r.eval.accuracy if r.eval else None,
                 r.to_json()) for r in recs]
    win_rows = [w for r in recs for w in _windows(run_id, r)]
    return RunRows(run=run, records=rec_rows, windows=win_rows, results=_results(recs), warnings=warnings)


# ---------------------------------------------------------------- writing


def add(db: Path, run_dirs: list[Path], progress: Callable[[str, int], None] | None = None) -> list[str]:
    """Import run dirs in one transaction; returns the lines to print. ``progress(stage,
    n)`` is called as rows go in (tests kill the process from it)."""
    progress = progress or (lambda stage, n: None)
    # an existing database is opened (and a bad one refused) before any run dir is read; a
    # new one is created only once every run dir has been read and checked
    con = connect(Path(db), create=True) if Path(db).exists() else None
    try:
        rows: dict[str, RunRows] = {}
        messages: list[str] = []
        for d in run_dirs:
            got = read_run(Path(d))
            messages += [f"warning: {w}" for w in got.warnings]
            if got.run["run_id"] in rows:
                messages.append(f"{d}: the same run as {rows[got.run['run_id']].run['source']}; stored once")
                continue
            rows[got.run["run_id"]] = got
        con = con or connect(Path(db), create=True)
        with transaction(con):
            if _version(con, Path(db)) is None:
                _create(con)
            n = 0
            stored = {rid: json.loads(env).get("merged_run_ids") or [] for rid, env in con.execute(
                "SELECT run_id, environment FROM runs WHERE environment LIKE '%merged_run_ids%'")}
            for got in rows.values():
                stored[got.run["run_id"]] = json.loads(got.run["environment"]).get("merged_run_ids") or []
            part_of = {part: merged for merged, parts in stored.items() for part in parts}
            for run_id, got in rows.items():
                if run_id in part_of:  # a shard of a merged run: the merged run holds its records
                    messages.append(f"{got.run['source']}: a shard of merged run {part_of[run_id][:12]}, which "
                                    "holds its records; not stored again")
                    continue
                for part in stored.get(run_id, []):
                    if con.execute("DELETE FROM runs WHERE run_id=?", (part,)).rowcount:
                        messages.append(f"{got.run['source']}: replaces its shard {part[:12]} stored before")
                old = con.execute("SELECT content_sha256, source FROM runs WHERE run_id=?", (run_id,)).fetchone()
                if old is not None and old[0] == got.run["content_sha256"]:
                    messages.append(f"{got.run['source']}: already stored (as {old[1]}); unchanged")
                    continue
                if old is not None:  # the same run, with more records than when it was stored
                    con.execute("DELETE FROM runs WHERE run_id=?", (run_id,))
                cols = list(got.run)
                con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [got.run[c] for c in cols])
                for row in got.records:
                    con.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
                    n += 1
                    progress("record", n)
                con.executemany("INSERT INTO windows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", got.windows)
                for res in got.results:
                    cols = ["run_id", *res]
                    con.execute(f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                [run_id, *res.values()])
                progress("run", n)
                verb = "updated" if old is not None else "added"
                messages.append(f"{got.run['source']}: {verb} {len(got.records)} records, {len(got.windows)} windows, "
                                f"{len(got.results)} variants ({got.run['suite']} {got.run['profile']}, "
                                f"{got.run['machine_label']}, {got.run['started_at']})")
            con.execute("INSERT OR REPLACE INTO meta VALUES ('written_by', ?)", (_joulebench(),))
            progress("commit", n)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise UserError(f"history database {db} is locked by another process; nothing was imported; "
                            "rerun when it has finished") from None
        raise UserError(f"cannot write history database {db} ({exc}); nothing was imported; "
                        "pass a path you can write") from None
    finally:
        if con is not None:
            con.close()
    return messages


# ---------------------------------------------------------------- reading


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
