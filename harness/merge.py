"""``joulebench merge SHARD_DIR ... --out DIR``: shard run dirs -> one run dir and table.

Shards must come from the same suite configuration. A run that two shards both
recorded (overlapping shards) is reported and kept once, from the first shard given.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import records, rundir
from harness.errors import UserError
from harness.files import digest, refuse_links_in
from harness.records import RunRecord


def merge(shard_dirs: list[Path], out_dir: Path) -> list[str]:
    """Write the merged records and environment; returns the messages to print."""
    refuse_links_in(out_dir, records.RUN_FILES, "merged run directory")  # a dangling link is no "new file"
    if os.path.lexists(out_dir / records.RECORDS):
        raise UserError(f"{out_dir} already holds records; merge into a new directory")
    messages: list[str] = []
    merged: list[RunRecord] = []
    seen: dict[str, Path] = {}
    config = None
    envs = []
    for d in shard_dirs:
        run = rundir.read(d, allow_empty=True)
        if not run.records:
            messages.append(f"{d}: an empty shard (no runs in it); skipped")
            continue
        messages += [f"warning: {w}" for w in run.warnings]
        for r in run.records:
            if config is None:
                config = r.config_hash
            if r.config_hash != config:
                raise UserError(f"{d / records.RECORDS} line {r.line} comes from another suite configuration "
                                f"({r.config_hash} != {config}); merge shards of one suite run only")
            if r.run_key in seen:
                messages.append(f"duplicate: {r.run_key} in {d} is already in {seen[r.run_key]}; kept once")
                continue
            seen[r.run_key] = d
            merged.append(r)
        if run.environment:
            envs.append(run.environment)
    if not merged:
        raise UserError(f"none of the {len(shard_dirs)} shard(s) holds a record; run the suite's shards first")
    folder = rundir.Writer(out_dir)  # the one writer: links refused, the folder locked while written
    folder.open(resume=False, config_hash=str(config))
    for r in merged:
        folder.append(r)
    env = dict(envs[0]) if envs and isinstance(envs[0], dict) else {}
    env["merged_from"] = [str(d) for d in shard_dirs]
    # one run made of the shards: its identity follows from theirs, so merging the same
    # shards twice gives the same run, and never the first shard's own
    parts = sorted(str(e.get("run_id", digest(e))) for e in envs if isinstance(e, dict))
    env["run_id"] = digest(parts, 32)
    env["merged_run_ids"] = parts  # a history stores the merged run in place of its shards
    env["shard"] = None
    jobs = [e["slurm"]["SLURM_JOB_ID"] for e in envs
            if isinstance(e, dict) and isinstance(e.get("slurm"), dict) and e["slurm"].get("SLURM_JOB_ID")]
    env["slurm"] = None
    if jobs:  # shards that ran as Slurm jobs: Slurm's energy figure beside ours, labelled as Slurm's
        from harness.slurm import accounted

        env["slurm_energy"] = accounted(jobs)
    folder.update_environment(env)
    folder.close()
    messages.append(f"merged {len(merged)} runs from {len(shard_dirs)} shard(s) into {out_dir}")
    return messages
