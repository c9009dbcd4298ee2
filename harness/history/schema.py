"""What a history database file must be: its schema (``DDL``), the migrations from older
versions, and the checks that refuse any file that is not exactly that, before anything
is read or run."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

from harness.errors import UserError
from harness.files import refuse_symlink

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


def check_file(path: Path) -> None:
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


def version_of(con: sqlite3.Connection, path: Path) -> int | None:
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


def ddl_v1() -> str:
    """The schema-1 DDL: today's, with the results table's old names and no ``columns``."""
    ddl = DDL.replace("    columns TEXT,\n", "")
    for old, new in RENAMED:
        ddl = ddl.replace(f" {new} REAL", f" {old} REAL")
    return ddl


def allowed() -> set[tuple[str, str, str]]:
    """Every object definition a history of a readable schema may hold: what the DDL of
    each version creates (schema 1's, and today's ``DDL``, which is DDL_VERSION's), and
    what each of them becomes at every step of the migrations after it (ALTER TABLE
    rewrites a table's text)."""
    out: set[tuple[str, str, str]] = set()
    for base, ddl in ((1, ddl_v1()), (DDL_VERSION, DDL)):
        mem = sqlite3.connect(":memory:", isolation_level=None)
        mem.executescript(ddl)
        out |= objects(mem)
        for v in range(base, SCHEMA):
            if v not in MIGRATIONS:
                break
            MIGRATIONS[v](mem)
            out |= objects(mem)
        mem.close()
    return out


def objects(con: sqlite3.Connection) -> set[tuple[str, str, str]]:
    return {(t, n, " ".join((sql or "").split())) for t, n, sql in
            con.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}


def check_schema(con: sqlite3.Connection, path: Path) -> None:
    """A history holds exactly the tables, indexes and view we create, each by its whole
    definition (a ``runs`` table redefined with ON CONFLICT REPLACE would delete a stored
    night on the next add; a trigger or view someone added would run on our reads and
    writes), so a database that differs is refused before anything is read, upgraded or
    written."""
    extra = objects(con) - allowed()
    if extra:
        kind, name, _ = sorted(extra)[0]
        raise UserError(f"{path} holds a {kind} {name!r} that joulebench did not create as it is; a history database "
                        "runs nothing it finds: restore it, or start another --db")
