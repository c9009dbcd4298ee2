"""Quick profiles run for real, through the CLI, on real data; the files are checked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.table import table_columns
from tests.conftest import ROOT, gpu_env, run_cli, spine_suite


def check_run_dir(out: Path, n_eval: int, chance: float) -> pd.DataFrame:
    table = pd.read_csv(out / "table.csv").set_index("variant_id", drop=False)
    env = json.loads((out / "environment.json").read_text())
    meter = env["meter"]  # what `meter: auto` found here: estimate on our CI VM, counters elsewhere
    estimated = meter == "estimate"
    assert set(table_columns()) <= set(table.columns)
    for col in ("pareto", "break_even_inferences", "J_at_1e6_queries", "train_gCO2e", "lineage_train_J"):
        assert col in table.columns
    for vid, row in table.iterrows():
        assert row["n_eval"] == n_eval, vid
        assert 0 <= row["accuracy_ci95_lo"] <= row["accuracy"] <= row["accuracy_ci95_hi"] <= 1, vid
        assert row["train_J"] > 0 and row["train_s"] > 0, vid
        assert 0 < row["J_per_inference_within_run_ci95_lo"] <= row["J_per_inference"], vid
        assert row["J_per_inference"] <= row["J_per_inference_within_run_ci95_hi"], vid
        assert 0 < row["J_per_inference_net"] <= row["J_per_inference"], vid
        assert row["energy_method"] == meter, vid  # creation and inference here, by one meter
        if estimated:
            assert row["energy_uncertainty"] == 0.5, vid  # a fraction, as a number
        assert row["size_bytes"] > 0 and 0 < row["nonzero_params"] <= row["params"], vid
        if pd.notna(row["parent"]):
            assert row["parent"] in table.index, vid
            assert -1 <= row["accuracy_delta_vs_parent"] <= 1 and 0 < row["delta_p"] <= 1, vid
    # the baselines are above chance with 95% confidence, not just by luck
    baselines = table[table["variant"] == "baseline"]
    assert (baselines["accuracy_ci95_lo"] > chance).all()
    # the suites record training curves: every trained row has its J to target, below its train J
    for vid, row in baselines.iterrows():
        assert 0 < row["J_to_target"] <= row["train_J"] and row["curve_eval_J"] > 0, vid
        assert 0 < row["val_accuracy"] <= 1 and row["J_to_target_seeds_reached"] == row["seeds"], vid
    assert (out / "training_curves.png").stat().st_size > 10_000

    lines = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    ok = [r for r in lines if r["status"] == "ok"]
    assert len(ok) == len(table)
    for rec in ok:
        assert len(rec["eval"]["predictions"]) == n_eval
        assert len(rec["inference"]["windows"]) >= 6
        assert all(w["energy_j"] > 0 for w in rec["inference"]["windows"])
    assert env["torch"] and env["logical_cpus"] >= 1
    assert env["idle_w"] and all(w >= 0 for w in env["idle_w"].values())
    if estimated:
        assert set(env["idle_w"]) == {"cpu", "dram"}
    md = (out / "table.md").read_text()
    if estimated:
        assert "Energy method: estimate: E = 12 W x CPU-seconds of the process" in md
    assert "Carbon: gCO2e = kWh x 475.0 g/kWh x PUE 1.58" in md
    check_outputs(out, table)
    return table


def check_outputs(out: Path, table: pd.DataFrame) -> None:
    """Every artefact is written, parses, and agrees with the CSV."""
    import matplotlib.image

    parquet = pd.read_parquet(out / "table.parquet").set_index("variant_id", drop=False)
    assert list(parquet.index) == list(table.index)
    assert parquet["J_per_inference"].tolist() == pytest.approx(table["J_per_inference"].tolist())
    # typed: numbers are numbers, missing is null, "never" is a flag beside a null
    assert str(parquet["break_even_inferences"].dtype) in ("float64", "Float64")
    assert ((~parquet["break_even_status"].str.startswith("pays back")) <= parquet["break_even_inferences"].isna()).all()
    assert parquet["parent"].isna().sum() == (table["variant"] == "baseline").sum()
    assert table["pareto"].any()  # somebody is on the frontier
    tex = (out / "table.tex").read_text()
    assert tex.count("\\toprule") == 1 and "\\label{tab:" in tex
    assert table["energy_method"].iloc[0] in tex
    full = (out / "table_full.tex").read_text()
    assert full.count("\\toprule") == full.count("\\begin{tabularx}{\\textwidth}") >= 2  # page-wide parts
    dictionary = pd.read_csv(out / "columns.csv")
    assert list(dictionary["name"]) == list(parquet.columns)
    for png in ("accuracy_vs_energy.png", "lifecycle_energy.png"):
        assert (out / png).with_suffix(".pdf").read_bytes().startswith(b"%PDF")  # its vector twin
        image = matplotlib.image.imread(out / png)
        assert image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.05  # not a blank canvas


def check_ladder(table: pd.DataFrame, out: Path, prefix: str, chance: float) -> None:
    """The lineage, the sparsity, the int8 size and the KD student, as the ladder promises."""
    for sparsity in (50, 90):
        row = table.loc[f"{prefix}.prune{sparsity}"]
        assert row["parent"] == prefix and row["variant"] == "prune"
        # one denominator (the parent's parameters, all of them): at most the share of the
        # Linear/Conv weights zeroed, near it where those are nearly all of the model (the CNN)
        assert row["sparsity"] == pytest.approx(1 - row["nonzero_params"] / table.loc[prefix]["params"])
        assert 0 < row["sparsity"] <= sparsity / 100 + 0.01
        if prefix == "cnn":
            assert abs(row["sparsity"] - sparsity / 100) < 0.01
        assert row["sparsity_exploited"] is False or row["sparsity_exploited"] == False  # noqa: E712
        assert row["sparsity_note"].startswith("no")
    int8, parent = table.loc[f"{prefix}.int8"], table.loc[prefix]
    assert int8["parent"] == prefix and int8["size_bytes"] < parent["size_bytes"]
    assert table.loc[f"{prefix}.bf16"]["size_bytes"] < parent["size_bytes"]
    md = (out / "table.md").read_text()
    assert f"skipped {prefix}.fp16 (seed 0): fp16 inference needs a CUDA GPU" in md
    assert f"{prefix}.fp16" not in table.index


def test_accuracy_is_measured_on_the_held_out_split(digits_run: Path, sst2_slice: Path, tmp_path: Path) -> None:
    """The labels every record scored against are the held-out split's, computed here
    independently of the task code, and no eval image is a training image."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_train, x_eval, _, y_eval = train_test_split(bunch.images, bunch.target, test_size=0.25, random_state=0,
                                                  stratify=bunch.target)
    train_rows = {x.tobytes() for x in x_train}
    assert sum(x.tobytes() in train_rows for x in x_eval) < 0.05 * len(x_eval)  # UCI digits has a few duplicates
    for line in (digits_run / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] == "ok":
            assert rec["eval"]["labels"] == y_eval.tolist(), rec["run_key"]
            correct = np.array(rec["eval"]["predictions"]) == y_eval
            assert rec["eval"]["correct"] == int(correct.sum())


def test_digits_quick(digits_run: Path) -> None:
    out = digits_run
    stdout, stderr = (out / "stdout.txt").read_text(), (out / "stderr.txt").read_text()
    table = check_run_dir(out, n_eval=450, chance=0.1)
    check_ladder(table, out, "cnn", chance=0.1)
    student = table.loc["mlp.distill"]
    assert student["parent"] == "cnn" and student["model"] == "mlp" and student["variant"] == "distill"
    assert student["accuracy_ci95_lo"] > 0.1
    assert table.loc["cnn.channels50"]["params"] < table.loc["cnn"]["params"]
    assert "| digits | cnn | - | baseline (-) |" in stdout
    if json.loads((out / "environment.json").read_text())["meter"] == "estimate":
        assert "ESTIMATE" in stderr  # never a silent fallback
    # a fresh cache: 6 modules (int8/bf16 are never cached), the teacher's logits, 2 .onnx files
    assert "0 hit(s), 9 miss(es)" in stderr


def test_sst2_quick_on_a_slice(tmp_path: Path, sst2_slice: Path) -> None:
    """The SST-2 ladder, less its runtime rows (a cold compile of BERT-tiny costs ~40 s
    here; both runtimes are tested on digits, and on BERT in test_runtimes) and MiniLM's
    layer pruning (tested on BERT by test_compress's loop over every technique)."""
    import yaml

    raw = yaml.safe_load((ROOT / "benchmarks" / "sst2.yaml").read_text())
    for where in (raw, raw["quick"]):  # prune_layers is tested on BERT in test_compress (time)
        where["variants"] = [v for v in where["variants"] if "runtime" not in v and v["id"] != "minilm.layers3"]
    # the slice's own budget (time): fewer fine-tuning examples and shorter windows; the
    # student keeps its examples (it must beat chance)
    quick = raw["quick"]
    quick["models"]["minilm"]["train"]["max_samples"] = 400
    for v in quick["variants"]:
        if v["id"] != "bert_tiny.distill" and "train" in v:
            v["train"]["max_samples"] = min(v["train"].get("max_samples", 400), 400 if "minilm" not in v["id"] else 150)
    quick["measure"] = {**quick["measure"], "min_window_s": 0.25, "idle_s": 0.5}
    suite = tmp_path / "sst2.yaml"
    suite.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "sst2"
    proc = run_cli("run", str(suite), "--quick", "--out", str(out), env={"JOULEBENCH_DATA": str(sst2_slice)})
    assert proc.returncode == 0, proc.stderr
    table = check_run_dir(out, n_eval=300, chance=0.5)
    check_ladder(table, out, "bert_tiny", chance=0.5)
    student = table.loc["bert_tiny.distill"]
    assert student["parent"] == "minilm" and student["model"] == "bert_tiny"
    assert student["accuracy_ci95_lo"] > 0.5  # the KD student is above chance
    assert table.loc["minilm"]["params"] > 20_000_000  # the real pretrained MiniLM-L6-H384


def test_run_all_skips_unreachable_sst2_with_one_line(tmp_path: Path) -> None:
    """No data folder and no Hub: digits runs, SST-2 is skipped with its reason, exit 0."""
    import shutil
    import subprocess

    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns("results", ".git", "__pycache__", "*.egg-info"))
    # what run_all does is under test (every suite, the skip, the combined table), not the
    # ladder (the digits run tests that): the clone's digits suite is a two-row one
    import yaml

    raw = yaml.safe_load((ROOT / "benchmarks" / "digits.yaml").read_text())
    raw["variants"] = [v for v in raw["variants"] if v["id"] == "cnn.int8"]
    raw["quick"] = {**raw["quick"], "train": {"epochs": 2}}
    (clone / "benchmarks" / "digits.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "JOULEBENCH_DATA"}
    env["HF_HUB_OFFLINE"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run on every machine, like the other CLI tests
    proc = subprocess.run(["./run_all.sh", "--quick"], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if "skipped sst2" in line]
    assert len(skipped) == 1 and "JOULEBENCH_DATA" in skipped[0] and "--data-dir" in skipped[0]
    assert "Traceback" not in proc.stderr
    assert "# Combined table" in proc.stdout and "| digits | cnn | - | baseline (-) |" in proc.stdout
    assert len(list((clone / "results" / "digits").glob("*/table.csv"))) == 1
    assert not (clone / "results" / "sst2").exists()


def test_variants_are_measured_in_interleaved_rounds(digits_run: Path) -> None:
    """Round r holds one window of every measured variant, so each variant's windows
    span the whole measurement phase and the variants share the machine's drift."""
    recs = [json.loads(x) for x in (digits_run / "records.jsonl").read_text().splitlines()]
    ok = [r for r in recs if r["status"] == "ok"]
    reps = len(ok[0]["inference"]["windows"])
    slots: dict[int, str] = {}
    for r in ok:
        inf = r["inference"]
        assert inf["schedule"].startswith("interleaved rounds") and inf["rounds"] == list(range(reps))
        assert len(inf["sequence"]) == len(inf["windows"]) == reps
        for pos in inf["sequence"]:
            assert pos not in slots, "two windows in one slot"
            slots[pos] = r["variant_id"]
    n = len(ok)
    assert sorted(slots) == list(range(n * reps))
    for rnd in range(reps):
        in_round = [slots[rnd * n + k] for k in range(n)]
        assert sorted(in_round) == sorted(r["variant_id"] for r in ok)  # every variant once per round
    firsts = [slots[rnd * n] for rnd in range(reps)]
    assert len(set(firsts)) == min(n, reps)  # the starting variant rotates


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA GPU on this machine")
def test_digits_quick_on_the_gpu(tmp_path: Path) -> None:
    """Where a GPU exists: the same suite on cuda:0, metered by NVML (the run's GPU only),
    fp16 runs for real and int8 is a one-line skip."""
    out = tmp_path / "gpu"
    proc = run_cli("run", "benchmarks/digits.yaml", "--quick", "--device", "cuda", "--out", str(out), "--no-cache",
                   env=gpu_env())
    assert proc.returncode == 0, proc.stderr
    env = json.loads((out / "environment.json").read_text())
    assert env["device"]["type"] == "cuda" and env["device"]["model"]
    assert "nvml" in env["meter"] and "gpu0" in env["idle_w"]
    table = pd.read_csv(out / "table.csv").set_index("variant_id")
    assert "cnn.fp16" in table.index and table.loc["cnn", "device"].startswith("cuda:0")
    assert "skipped cnn.int8 (seed 0): int8 on a GPU" in (out / "table.md").read_text()
    for line in (out / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] == "ok":
            comps = {c["component"] for w in rec["inference"]["windows"] for c in w["components"]}
            assert {c for c in comps if c.startswith("gpu")} == {"gpu0"}
