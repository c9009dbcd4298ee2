"""Synthetic nights for the history tests: copies of a committed reference run with a
new identity, date and commit, and their J/inference (and accuracy) changed as planted.

Only the records are changed, the way a real run would differ: every inference
window's joules (gross, net and each component) scale together, and an accuracy drop
turns right answers into wrong ones on the eval examples."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from tests.conftest import ROOT

REFERENCE = ROOT / "results" / "reference" / "digits"
VARIANTS = ("cnn", "mlp")  # a small night: two series per machine and meter
WORK_BASE = 66_000.0  # instructions per inference of a planted work block


def _scale(window: dict, factor: float) -> None:
    window["energy_j"] *= factor
    window["net_energy_j"] *= factor
    for c in window["components"]:
        c["energy_j"] *= factor


def _drop_accuracy(ev: dict, fraction: float) -> None:
    """Make ``fraction`` of the eval examples that were right wrong (the first ones)."""
    flips = int(round(fraction * ev["n"]))
    for i, (p, y) in enumerate(zip(ev["predictions"], ev["labels"])):
        if flips == 0:
            break
        if p == y:
            ev["predictions"][i] = (y + 1) % 10
            flips -= 1
    ev["correct"] = sum(p == y for p, y in zip(ev["predictions"], ev["labels"]))
    ev["accuracy"] = ev["correct"] / ev["n"]


def make_night(out: Path, night: int, energy: dict[str, float] | None = None, acc_drop: dict[str, float] | None = None,
               host: str = "vm", method: str | None = None, source: Path = REFERENCE,
               variants: tuple[str, ...] = VARIANTS, seeds: tuple[int, ...] | None = None,
               work: dict[str, float] | None = None, measure_code: str = "c0de" * 4) -> Path:
    """Night ``night`` as a run dir under ``out``: J/inference of variant v times
    ``energy[v]``, accuracy of v lower by ``acc_drop[v]``, measured on ``host`` by ``method``
    (``seeds``: only these seeds' records; one seed makes an import ~5x faster, since the
    accuracy interval of several seeds is a bootstrap). With ``work`` (even empty), every
    inference block carries a counted work block: ``WORK_BASE`` instructions per
    inference times ``work[v]``, with the 0.05% jitter a real count shows between
    processes. Every night runs another commit with the same ``measure_code`` (the
    measuring code's digest), as a nightly of a project's own models does."""
    run = out / f"{host}-{method or 'estimate'}-night{night:02d}"
    run.mkdir(parents=True)
    env = json.loads((source / "environment.json").read_text())
    start = datetime.fromisoformat(env["started_at"]) if env.get("started_at") else datetime(2026, 11, 23, 2, 0,
                                                                                              tzinfo=timezone.utc)
    when = (start + timedelta(days=1 + night)).isoformat(timespec="seconds")  # the nights after the reference
    commit = f"{night:02d}" + "c0ffee" * 6 + "00"
    env.update(run_id=f"{host}-{method}-night-{night}", started_at=when, git_commit=commit, host=host)
    if method:
        env["meter"] = method
    (run / "environment.json").write_text(json.dumps(env))
    lines = []
    for line in (source / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["variant_id"] not in variants or rec["status"] != "ok" or (seeds and rec["seed"] not in seeds):
            continue
        rec["fingerprint"].update(git_commit=commit, host=host, measure_code=measure_code)
        rec["started_at"] = rec["finished_at"] = when
        factor = (energy or {}).get(rec["variant_id"], 1.0)
        for inf in [rec["inference"], *rec["inference_sweep"]]:
            for w in inf["windows"]:
                _scale(w, factor)
                w["host"] = host
                if method:
                    w["method"] = method
                    for c in w["components"]:
                        c["method"] = method
        if work is not None:
            jitter = np.random.default_rng([night, len(rec["variant_id"]), rec["seed"]])
            for inf in [rec["inference"], *rec["inference_sweep"]]:
                n = inf["inferences_per_window"]
                per = WORK_BASE * work.get(rec["variant_id"], 1.0) * (1 + 0.0005 * jitter.standard_normal())
                inf["work"] = {"metric": "instructions", "instructions": int(per * n), "passes": 1, "inferences": n,
                               "tool": "valgrind-3.19.0 callgrind", "threads": 1, "scope": "host CPU, one thread"}
        if (acc_drop or {}).get(rec["variant_id"]):
            _drop_accuracy(rec["eval"], acc_drop[rec["variant_id"]])
        lines.append(json.dumps(rec, sort_keys=True))
    (run / "records.jsonl").write_text("\n".join(lines) + "\n")
    return run


STEP_NIGHT = 18  # cnn's J/inference rises 20% from this night on
OUTLIER_NIGHT = 8  # cnn's J/inference is 50% high on this night only
ACC_STEP_NIGHT = 22  # mlp's accuracy drops 3 points from this night on
N_NIGHTS = 30


def planted(out: Path, n: int = N_NIGHTS, noise: float = 0.02, seed: int = 0, **kwargs) -> list[Path]:
    """``n`` nights with the planted step, outlier and accuracy drop, and 2% night-to-night
    noise on every variant's J/inference."""
    rng = np.random.default_rng(seed)
    runs = []
    for night in range(n):
        energy = {v: 1 + noise * rng.standard_normal() for v in VARIANTS}
        if night >= STEP_NIGHT:
            energy["cnn"] *= 1.2
        if night == OUTLIER_NIGHT:
            energy["cnn"] *= 1.5
        acc = {"mlp": 0.03} if night >= ACC_STEP_NIGHT else {}
        runs.append(make_night(out, night, energy, acc, **kwargs))
    return runs
