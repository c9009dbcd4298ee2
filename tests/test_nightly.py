"""Nightly workflows for real: cache reuse, resume after SIGKILL, compare, shard/merge."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.cache import ARTIFACT_SOURCES, ArtifactCache, source_digest
from harness.plan import expand, shard
from harness.suite import load
from tests.conftest import ROOT, run_cli


def run_keys(run: Path) -> list[str]:
    return [json.loads(line)["run_key"] for line in (run / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def rerun(digits_run: Path, cache_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    """A second, unchanged run of the quick digits suite: (run dir, its stderr)."""
    out = tmp_path_factory.mktemp("again") / "run"
    proc = run_cli("run", "benchmarks/digits.yaml", "--quick", "--out", str(out),
                   env={"JOULEBENCH_CACHE": str(cache_dir)})
    assert proc.returncode == 0, proc.stderr
    return out, proc.stderr


def test_unchanged_rerun_retrains_nothing(digits_run: Path, rerun: tuple[Path, str]) -> None:
    out, stderr = rerun
    assert "6 hit(s), 0 miss(es)" in stderr
    assert stderr.count("  fetched in") == 6  # every trained variant came from the cache
    assert stderr.count("  created in") == 2  # only int8 and bf16, seconds each, were made again
    first = {json.loads(x)["run_key"]: json.loads(x) for x in (digits_run / "records.jsonl").read_text().splitlines()}
    for line in (out / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] != "ok":
            continue
        if rec["technique"] == "quantize":
            assert rec["cached"] is None  # seconds to redo: never cached
            continue
        assert rec["cached"]["measured_at"]  # the row says cached, and when it was measured
        # the creation energy is the one measured originally, not a new measurement
        assert rec["train"]["window"] == first[rec["run_key"]]["train"]["window"]
        assert rec["eval"]["predictions"] == first[rec["run_key"]]["eval"]["predictions"]


def test_corrupt_cache_entry_is_detected_and_rebuilt(tmp_path: Path) -> None:
    logs: list[str] = []
    cache = ArtifactCache(tmp_path, log=logs.append)
    cache.put_module("ab" * 32, torch.nn.Linear(3, 2), {"note": "x"})
    assert cache.get_module("ab" * 32) is not None
    payload = tmp_path / "ab" / ("ab" * 32) / "module.pt"
    payload.write_bytes(payload.read_bytes()[:-10] + b"corrupted!")
    assert cache.get_module("ab" * 32) is None
    assert any("corrupt (sha256 mismatch)" in line for line in logs)
    assert not payload.parent.exists()  # removed, so the next put rebuilds it


def test_cache_keys_follow_the_training_code(tmp_path: Path) -> None:
    """A change to training/compression source must retrain, not serve a stale module."""
    (tmp_path / "compress").mkdir()
    (tmp_path / "train.py").write_text("lr = 1\n")
    (tmp_path / "compress" / "prune.py").write_text("x = 1\n")
    sources = ("train.py", "compress")
    before = source_digest(tmp_path, sources)
    assert source_digest(tmp_path, sources) == before
    (tmp_path / "compress" / "prune.py").write_text("x = 2\n")
    assert source_digest(tmp_path, sources) != before
    (tmp_path / "compress" / "prune.py").write_text("x = 1\n")
    (tmp_path / "compress" / "new.py").write_text("\n")
    assert source_digest(tmp_path, sources) != before
    assert set(ARTIFACT_SOURCES) >= {"train.py", "models", "compress", "tasks"}


def test_resume_after_sigkill(digits_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    env = {k: v for k, v in os.environ.items() if k != "JOULEBENCH_DATA"}
    env["JOULEBENCH_CACHE"] = str(tmp_path / "cache")
    cmd = [sys.executable, "-m", "harness", "run", "benchmarks/digits.yaml", "--quick", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = out / "records.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and not (records.exists() and records.read_text().count("\n") >= 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = run_keys(out)
    assert 1 <= len(done) < len(run_keys(digits_run)), "kill the run after its first record"
    with open(records, "a") as fh:  # what a kill in the middle of a write would leave
        fh.write('{"schema": 2, "run_key": "torn')
    resumed = run_cli("run", "benchmarks/digits.yaml", "--quick", "--resume", str(out),
                      env={"JOULEBENCH_CACHE": str(tmp_path / "cache")})
    assert resumed.returncode == 0, resumed.stderr
    assert "dropped a torn last line" in resumed.stderr
    keys = run_keys(out)
    assert keys[: len(done)] == done  # nothing already recorded was lost or rewritten
    assert len(keys) == len(set(keys))  # nothing duplicated
    assert set(keys) == set(run_keys(digits_run))  # the same rows as an uninterrupted run
    other = run_cli("run", "benchmarks/digits.yaml", "--resume", str(out))  # full profile: other config
    assert other.returncode == 2 and "another configuration" in other.stderr


def planted(src: Path, dst: Path, change) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.png", "table.*", "*.txt"))
    lines = [json.loads(x) for x in (dst / "records.jsonl").read_text().splitlines()]
    (dst / "records.jsonl").write_text("".join(json.dumps(change(r)) + "\n" for r in lines))
    return dst


def lose_ten_points(rec: dict) -> dict:
    if rec["status"] == "ok":
        ev = rec["eval"]
        flipped = 0
        for i, (p, y) in enumerate(zip(ev["predictions"], ev["labels"])):
            if p == y and flipped < 0.1 * ev["n"]:
                ev["predictions"][i] = (y + 1) % 10
                flipped += 1
        ev["correct"] -= flipped
        ev["accuracy"] = ev["correct"] / ev["n"]
    return rec


def scaled(factor: float, variant: str | None = None, by: float = 1.0):
    """Every window times ``factor`` (a run-wide machine drift), and ``variant``'s
    windows times ``by`` on top (a planted regression)."""
    def change(rec: dict) -> dict:
        if rec["status"] == "ok":
            f = factor * (by if rec["variant_id"] == variant else 1.0)
            for w in rec["inference"]["windows"]:
                w["energy_j"] *= f
        return rec
    return change


def test_compare(digits_run: Path, rerun: tuple[Path, str], tmp_path: Path) -> None:
    aa = run_cli("compare", str(digits_run), str(rerun[0]))  # a real A/A: same code, a second run
    assert aa.returncode == 0, aa.stdout + aa.stderr
    assert "0 regression(s)" in aa.stdout
    assert "energy not gated for 8 variant(s): one run per side" in aa.stdout
    worse = planted(digits_run, tmp_path / "worse", lose_ten_points)
    bad = run_cli("compare", str(digits_run), str(worse))
    assert bad.returncode == 1 and "ACCURACY REGRESSION (McNemar)" in bad.stdout
    alien = planted(digits_run, tmp_path / "alien", lambda r: {**r, "suite": "sst2", "task": "sst2"})
    err = run_cli("compare", str(digits_run), str(alien))
    assert err.returncode == 2 and "cannot compare suite digits with sst2" in err.stderr
    assert "Traceback" not in err.stderr


def test_compare_energy_over_repeated_runs(digits_run: Path, tmp_path: Path) -> None:
    """Five runs per side whose machine speed drifts by +-20% from run to run (as this
    VM's does). Same code: no verdict. cnn 30% costlier in every NEW run: the drift
    hides it from the raw test but not from the test relative to the other variants."""
    drift = [0.8, 1.2, 1.0, 0.85, 1.15]
    base = [planted(digits_run, tmp_path / f"base{i}", scaled(f)) for i, f in enumerate(drift)]
    same = [planted(digits_run, tmp_path / f"same{i}", scaled(f)) for i, f in enumerate(reversed(drift))]
    costly = [planted(digits_run, tmp_path / f"costly{i}", scaled(f, "cnn", 1.3)) for i, f in enumerate(reversed(drift))]

    def joined(dirs: list[Path]) -> str:
        return ",".join(map(str, dirs))

    aa = run_cli("compare", joined(base), joined(same))
    assert aa.returncode == 0 and "0 regression(s)" in aa.stdout, aa.stdout
    bad = run_cli("compare", joined(base), joined(costly))
    assert bad.returncode == 1, bad.stdout
    flagged = [line.split()[0] for line in bad.stdout.splitlines() if "ENERGY REGRESSION" in line]
    assert flagged == ["cnn"] and "relative to the other variants" in bad.stdout
    few = run_cli("compare", joined(base[:3]), joined(costly[:3]))
    assert few.returncode == 0 and "energy cannot fail this comparison" in few.stdout  # 3 runs: too few
    # one run each, windows as units: the quick run's windows spread ~15%, up to 3x (they span the
    # drift of the measurement phase), so plant a change no window overlap can hide
    tripled = planted(digits_run, tmp_path / "tripled", scaled(1.0, "cnn", 3.0))
    windows = run_cli("compare", str(digits_run), str(tripled), "--windows-as-units")
    assert windows.returncode == 1, windows.stdout
    assert [line.split()[0] for line in windows.stdout.splitlines() if "ENERGY REGRESSION" in line] == ["cnn"]


def test_shards_are_disjoint_and_cover_the_suite() -> None:
    specs = expand(load(ROOT / "benchmarks/sst2.yaml"))
    parts = [shard(specs, i, 3) for i in (1, 2, 3)]
    keys = [s.key for p in parts for s in p]
    assert sorted(keys) == sorted(s.key for s in specs) and len(keys) == len(set(keys))
    assert shard(specs, 2, 3) == parts[1]  # deterministic


def test_shard_and_merge(digits_run: Path, cache_dir: Path, tmp_path: Path) -> None:
    dirs = []
    for i in (1, 2):
        out = tmp_path / f"shard{i}"
        proc = run_cli("run", "benchmarks/digits.yaml", "--quick", "--shard", f"{i}/2", "--out", str(out),
                       env={"JOULEBENCH_CACHE": str(cache_dir)})
        assert proc.returncode == 0, proc.stderr
        dirs.append(out)
    merged = tmp_path / "merged"
    proc = run_cli("merge", str(dirs[0]), str(dirs[1]), str(dirs[0]), "--out", str(merged))
    assert proc.returncode == 0, proc.stderr
    n_dup = len(run_keys(dirs[0]))
    assert proc.stderr.count("duplicate:") == n_dup  # the overlap is reported ...
    keys = run_keys(merged)
    assert len(keys) == len(set(keys)) and set(keys) == set(run_keys(digits_run))  # ... and counted once
    assert (merged / "table.csv").is_file()
    bad = run_cli("run", "benchmarks/digits.yaml", "--quick", "--shard", "3/2")
    assert bad.returncode == 2 and "--shard '3/2'" in bad.stderr
