"""The one reader and the one writer of a run directory: records, environment,
fingerprint, config and identity, with one set of checks; the reader is used by report,
compare, merge, the appendix and the history, the writer (``Writer``: lock, open or
resume, environment, records; ``write_empty_shard``) by the runner and merge.

A run dir is what ``joulebench run`` writes: ``records.jsonl`` (one record per line) and
``environment.json``. Reading one:
- a path that is not a folder, has no records file, or no complete record is a
  one-line UserError naming the fix; an environment that is not a JSON object too;
- a torn or foreign line is skipped with a warning (records.load), and so is a record
  from another suite or resolved config than the file's first;
- a record whose run (variant, seed) already appeared in the file is a repeated line:
  skipped with a warning, so it cannot pass for another seed;
- the run's identity is ``run_id`` from the environment (a digest of the environment,
  or of the first record, for runs that predate it). ``read_many`` keeps each run once:
  the same dir passed twice, or a copy of it, is one run, said in a warning.

Every record read carries its run's identity in memory (``RunRecord.run``), so the
table and compare can tell repeated runs from seeds.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from harness import free_form, recordfile, records
from harness.environment import now
from harness.errors import UserError
from harness.files import (digest, ensure_dir, open_nofollow, read_json, refuse_links_in, write_atomic,
                           write_json_atomic)
from harness.records import RunRecord

#: Fingerprint keys the environment fills where a record (older than schema 2) lacks them.
FILLED_FROM_ENVIRONMENT = ("host", "cpu_model", "logical_cpus", "gpu", "device", "git_commit", "git_dirty", "meter",
                           "joulebench", "machine")


NUMBER = (int, float)
#: The environment's keys a reader uses, and the kinds each may hold (None: null).
ENV_KINDS: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "started_at": (str,), "host": (str,), "cpu_model": (str,), "platform": (str,),
    "joulebench": (str,), "python": (str,), "torch": (str,), "transformers": (str,), "numpy": (str,),
    "git_commit": (str,), "git_dirty": (bool,), "logical_cpus": (int,), "torch_threads": (int,),
    "gpu": (list,), "gpu_driver": (str,), "device": (dict,), "suite": (dict,), "data": (dict,),
    "idle_w": (dict, *NUMBER), "command": (list,), "meter_formulas": (list,), "shard": (list,),
    "merged_from": (list,), "merged_run_ids": (list,), "meter": (str, dict), "machine": (dict, str),
    "slurm": (dict,), "slurm_energy": (dict,),
}
#: Nested keys the appendix reads: (path, kinds).
ENV_NESTED = ((("suite", "resolved"), (dict,)), (("suite", "resolved", "seeds"), (list,)),
              (("suite", "name"), (str,)), (("suite", "path"), (str,)), (("suite", "profile"), (str,)))


#: Lists of the environment whose every item a reader uses as one kind.
ENV_ITEMS = ((("command",), str), (("suite", "resolved", "seeds"), int))


def _at(env: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """``env[k1][k2]...``, or None where a level is missing or not a mapping."""
    value: Any = env
    for k in keys:
        value = value.get(k) if isinstance(value, dict) else None
    return value


def check_environment(env: Any, path: Path) -> dict[str, Any]:
    """``env`` if it is an environment as joulebench writes it (an object; each key a
    reader uses of its kind; plain finite JSON throughout), else one line naming the key."""
    if not isinstance(env, dict):
        raise UserError(f"{path} is not a joulebench environment (not a JSON object); restore it from the run")
    try:
        free_form.plain(env, "environment")
    except ValueError as exc:
        raise UserError(f"{path}: {exc}; restore it from the run") from None
    wrong = [k for k, kinds in ENV_KINDS.items() if env.get(k) is not None and not isinstance(env[k], kinds)]
    wrong += [".".join(keys) for keys, kinds in ENV_NESTED
              if _at(env, keys) is not None and not isinstance(_at(env, keys), kinds)]
    for keys, kind in ENV_ITEMS:  # lists whose items a reader uses as one kind
        items = _at(env, keys)
        if isinstance(items, list) and not all(isinstance(x, kind) and not isinstance(x, bool) for x in items):
            wrong.append(".".join(keys))
    if wrong:
        raise UserError(f"{path} is not a joulebench environment: {wrong[0]} is not what joulebench writes there; "
                        "restore it from the run")
    return env


@dataclass
class RunDir:
    path: Path
    records: list[RunRecord]
    warnings: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)  # {} where the file is missing (warned)

    @property
    def run_id(self) -> str:
        env = self.environment
        return str(env.get("run_id") or (digest(env) if env else digest(self.records[0].to_json())))

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The first record's fingerprint, filled from the environment where it lacks a key."""
        fp = dict(self.records[0].fingerprint)
        for key in FILLED_FROM_ENVIRONMENT:
            if self.environment.get(key) is not None:
                fp.setdefault(key, self.environment[key])
        return fp

    @property
    def config_hash(self) -> str | None:
        return self.records[0].config_hash

    @property
    def suite(self) -> dict[str, Any]:
        suite = self.environment.get("suite")
        return suite if isinstance(suite, dict) else {}


def read(path: Path, allow_empty: bool = False) -> RunDir:
    """One run dir, checked (see the module docstring). ``allow_empty``: a run dir with no
    record (an empty shard) is returned as such instead of refused."""
    path = Path(path)
    got, warnings = recordfile.load_dir(path)
    if not got and allow_empty:
        return RunDir(path, [], warnings)
    if not got:
        raise UserError(f"{path / records.RECORDS} holds no complete records; pass a run directory that "
                        "'joulebench run' finished (or --resume it first)")
    first = got[0]
    kept: list[RunRecord] = []
    seen: dict[str, int | None] = {}
    for rec in got:
        if (rec.suite, rec.config_hash) != (first.suite, first.config_hash):
            warnings.append(f"{path / records.RECORDS} line {rec.line} is from suite {rec.suite!r} (config "
                            f"{rec.config_hash}), not {first.suite!r} ({first.config_hash}) like line "
                            f"{first.line}; skipped it")
            continue
        if rec.run_key in seen:
            warnings.append(f"{path / records.RECORDS} line {rec.line} repeats {rec.run_key} (line "
                            f"{seen[rec.run_key]}); a repeated line is not another seed: skipped it")
            continue
        seen[rec.run_key] = rec.line
        kept.append(rec)
    env_path = path / records.ENVIRONMENT
    env: dict[str, Any] = {}
    if env_path.is_file():
        env = check_environment(read_json(env_path, "environment file"), env_path)
    else:
        warnings.append(f"{path} has no {records.ENVIRONMENT}; its machine and commit come from the records")
    run = RunDir(path, kept, warnings, env)
    run_id = run.run_id  # a digest where the environment predates run_id: computed once
    for rec in kept:
        rec.run = run_id
    return run


def read_many(paths: Iterable[Path]) -> list[RunDir]:
    """Each run once: a dir given twice, or a copy of a run (the same run_id), is read
    once, with a warning on the first kept run."""
    out: list[RunDir] = []
    by_id: dict[str, RunDir] = {}
    for p in paths:
        run = read(p)
        if run.run_id in by_id:
            by_id[run.run_id].warnings.append(
                f"{p} is the same run as {by_id[run.run_id].path} (run_id {run.run_id[:12]}); counted once, "
                "not as a repeated run")
            continue
        by_id[run.run_id] = run
        out.append(run)
    return out


class Writer:
    """The one writer of a run directory: ``open`` refuses links and a second writer
    (an exclusive lock held until ``close``), starts a new run or resumes one (a torn
    last line cut, the records already there returned), ``environment`` writes it once
    (kept as first written on resume), ``append`` adds one record in one fsynced write."""

    def __init__(self, path: Path, log: Callable[[str], None] = lambda s: None) -> None:
        self.path, self.log = Path(path), log
        self._lock_fd: int | None = None

    @property
    def records_path(self) -> Path:
        return self.path / records.RECORDS

    @property
    def environment_path(self) -> Path:
        return self.path / records.ENVIRONMENT

    def open(self, resume: bool, config_hash: str) -> tuple[bool, list[RunRecord]]:
        """(resuming, records already recorded). A folder killed before its environment
        was written holds nothing: it starts afresh, said in one line."""
        if resume and not self.environment_path.is_file():
            if os.path.lexists(self.records_path) or not self.path.is_dir():
                raise UserError(f"{self.path} is not a run directory (no {records.ENVIRONMENT}); "
                                "run without --resume to start one")
            self.log(f"  resume: {self.path} holds no {records.ENVIRONMENT} and no records (interrupted as it "
                     "started); starting it afresh")
            resume = False
        refuse_links_in(self.path, records.RUN_FILES)  # before anything is written or truncated
        if not resume and os.path.lexists(self.records_path):
            raise UserError(f"{self.path} already holds records; pass a new --out, or --resume {self.path}")
        ensure_dir(self.path, "run directory")
        self.lock()  # before anything is changed: a second process stops here
        if not resume:
            return False, []
        old = check_environment(read_json(self.environment_path, "environment file"), self.environment_path)
        if (old.get("suite") or {}).get("config_hash") != config_hash:
            raise UserError(f"{self.path} was run with another configuration ({records.ENVIRONMENT}); "
                            "resume with the same suite file and profile")
        if not self.records_path.exists():
            return True, []
        dropped = recordfile.repair_tail(self.records_path)
        if dropped:
            self.log(f"  resume: dropped a torn last line ({dropped} bytes) left by the interruption")
        recs, _ = recordfile.load(self.records_path)
        return True, recs

    def environment(self, env: dict[str, Any], resume: bool) -> dict[str, Any]:
        """Write ``env`` with a new run identity and start time, or on resume keep the one
        first written; returns the environment in effect."""
        if resume and self.environment_path.is_file():
            return read_json(self.environment_path, "environment file")
        env = {**env, "run_id": uuid.uuid4().hex, "started_at": now()}
        write_json_atomic(self.environment_path, env)
        return env

    def update_environment(self, env: dict[str, Any]) -> None:
        write_json_atomic(self.environment_path, env)

    def append(self, record: RunRecord) -> None:
        recordfile.append(self.records_path, record)

    def lock(self) -> None:
        """Hold an exclusive lock on the folder until the process ends (or ``close``)."""
        fd = open_nofollow(self.path / records.LOCK, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"another joulebench process is writing {self.path} (it holds "
                            f"{self.path / records.LOCK}); wait for it to finish, or pass another --out") from None
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None


def write_empty_shard(path: Path, suite: dict[str, Any], shard_spec: tuple[int, int], command: list[str]) -> None:
    """A shard that holds no run: its folder with an empty records file and an
    environment that says so, so a merge over every shard folder skips it cleanly."""
    refuse_links_in(path, records.RUN_FILES)
    if os.path.lexists(path / records.RECORDS):
        raise UserError(f"{path} already holds records; pass a new --out")
    ensure_dir(path, "run directory")
    write_atomic(path / records.RECORDS, lambda p: p.write_text(""))
    write_json_atomic(path / records.ENVIRONMENT, {"suite": suite, "shard": list(shard_spec), "empty_shard": True,
                                                   "command": command, "run_id": uuid.uuid4().hex,
                                                   "started_at": now()})
