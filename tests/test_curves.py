"""Training curves, J to target, sweeps with their tuning energy, and the paper appendix.

Real training on quick digits; the meter is the estimate (the one this machine has),
with fake clocks where a test needs exact joules.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness import curves, suite as suite_mod
from harness.errors import UserError
from harness.meters import EnergyMonitor
from harness.meters.estimate import EstimateBackend
from harness.tasks import Split
from tests.conftest import ROOT, cli, run_cli


# -- the carved validation split -------------------------------------------------------
def test_carved_validation_never_overlaps_training_or_eval() -> None:
    from harness.runner import load_task

    s = suite_mod.load(ROOT / "benchmarks" / "digits.yaml", "quick")
    plain = load_task(suite_mod.parse({**s.resolved, "train": {"epochs": 1}}, "x"), None)  # no curve: no carve
    assert plain.validation is None
    task = load_task(s, None)
    val, train = task.validation.positions(), task.train.positions()
    assert len(val) == round(0.1 * len(plain.train)) and len(set(val)) == len(val)
    assert not set(val) & set(train)  # never trained on
    assert sorted(set(val) | set(train)) == list(range(len(plain.train)))  # carved from the training split only
    assert not set(val) & set(task.train.subset(500).positions())  # nor by a max_samples budget
    # the eval split is untouched: the same examples, in the same order
    assert np.array_equal(task.eval.labels, plain.eval.labels) and np.array_equal(task.eval.inputs, plain.eval.inputs)
    # the positions really are the loaded rows: the carved examples are the training split's own
    assert np.array_equal(task.validation.inputs, plain.train.inputs[val])
    # seeded: the same split every time
    assert np.array_equal(load_task(s, None).validation.positions(), val)


def test_carve_of_a_text_split_keeps_positions() -> None:
    from harness.tasks import TaskData

    texts = [f"sentence {i}" for i in range(200)]
    split = Split(texts, np.arange(200) % 2)
    task = TaskData("t", split, Split(["e"], np.array([0])), 2, "text", "mem", "eval").carve(0.5, 30, seed=3)
    assert len(task.validation) == 30 and len(task.train) == 170
    assert all(task.validation.inputs[k] == f"sentence {p}" for k, p in enumerate(task.validation.positions()))
    assert not set(task.validation.positions()) & set(task.train.positions())
    with pytest.raises(ValueError, match="leaves no"):
        TaskData("t", Split(["a"], np.array([0])), split, 2, "text", "mem", "eval").carve(0.5, 10, seed=0)


# -- the window arithmetic ---------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fake_monitor() -> tuple[EnergyMonitor, Clock, Clock]:
    wall, cpu = Clock(), Clock()
    backend = EstimateBackend(cpu_w_per_busy_cpu=10.0, dram_w_per_gb=0.0, cpu_seconds=cpu,
                              memory_bytes=lambda: 0, clock=wall)
    return EnergyMonitor([backend], clock=wall), wall, cpu


def test_lap_and_minus_keep_the_validation_passes_out_of_training() -> None:
    monitor, wall, cpu = fake_monitor()
    monitor.begin_window("train")
    wall.t, cpu.t = 1.0, 1.0  # 10 J of training
    assert monitor.lap("train").energy_j == pytest.approx(10.0)  # read, left open
    monitor.begin_window("val1")
    wall.t, cpu.t = 1.5, 1.3  # 3 J of validation
    val = monitor.end_window("val1", checked=False)
    wall.t, cpu.t = 3.0, 2.3  # 10 J more training
    total = monitor.end_window("train")
    assert total.energy_j == pytest.approx(23.0)
    own = monitor.minus("train", total, [val])
    assert own.energy_j == pytest.approx(20.0) and own.duration_s == pytest.approx(2.5)
    assert own.uncertainty_j == pytest.approx(10.0)  # +-50% of its own joules
    # a nested window larger than its parent is a meter fault, never a negative figure
    with pytest.raises(Exception, match="must be positive"):
        monitor.minus("train", total, [val, val, val, val, val, val, val, val])


def test_curve_is_monotone_in_joules_and_steps(tmp_path: Path) -> None:
    """A real training loop with a recorder: steps, examples and training joules rise;
    the training window is the total less every validation pass."""
    from harness.models import MODELS
    from harness.runner import load_task
    from harness.train import train

    s = suite_mod.load(ROOT / "benchmarks" / "digits.yaml", "quick")
    task = load_task(s, None)
    cnn = s.models[0]
    bundle = MODELS.get(cnn.family)(task, **cnn.options)
    monitor = EnergyMonitor([EstimateBackend()])
    rec = curves.CurveRecorder(monitor, "cnn:train", bundle.module, bundle.encode(task.validation), 128,
                               {"n": len(task.validation)}, None, {"evals_per_epoch": 1})
    with rec.window() as out:
        stats = train(bundle.module, bundle.encode(task.train), cnn.train, 0, checkpoint=rec.checkpoint)
    points = rec.curve()["points"]
    assert len(points) == cnn.train.epochs and points[-1]["step"] == stats.steps
    for a, b in zip(points, points[1:]):
        assert b["step"] > a["step"] and b["examples_seen"] > a["examples_seen"]
        assert b["train_J"] >= a["train_J"] > 0 and b["train_s"] > a["train_s"]
    assert points[-1]["train_J"] <= out[0].energy_j  # the training-only window holds every point
    assert bundle.module.training is False  # train() leaves it in eval mode, the recorder restored it in between
    assert all(0 <= p["val_accuracy"] <= 1 for p in points) and points[-1]["val_accuracy"] > 0.5
    assert sum(p["eval_J"] for p in points) == pytest.approx(sum(w["energy_j"] for w in rec.curve()["eval_windows"]))
    # the padding is the passes': the training keeps none of it (each pass's whole window out)
    assert all(m.duration_s >= monitor.creation_min_s() * (1 - 1e-9) for m in rec.spent)
    # each validation pass (milliseconds) went through the meter's resolution: padded and
    # reported for the pass alone, or kept as a bound; never a power the CPU cannot draw
    cap = monitor.backends[0].max_power_w("cpu")
    for w in rec.curve()["eval_windows"]:
        assert w.get("work_s") is not None or w["duration_s"] >= monitor.creation_min_s()
        cpu_j = next(c["energy_j"] for c in w["components"] if c["component"] == "cpu")
        assert w.get("below_resolution") or cpu_j <= cap * w["duration_s"] * (1 + 1e-9), w


def test_recording_a_curve_does_not_change_what_is_trained() -> None:
    """The same seed with and without validation passes gives the same weights, bit for
    bit: the passes draw no random numbers and restore the module's training mode
    (the CNN has dropout)."""
    import torch

    from harness.models import MODELS
    from harness.runner import load_task
    from harness.train import train

    s = suite_mod.load(ROOT / "benchmarks" / "digits.yaml", "quick")
    task, cnn = load_task(s, None), s.models[0]
    weights = []
    for with_curve in (False, True):
        torch.manual_seed(0)
        bundle = MODELS.get(cnn.family)(task, **cnn.options)
        rec = curves.CurveRecorder(EnergyMonitor([EstimateBackend()]), "k", bundle.module,
                                   bundle.encode(task.validation) if with_curve else None, 64)
        with rec.window():
            train(bundle.module, bundle.encode(task.train), cnn.train, 0, checkpoint=rec.checkpoint)
        assert (rec.curve() is not None) == with_curve
        weights.append(bundle.module.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_no_curve_without_a_validation_split() -> None:
    monitor = EnergyMonitor([EstimateBackend()])
    rec = curves.CurveRecorder(monitor, "k", module=None)
    assert rec.checkpoint is None and rec.curve() is None


# -- J to target ------------------------------------------------------------------------
POINTS = [{"train_J": j, "val_accuracy": a} for j, a in [(1.0, 0.5), (2.0, 0.8), (4.0, 0.9), (8.0, 0.85), (16.0, 0.91)]]


def test_j_to_target_on_a_hand_built_curve() -> None:
    assert curves.j_to_target(POINTS, 0.9) == 4.0  # first reached at the third point, not the last
    assert curves.j_to_target(POINTS, 0.8) == 2.0
    assert curves.j_to_target(POINTS, 0.95) is None  # never reached
    assert curves.j_to_target(POINTS, None) == 16.0  # 99% of 0.91 = 0.9009: only the last point
    assert curves.j_to_target(POINTS[:3], None) == 4.0  # 99% of 0.9 = 0.891
    assert curves.j_to_target([], 0.5) is None


def test_j_to_target_column_is_empty_when_a_seed_missed(tmp_path: Path) -> None:
    from harness.records import RunRecord
    from harness.report import curve_notes
    from harness.table import build_table

    recs = [RunRecord.from_dict(json.loads(line)) for line in
            (ROOT / "results" / "reference" / "sst2" / "records.jsonl").read_text().splitlines()[1:2]]
    base = recs[0].model_dump(by_alias=True)
    reached = [{"step": k + 1, "examples_seen": 32 * (k + 1), "train_J_net": p["train_J"], "train_s": 1.0 * k,
                "eval_J": 0.1, **p} for k, p in enumerate(POINTS)]
    missed = [dict(p, val_accuracy=min(p["val_accuracy"], 0.6)) for p in reached]
    curve = {"target_accuracy": 0.9, "validation": {"n": 10}, "eval_windows": []}
    # two seeds, two models (each its own identity, as a trained model has under each seed)
    two = [RunRecord.from_dict({**base, "seed": 0, "run_key": "a", "model_identity": "a",
                                "curve": {**curve, "points": reached}}),
           RunRecord.from_dict({**base, "seed": 1, "run_key": "b", "model_identity": "b",
                                "curve": {**curve, "points": reached}})]
    row = build_table(two).iloc[0]
    assert row["J_to_target"] == 4.0 and row["J_to_target_seeds_reached"] == 2
    one_missed = [two[0], RunRecord.from_dict({**base, "seed": 1, "run_key": "b", "model_identity": "b",
                                               "curve": {**curve, "points": missed}})]
    table = build_table(one_missed)
    assert math.isnan(table.iloc[0]["J_to_target"]) and table.iloc[0]["J_to_target_seeds_reached"] == 1
    assert any("reached 0.9 in only 1 of 2 seed(s)" in n for n in curve_notes(one_missed, table))
    plain = [RunRecord.from_dict({**base, "curve": None})]
    assert build_table(plain).iloc[0]["J_to_target_seeds_reached"] is None  # no curve: no value, no note
    assert not [n for n in curve_notes(plain, build_table(plain)) if "J to target" in n]


# -- sweeps -----------------------------------------------------------------------------
def sweep_suite(folder: Path, **sweep) -> Path:
    raw = yaml.safe_load((ROOT / "benchmarks" / "digits.yaml").read_text())
    raw["models"] = {"cnn": raw["models"]["cnn"]}
    raw["variants"] = [v for v in raw["variants"] if v["id"] == "cnn.int8"]
    raw["train"]["evals_per_epoch"] = 2
    raw["sweep"] = sweep or {"model": "cnn", "grid": {"lr": [0.001, 0.004], "batch_size": [32, 64]}}
    path = folder / "digits_sweep.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def load(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def trial_energy(rec: dict) -> float:
    windows = [rec["train"]["window"], *rec["train"]["extra_windows"].values()]
    return sum(w["energy_j"] for w in windows) + sum(w["energy_j"] for w in rec["curve"]["eval_windows"])


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("sweep")
    suite, out, cache = sweep_suite(folder), folder / "run", folder / "cache"
    proc = run_cli("run", str(suite), "--quick", "--out", str(out), "--cache-dir", str(cache))
    assert proc.returncode == 0, proc.stderr
    return suite, out, cache


def test_a_2x2_grid_records_every_trial_and_selects_on_validation(sweep_run) -> None:
    _, out, _ = sweep_run
    recs = load(out)
    trials = [r for r in recs if r["status"] == "trial"]
    assert sorted(r["variant_id"] for r in trials) == ["cnn~t1", "cnn~t2", "cnn~t3", "cnn~t4"]
    assert {(r["params"]["lr"], r["params"]["batch_size"]) for r in trials} == {
        (0.001, 32), (0.001, 64), (0.004, 32), (0.004, 64)}
    for t in trials:  # trained and validated; never scored on the eval split nor measured
        assert t["eval"] is None and t["inference"] is None and t["train"]["window"]["energy_j"] > 0
        assert t["curve"]["points"][-1]["val_accuracy"] > 0
    base = next(r for r in recs if r["variant_id"] == "cnn")
    val = {t["variant_id"]: t["curve"]["points"][-1]["val_accuracy"] for t in trials}
    best = max(val, key=val.get)
    sweep = base["sweep"]
    assert sweep["selected"] == best and sweep["select_on"] == "validation"
    chosen = next(t for t in trials if t["variant_id"] == best)
    assert (base["train"]["lr"], base["train"]["batch_size"]) == (chosen["params"]["lr"], chosen["params"]["batch_size"])
    assert base["train"]["window"] == chosen["train"]["window"]  # the same training: not done twice
    assert base["curve"] == chosen["curve"]
    # tuning J is the energy of every trial: training and validation passes
    assert sweep["tuning_J"] == pytest.approx(sum(trial_energy(t) for t in trials), rel=1e-12)
    seeds = len({t["seed"] for t in trials})
    assert sweep["tuning_J_per_seed"] == pytest.approx(sweep["tuning_J"] / seeds)
    table = pd.read_csv(out / "table.csv").set_index("variant_id")
    assert table.loc["cnn", "tuning_J"] == pytest.approx(sweep["tuning_J_per_seed"])
    # the variant pays for the search that produced its parent, each joule once
    assert table.loc["cnn", "lineage_train_J"] == pytest.approx(sweep["tuning_J"])
    assert table.loc["cnn.int8", "lineage_train_J"] == pytest.approx(sweep["tuning_J"] + table.loc["cnn.int8", "train_J"])
    assert math.isnan(table.loc["cnn.int8", "tuning_J"])
    sweeps = pd.read_csv(out / "sweeps.csv").iloc[0]
    assert sweeps["selected"] == best and sweeps["configurations"] == 4 and sweeps["trial_runs"] == 4
    assert sweeps["val_accuracy_max"] == pytest.approx(val[best]) and sweeps["val_accuracy_min"] == pytest.approx(min(val.values()))
    assert sweeps["selected_eval_accuracy"] == pytest.approx(table.loc["cnn", "accuracy"])
    assert sweeps["tuning_to_train_ratio"] == pytest.approx(sweep["tuning_J"] / table.loc["cnn", "train_J"])
    assert len(pd.read_csv(out / "trials.csv")) == 4
    assert (out / "training_curves.png").stat().st_size > 10_000
    md = (out / "table.md").read_text()
    assert "Hyperparameter sweeps" in md and "tuning J: every trial" in md


def test_tuning_j_is_per_seed_like_train_j(sweep_run) -> None:
    """With S seeds the search ran every configuration S times; the row's train J is a
    mean per seed, so tuning J (and the lineage built on it) is per seed too: the total
    divided by S. A schema-6 record (total only) is upgraded the same way on read."""
    from harness.records import RunRecord
    from harness.table import build_table

    _, out, _ = sweep_run
    recs = load(out)
    base = next(r for r in recs if r["variant_id"] == "cnn")
    total = base["sweep"]["tuning_J"]
    two = []
    for r in recs:  # the same run as if it had two seeds: every record and trial twice
        if r["status"] == "trial":
            continue
        for seed in (0, 1):
            c = json.loads(json.dumps(r))
            c.update(seed=seed, run_key=f"{c['variant_id']}@seed{seed}", schema=6)
            if c.get("model_identity"):  # another seed trains another model
                c["model_identity"] = f"{c['model_identity']}-seed{seed}"
            if c["variant_id"] == "cnn":
                trials = c["sweep"]["trials"]
                c["sweep"] = {k: v for k, v in c["sweep"].items() if k != "tuning_J_per_seed"}
                c["sweep"]["trials"] = trials + [{**t, "seed": 1} for t in trials]
                c["sweep"]["tuning_J"] = 2 * total
            two.append(RunRecord.from_dict(c))
    table = build_table(two).set_index("variant_id")
    assert table.loc["cnn", "tuning_J"] == pytest.approx(total)  # 2 x total / 2 seeds
    assert table.loc["cnn", "seeds"] == 2


def test_a_run_without_a_sweep_has_no_trials_and_no_tuning_j(tmp_path: Path) -> None:
    from harness.plan import expand

    s = suite_mod.load(ROOT / "benchmarks" / "digits.yaml", "quick")
    assert s.sweep is None and not [p for p in expand(s) if p.trial is not None]
    swept = suite_mod.load(sweep_suite(tmp_path), "quick")
    plan = expand(swept)
    assert [p.variant_id for p in plan[:4]] == ["cnn~t1", "cnn~t2", "cnn~t3", "cnn~t4"]  # trials before the baseline


def test_a_repeated_sweep_comes_from_the_cache_and_shards_split_trials(sweep_run, tmp_path: Path) -> None:
    suite, out, cache = sweep_run
    again = tmp_path / "again"
    # runs whose every model comes from the cache: in this process (time; nothing trains)
    proc = cli("run", str(suite), "--quick", "--out", str(again), "--cache-dir", str(cache), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    first, second = load(out), load(again)
    for a, b in zip([r for r in first if r["status"] == "trial"], [r for r in second if r["status"] == "trial"]):
        assert b["cached"] is not None and b["train"]["window"] == a["train"]["window"]  # charged as measured then
    assert next(r for r in second if r["variant_id"] == "cnn")["sweep"]["tuning_J"] == pytest.approx(
        next(r for r in first if r["variant_id"] == "cnn")["sweep"]["tuning_J"])
    # --shard splits the trials like any run; a shard obtains the trials it lacks for the selection
    dirs = []
    for k in (1, 2):
        d = tmp_path / f"shard{k}"
        proc = cli("run", str(suite), "--quick", "--shard", f"{k}/2", "--out", str(d), "--cache-dir", str(cache),
                   "--no-plots")
        assert proc.returncode == 0, proc.stderr
        dirs.append(d)
    shard_trials = [{r["variant_id"] for r in load(d) if r["status"] == "trial"} for d in dirs]
    assert shard_trials == [{"cnn~t1", "cnn~t3"}, {"cnn~t2", "cnn~t4"}]
    merged = tmp_path / "merged"
    proc = cli("merge", *map(str, dirs), "--out", str(merged))
    assert proc.returncode == 0, proc.stderr
    recs = load(merged)
    assert len([r for r in recs if r["status"] == "trial"]) == 4
    base = next(r for r in recs if r["variant_id"] == "cnn")
    assert base["sweep"]["selected"] == next(r for r in first if r["variant_id"] == "cnn")["sweep"]["selected"]
    assert base["sweep"]["tuning_J"] == pytest.approx(sum(trial_energy(r) for r in recs if r["status"] == "trial"))


# -- the appendix -----------------------------------------------------------------------
def test_the_appendix_renders_and_its_figures_equal_the_table(sweep_run) -> None:
    from harness.render import creation_text, fmt, mark

    _, out, _ = sweep_run
    proc = cli("report", str(out), "--appendix")
    assert proc.returncode == 0, proc.stderr
    md, tex = (out / "appendix.md").read_text(), (out / "appendix.tex").read_text()
    table = pd.read_csv(out / "table.csv").set_index("variant_id")
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in md.splitlines()
            if line.startswith("| digits:")}
    assert set(rows) == {"digits:cnn", "digits:cnn.int8"}
    for vid, cells in rows.items():
        r = table.loc[vid.split(":")[1]]
        assert cells[4] == fmt(r["train_s"]) and cells[5] == creation_text(r, "train_J")  # a bound prints as one
        assert cells[6] == fmt(r["tuning_J"]) and cells[8] == mark(r, "J_per_inference") + fmt(1e3 * r["J_per_inference"])
        assert cells[9] == creation_text(r, "train_gCO2e")  # a lineage holding a bound is one
    assert creation_text(table.loc["cnn.int8"], "train_gCO2e").startswith("≤ ")
    assert rows["digits:cnn"][7].startswith(fmt(table.loc["cnn", "J_to_target"]))
    env = json.loads((out / "environment.json").read_text())
    for fact in ("ESTIMATED, not measured", env["cpu_model"], env["torch"], "Idle power", "Seeds.** 0",
                 "Hyperparameter search (cnn)", "g/kWh"):
        assert fact in md, fact
    assert re.search(r"`joulebench run \S+digits_sweep.yaml --quick --out \S+run --cache-dir \S+`", md)
    assert "\\begin{tabular}" in tex and "ESTIMATED" in tex and "task digits" in tex and "cnn.int8" in tex
    # several run dirs have no single environment: refused in one line
    proc = cli("report", str(out), str(out), "--appendix")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "single run directory" in proc.stderr


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("sweep, train, message", [
    ({"model": "cnn", "grid": {}}, {}, "grid is empty"),
    ({"model": "cnn", "grid": {"lr": []}}, {}, "non-empty list"),
    ({"model": "cnn", "grid": {"momentum": [0.9]}}, {}, "unknown hyperparameter 'momentum'"),
    ({"model": "cnn", "grid": {"lr": [0.001]}, "select_on": "eval"}, {}, "tunes on it"),
    ({"model": "resnet", "grid": {"lr": [0.001]}}, {}, "names model 'resnet'"),
    ({"model": "cnn", "grid": {"lr": [-1.0]}}, {}, "lr > 0"),
    ({"model": "cnn", "random": {"n": 0, "lr": {"log_uniform": [1e-4, 1e-2]}}}, {}, "positive integer"),
    ({"model": "cnn", "random": {"n": 2, "batch_size": {"uniform": [8, 64]}}}, {}, "choice"),
    (None, {"target_accuracy": 0.0}, r"target_accuracy must be in \(0, 1\]"),
    (None, {"target_accuracy": 1.5}, r"target_accuracy must be in \(0, 1\]"),
    (None, {"eval_every": -1}, "eval_every"),
])
def test_bad_sweeps_and_targets_are_one_line_errors(tmp_path: Path, sweep, train, message) -> None:
    raw = yaml.safe_load((ROOT / "benchmarks" / "digits.yaml").read_text())
    if sweep is not None:
        raw["sweep"] = sweep
    raw["train"].update(train)
    with pytest.raises(UserError, match=message):
        suite_mod.parse(raw, "s.yaml")


def test_select_on_eval_is_refused_by_the_cli_before_anything_is_written(tmp_path: Path) -> None:
    path = sweep_suite(tmp_path, model="cnn", grid={"lr": [0.001]}, select_on="eval")
    proc = cli("run", str(path), "--quick", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "eval split" in proc.stderr and not (tmp_path / "out").exists()


def test_random_search_is_seeded_and_in_range() -> None:
    raw = yaml.safe_load((ROOT / "benchmarks" / "digits.yaml").read_text())
    raw["sweep"] = {"model": "cnn", "random": {"n": 5, "seed": 7, "lr": {"log_uniform": [1e-4, 1e-2]},
                                              "batch_size": {"choice": [16, 64]}}}
    a, b = suite_mod.parse(raw, "s"), suite_mod.parse(raw, "s")
    assert a.sweep.trials == b.sweep.trials and len(a.sweep.trials) == 5
    assert all(1e-4 <= t["lr"] <= 1e-2 and t["batch_size"] in (16, 64) for t in a.sweep.trials)
    assert a.validation is not None  # a sweep needs the carved split even without curves


@pytest.mark.parametrize("kept", [2, 4])
def test_a_sweep_killed_among_or_after_its_trials_resumes_to_the_same_selection(sweep_run, tmp_path: Path,
                                                                                 kept: int) -> None:
    """Killed after ``kept`` trial lines: resume records only what is missing, takes the
    recorded trials' results as they were (nothing retrained for the selection), and
    chooses and charges the same."""
    import shutil

    suite, out, cache = sweep_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    (run / "records.jsonl").write_text("".join(lines[:kept]) + lines[kept][:40])  # a torn line too
    proc = run_cli("run", str(suite), "--quick", "--resume", str(run), "--cache-dir", str(cache), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert "obtaining trial" not in proc.stderr
    recs = load(run)
    assert [r["variant_id"] for r in recs if r["status"] == "trial"] == ["cnn~t1", "cnn~t2", "cnn~t3", "cnn~t4"]
    before = next(r for r in load(out) if r["variant_id"] == "cnn")["sweep"]
    after = next(r for r in recs if r["variant_id"] == "cnn")["sweep"]
    assert after["selected"] == before["selected"] and after["tuning_J"] == pytest.approx(before["tuning_J"])
