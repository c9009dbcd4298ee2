"""Importing run dirs into a history: each run read and checked as rows first, then one
transaction (``add``)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from harness import comparable, finished, rundir
from harness import records as records_mod
from harness.errors import UserError
from harness.history import schema
from harness.history.db import connect, create, joulebench_version, transaction

def json_value(value: Any) -> Any:
    """A typed cell as JSON: null for missing, numbers and booleans as such."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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


def _results(recs: list[records_mod.RunRecord], settings: Any = None) -> list[dict[str, Any]]:
    """The report's table rows, one per variant, with the series' meter."""
    from harness import stats
    from harness import columns as columns_mod
    from harness.table import w_unc

    ok = [r for r in recs if r.ok and r.eval is not None and r.inference is not None]
    if not ok:
        return []
    table = finished.table(ok, decide=settings)
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
            "columns": json.dumps({k: json_value(v) for k, v in typed_row.items()}),
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
           "fingerprint": json.dumps(fp, sort_keys=True, default=str), "imported_at": now()}
    rec_rows = [(run_id, r.line, r.run_key, r.variant_id, r.seed, r.status, r.eval.accuracy if r.eval else None,
                 r.to_json()) for r in recs]
    win_rows = [w for r in recs for w in _windows(run_id, r)]
    return RunRows(run=run, records=rec_rows, windows=win_rows, results=_results(recs, finished.decide_settings([got])),
                   warnings=warnings)


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
            if schema.version_of(con, Path(db)) is None:
                create(con)
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
            con.execute("INSERT OR REPLACE INTO meta VALUES ('written_by', ?)", (joulebench_version(),))
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
