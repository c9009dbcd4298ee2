"""``joulebench slurm`` on a real single-node Slurm cluster (tests/slurm_cluster.py): a
suite as a job array of shards and a merge after it gives the single-process run's rows,
seeds and accuracies; a task killed mid-run is resubmitted alone by the same command,
which resumes it; without sbatch, one line and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import slurm_cluster
from tests.conftest import ROOT, cli, run_cli

TINY = {
    "name": "tinyslurm", "task": {"name": "digits", "options": {"eval_fraction": 0.25, "split_seed": 0}},
    "meter": "estimate", "seeds": [0, 1], "train": {"epochs": 2, "batch_size": 64, "lr": 0.003},
    "models": {"cnn": {"family": "cnn", "options": {"channels": [8], "hidden": 16}}},
    "variants": [{"id": "cnn.int8", "parent": "cnn", "technique": "quantize", "params": {"dtype": "int8"}}],
    "measure": {"batch_size": 128, "warmup": 1, "repetitions": 6, "min_window_s": 0.05, "idle_s": 0.2},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = slurm_cluster.missing()
    if why:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no test Slurm cluster: {why}")
    folder = tmp_path_factory.mktemp("slurm")
    env = slurm_cluster.start(folder)
    yield env
    slurm_cluster.stop(folder)


def _table(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "table.parquet").set_index("variant_id").sort_index()


def test_a_job_array_gives_the_single_process_table_and_resumes_a_killed_task(cluster, tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump(TINY))
    single = tmp_path / "single"
    assert run_cli("run", str(suite), "--out", str(single), "--no-cache", "--no-plots").returncode == 0
    out = tmp_path / "sharded"
    # the first submission: kill shard 2 of 2 once it has started (tasks run one after the
    # other: each asks for the node to itself)
    proc = subprocess.Popen(["python3", "-m", "harness", "slurm", str(suite), "--shards", "2", "--out", str(out)],
                            cwd=ROOT, env={**os.environ, **cluster}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    array = err.split("submitted array job ")[1].split()[0]
    for _ in range(1200):
        if (out / "shard2" / "environment.json").exists():
            break
        time.sleep(0.1)
    subprocess.run(["scancel", "--signal=KILL", f"{array}_2"], env={**os.environ, **cluster}, check=True)
    for _ in range(600):
        queue = subprocess.run(["squeue", "-h"], env={**os.environ, **cluster}, capture_output=True, text=True)
        if not queue.stdout.strip():
            break
        time.sleep(0.2)
    assert (out / "shard1" / "table.csv").exists() and not (out / "shard2" / "table.csv").exists()
    assert not (out / "merged" / "table.csv").exists()  # the merge never ran: its dependency failed
    shard1 = (out / "shard1" / "records.jsonl").read_bytes()
    # the same command again: only shard 2 goes back, resumed; the merge follows it
    again = run_cli("slurm", str(suite), "--shards", "2", "--out", str(out), "--wait", env=cluster)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(shards 2 of 2)" in again.stderr
    assert (out / "shard1" / "records.jsonl").read_bytes() == shard1  # the finished shard untouched
    merged, one = _table(out / "merged"), _table(single)
    assert list(merged.index) == list(one.index) and list(merged["seeds"]) == list(one["seeds"])
    assert merged["accuracy"].tolist() == one["accuracy"].tolist()
    assert "| cnn.int8 |" in again.stdout  # the merged table printed
    for name in ("array.sbatch", "merge.sbatch"):
        assert (out / "slurm" / name).read_text().startswith("#!/bin/bash\n#SBATCH")
    # a shard writes its tables only (--no-plots); the merge draws the whole run's figures
    assert "--no-plots" in (out / "slurm" / "array.sbatch").read_text()
    assert (out / "merged" / "accuracy_vs_energy.png").is_file() and (out / "merged" / "accuracy_vs_energy.pdf").is_file()
    assert not list((out / "shard1").glob("*.png")) and (out / "shard1" / "table.parquet").is_file()
    # everything done: the command says so and submits nothing
    done = run_cli("slurm", str(suite), "--shards", "2", "--out", str(out), env=cluster)
    assert done.returncode == 0 and "nothing to submit" in done.stderr


def test_without_sbatch_it_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    proc = cli("slurm", "benchmarks/digits.yaml", "--shards", "2", "--out", str(out), env={"PATH": "/nonexistent"})
    assert proc.returncode == 2 and "no sbatch on PATH" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _sacct(folder: Path, lines: str) -> dict[str, str]:
    """A planted sacct on PATH printing ``lines`` (what a cluster with an energy plugin,
    or without one, answers)."""
    folder.mkdir(exist_ok=True)
    script = folder / "sacct"
    script.write_text(f"#!/bin/sh\nprintf '{lines}'\n")
    script.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


def test_a_merge_records_slurms_own_energy_beside_ours(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({**TINY, "seeds": [0]}))
    shards = []
    for i, job in ((1, "78"), (2, "79")):  # each shard ran as a Slurm job: its environment says which
        shards.append(tmp_path / f"shard{i}")
        proc = cli("run", str(suite), "--shard", f"{i}/2", "--out", str(shards[-1]), "--no-cache", "--no-plots", "-q",
                   env={"SLURM_JOB_ID": job, "SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": str(i)})
        assert proc.returncode == 0, proc.stderr[-1500:]
    planted = _sacct(tmp_path / "bin", "78|1200\\n78.batch|1190\\n79|1300\\n")
    assert cli("merge", *map(str, shards), "--out", str(tmp_path / "merged"), env=planted).returncode == 0
    energy = json.loads((tmp_path / "merged" / "environment.json").read_text())["slurm_energy"]
    assert energy["jobs"] == {"78": 1200.0, "79": 1300.0} and energy["total_j"] == 2500.0
    md = (tmp_path / "merged" / "table.md").read_text()
    assert "Slurm: 2500 J over 2 job(s), by Slurm's own energy accounting" in md and "not joulebench's" in md
    # a cluster without an energy plugin: said so, never 0 J
    empty = _sacct(tmp_path / "bin2", "78|0\\n79|\\n")
    assert cli("merge", *map(str, shards), "--out", str(tmp_path / "merged2"), env=empty).returncode == 0
    md = (tmp_path / "merged2" / "table.md").read_text()
    assert "Slurm's energy accounting: none (sacct gave no energy" in md and "Slurm: 0" not in md


@pytest.mark.parametrize("args", [["--partition", "main\n#SBATCH --wrap=x"], ["--time", "1:00 extra"],
                                  ["--sbatch-arg=account=abc"], ["--sbatch-arg=--x\ny"], ["--out-space"]])
def test_a_value_that_would_break_a_script_line_is_one_line(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / ("with space" if args == ["--out-space"] else "slurm")
    args = [] if args == ["--out-space"] else args
    bin_dir = tmp_path / "bin"  # a planted sbatch: the checks come first, nothing is submitted
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    proc = cli("slurm", "benchmarks/digits.yaml", "--shards", "2", "--out", str(out), *args,
               env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()
