"""benchmarks/scripts/gpu_check.sh --dry-run: the prepared GPU check runs end to end on
the CPU against the fake pynvml, fits what the device machine sends back, and says on
every page that it is a dry run (no figure in it is a GPU measurement)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile

from tests.conftest import ROOT


def test_dry_run_measures_every_step_and_labels_itself(shared_sst2, tmp_path):
    out = tmp_path / "out"
    # the fake board is "visible": CUDA_VISIBLE_DEVICES="" would hide it from NVML, as it hides a real one
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(OUT=str(out), JOULEBENCH_DATA=str(shared_sst2.parent), HF_HUB_OFFLINE="1", TMPDIR=str(tmp_path))
    proc = subprocess.run(["bash", "benchmarks/scripts/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    # what one device call brings back: at most 8 plain files of at most 16 MiB, plain names
    assert len(files) <= 8, files
    assert all(p.parent == out and re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in files)
    assert all(p.stat().st_size < 16 * 2**20 for p in files)
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# GPU check — DRY RUN") and "not a GPU" in summary
    probe = json.loads((out / "nvml_probe.json").read_text())
    assert probe["dry_run"] is True and "FAKE" in probe["name"]
    assert all(abs(p - 0.005) < 0.002 for p in probe["counter_update_period_s"])  # the fake's 5 ms steps
    assert 0.9 < probe["loaded_window"]["polled_over_counter"] < 1.1
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    ok = [r for r in records if r.get("status") != "skipped"]
    assert ok and all(r["device"]["type"] == "cpu" for r in records)  # never a CUDA device in a dry run
    # the fake board was metered through the NVML backend, with its cross-check, beside the estimate
    inference = [w for r in ok for w in r["inference"]["windows"]]
    assert inference and all({c["method"] for c in w["components"]} == {"estimate", "nvml"} for w in inference)
    assert all(w.get("cross_check") for w in inference)
    skipped = {r["variant_id"]: r["reason"] for r in records if r.get("status") == "skipped"}
    assert "2:4" in skipped.get("bert_small.sparse24", "")  # the CPU says why in one line
    assert "bert_small.sparse24" in summary and "| bert_small.bf16 |" in summary
    with tarfile.open(out / "run.tar.gz") as tar:
        names = tar.getnames()
    assert "run/table.csv" in names and "run/batch_sizes.csv" in names
