"""Shared-node honesty: a window records the CPU share other processes took of the
machine meanwhile (/proc/stat less our own process tree) and is flagged ``shared`` above
a quarter; the table counts such windows and a footnote says what they mean. Planted: a
busy process outside our tree beside a window and beside a run; and its absence. Its
sibling inside the process: a window that ended with another of our threads still
working is recorded ``unsettled``, counted and named likewise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.meters import sharing
from tests.conftest import cli

pytestmark = pytest.mark.skipif(sharing.machine_busy_s() is None, reason="no /proc/stat here")

TINY = {
    "name": "tinyshared", "task": {"name": "digits", "options": {"eval_fraction": 0.25, "split_seed": 0}},
    "meter": "estimate", "seeds": [0], "train": {"epochs": 1, "batch_size": 64, "lr": 0.003},
    "models": {"mlp": {"family": "mlp", "options": {"hidden": [16]}}},
    "variants": [{"id": "mlp.int8", "parent": "mlp", "technique": "quantize", "params": {"dtype": "int8"}}],
    "measure": {"batch_size": 128, "warmup": 1, "repetitions": 6, "min_window_s": 0.2, "idle_s": 0.2},
}


@contextmanager
def busy_neighbour():
    """One process spinning per CPU, outside this process tree (reparented away), as
    another job on the node would be: whatever share the run's own threads take, the
    others keep well over a quarter of the machine."""
    pid_file = Path(f"/tmp/joulebench-spin-{os.getpid()}")
    spin = 'nohup python3 -c "while True: pass" >/dev/null 2>&1 & echo $! >> ' + str(pid_file)
    subprocess.run(["bash", "-c", "; ".join([spin] * (os.cpu_count() or 1))], check=True)
    pids = [int(x) for x in pid_file.read_text().split()]
    try:
        time.sleep(0.3)
        yield pids
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink()


def _window(seconds: float):
    from harness import meters
    from harness.config import MeterConfig

    monitor = meters.build(MeterConfig(name="estimate"), allow_estimate=True, log=lambda s: None)
    try:
        monitor.begin_window("w")
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # our own work
            pass
        return monitor.end_window("w")
    finally:
        monitor.close()


def test_a_window_beside_a_busy_process_is_shared_and_alone_it_is_not() -> None:
    alone = _window(0.5)
    assert alone.others_cpu_share is not None and not alone.shared and alone.others_cpu_share < 0.25
    with busy_neighbour():
        beside = _window(0.5)
    assert beside.shared and beside.others_cpu_share > 0.25
    assert beside.to_dict()["shared"] is True  # recorded with the window


def _run(tmp_path: Path, name: str) -> tuple[pd.DataFrame, str]:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump(TINY))
    proc = cli("run", str(suite), "--out", str(tmp_path / name), "--no-cache", "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return pd.read_parquet(tmp_path / name / "table.parquet"), (tmp_path / name / "table.md").read_text()


def test_a_run_beside_a_busy_process_counts_its_shared_windows(tmp_path: Path) -> None:
    table, md = _run(tmp_path, "alone")
    assert table["shared_windows"].tolist() == [0, 0] and "shared windows" not in md
    with busy_neighbour():
        table, md = _run(tmp_path, "beside")
    recs = [json.loads(x) for x in (tmp_path / "beside" / "records.jsonl").read_text().splitlines()]
    seen = {r["variant_id"]: [(round(w["duration_s"], 3), w.get("others_cpu_share")) for w in r["inference"]["windows"]]
            for r in recs}  # what a failure shows: a window too short for /proc/stat has no share
    assert (table["shared_windows"] > 0).all(), seen
    assert "WARNING: shared windows: " in md and "includes their work" in md


def test_a_share_is_a_fraction_or_unknown() -> None:
    """A window shorter than /proc/stat's ticks resolve has no share (one tick would read
    as 3.5 of the machine); otherwise the share lies in [0, 1] and a busy neighbour is
    flagged, an idle one not."""
    from harness.meters.sharing import Snapshot, others

    tick = 1 / 100
    assert others(Snapshot(0.0, 0.0, 0.0), Snapshot(tick, 0.0, 8e-6), cpus=2) is None
    assert others(Snapshot(0.0, 0.0, 0.0), Snapshot(1.0, 0.0, 1.0), cpus=2) == (0.5, True)
    assert others(Snapshot(0.0, 0.0, 0.0), Snapshot(2.04, 0.0, 1.0), cpus=2) == (1.0, True)  # a tick over: held at 1
    assert others(Snapshot(0.0, 0.0, 0.0), Snapshot(1.0, 1.0, 1.0), cpus=2) == (0.0, False)  # our own work only


def test_unsettled_windows_are_counted_in_the_table_and_named_under_it(digits_run: Path, tmp_path: Path) -> None:
    """A window that ended with another thread of the process still working (measure.settle
    ran out; tests/test_measure.py plants the thread) is recorded with the window, counted
    per row and named under the table. Absence: the real run has every window checked
    and none unsettled. Planted: its records with two cnn windows marked, reported again."""
    table = pd.read_csv(digits_run / "table.csv")
    assert table["unsettled_windows"].tolist() == [0] * len(table)
    assert "unsettled windows" not in (digits_run / "table.md").read_text()
    lines = []
    for line in (digits_run / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        windows = (rec.get("inference") or {}).get("windows", [])  # a skipped row has none
        assert all(w["unsettled"] is False for w in windows)  # checked, not left out
        if rec["variant_id"] == "cnn" and rec["seed"] == 0:
            for w in rec["inference"]["windows"][:2]:
                w["unsettled"] = True
        lines.append(json.dumps(rec))
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "records.jsonl").write_text("\n".join(lines) + "\n")
    proc = cli("report", str(planted), "--out", str(tmp_path / "report"), "--no-plots")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = pd.read_csv(tmp_path / "report" / "table.csv").set_index("variant_id")["unsettled_windows"]
    assert got["cnn"] == 2 and (got.drop("cnn") == 0).all(), got
    assert "WARNING: unsettled windows: 2 inference window(s) (cnn)" in (tmp_path / "report" / "table.md").read_text()
