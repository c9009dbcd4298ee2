"""Quick profiles run for real, through the CLI, on real data; the files are checked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.report import COLUMNS
from tests.conftest import ROOT, run_cli


def check_run_dir(out: Path, n_eval: int, min_accuracy: float) -> pd.DataFrame:
    table = pd.read_csv(out / "table.csv")
    assert list(table.columns) == COLUMNS
    assert len(table) == 1
    row = table.iloc[0]
    assert row["n_eval"] == n_eval
    assert 0 <= row["accuracy_ci95_lo"] <= row["accuracy"] <= row["accuracy_ci95_hi"] <= 1
    # above chance with 95% confidence, not just by luck
    assert row["accuracy_ci95_lo"] > min_accuracy
    assert row["train_J"] > 0 and row["train_s"] > 0
    assert 0 < row["J_per_inference_ci95_lo"] <= row["J_per_inference"] <= row["J_per_inference_ci95_hi"]
    assert row["correct_per_J"] == pytest.approx(row["accuracy"] / row["J_per_inference"])
    assert row["energy_method"] == "estimate"

    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert len(rec["eval"]["predictions"]) == n_eval
    assert rec["eval"]["correct"] == round(row["accuracy"] * n_eval)
    assert len(rec["inference"]["windows"]) >= 6
    assert all(w["energy_j"] > 0 for w in rec["inference"]["windows"])
    env = json.loads((out / "environment.json").read_text())
    assert env["torch"] and env["meter"] == "estimate" and env["logical_cpus"] >= 1
    md = (out / "table.md").read_text()
    assert "Energy method: estimate: E = 12 W x process CPU-seconds" in md
    return table


def test_digits_quick(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    proc = run_cli("run", "benchmarks/digits.yaml", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = check_run_dir(out, n_eval=450, min_accuracy=0.5)  # chance is 0.1
    assert table.iloc[0]["task"] == "digits" and table.iloc[0]["variant"] == "baseline"
    assert "| digits | cnn | baseline |" in proc.stdout
    assert "ESTIMATE" in proc.stderr  # never a silent fallback


def test_sst2_quick_on_a_slice(tmp_path: Path, sst2_slice: Path) -> None:
    out = tmp_path / "sst2"
    proc = run_cli("run", "benchmarks/sst2.yaml", "--quick", "--out", str(out),
                   env={"JOULEBENCH_DATA": str(sst2_slice)})
    assert proc.returncode == 0, proc.stderr
    check_run_dir(out, n_eval=300, min_accuracy=0.5)  # chance is 0.5


def test_run_all_skips_unreachable_sst2_with_one_line(tmp_path: Path) -> None:
    """No data folder and no Hub: digits runs, SST-2 is skipped with its reason, exit 0."""
    import shutil
    import subprocess

    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns("results", ".git", "__pycache__", "*.egg-info"))
    env = {k: v for k, v in os.environ.items() if k != "JOULEBENCH_DATA"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(["./run_all.sh", "--quick"], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if "skipped sst2" in line]
    assert len(skipped) == 1 and "JOULEBENCH_DATA" in skipped[0] and "--data-dir" in skipped[0]
    assert "Traceback" not in proc.stderr
    assert "# Combined table" in proc.stdout and "| digits | cnn | baseline |" in proc.stdout
    assert len(list((clone / "results" / "digits").glob("*/table.csv"))) == 1
    assert not (clone / "results" / "sst2").exists()
