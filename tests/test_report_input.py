"""The report on damaged or mixed inputs: a warning naming the line, the rest reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import cli


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.png", "table.*"))
    return dst


def test_truncated_line_is_named_and_the_rest_reported(digits_run: Path, tmp_path: Path) -> None:
    run = copy_run(digits_run, tmp_path / "run")
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    torn = lines[:3] + [lines[3][: len(lines[3]) // 2] + "\n"] + lines[4:]
    (run / "records.jsonl").write_text("".join(torn))
    proc = cli("report", str(run), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert "records.jsonl line 4 is truncated or not JSON; skipped it" in proc.stderr
    assert "| digits | cnn | - |" in proc.stdout and (run / "table.csv").is_file()


def test_records_of_another_suite_are_named_and_skipped(digits_run: Path, tmp_path: Path) -> None:
    run = copy_run(digits_run, tmp_path / "run")
    path = run / "records.jsonl"
    foreign = json.loads(path.read_text().splitlines()[0])
    foreign.update(suite="sst2", config_hash="0123456789abcdef", variant_id="intruder")
    with open(path, "a") as fh:
        fh.write(json.dumps(foreign) + "\n")
    n = len(path.read_text().splitlines())
    proc = cli("report", str(run), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert f"line {n} is from suite 'sst2'" in proc.stderr
    assert "intruder" not in proc.stdout and "| digits | cnn | - |" in proc.stdout


def test_carbon_options_reach_the_footnote(digits_run: Path, tmp_path: Path) -> None:
    run = copy_run(digits_run, tmp_path / "run")
    proc = cli("report", str(run), "--carbon-preset", "strubell2019", "--no-plots")
    assert "432.7 g/kWh x PUE 1.58 (Strubell et al. 2019" in proc.stdout
    proc = cli("report", str(run), "--carbon-preset", "mars")
    assert proc.returncode == 2 and "unknown carbon preset 'mars'" in proc.stderr
