"""compare's verdicts on planted changes, over repeated runs with machine drift.

Each synthetic run is the real quick digits run with every window scaled by a drift
factor drawn for that run (independently on each side: the sides never mirror one
another) times an independent per-variant jitter, then the planted change. Five runs
per side, eight variants: the setting in which the old relative test (each variant
against the geometric mean of the others) flagged all seven innocent variants when one
got 50% cheaper.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.compare import Thresholds, compare

VARIANTS = ["cnn", "mlp", "mlp.distill", "cnn.prune50", "cnn.prune90", "cnn.channels50", "cnn.int8", "cnn.bf16"]


def plant_run(src: Path, dst: Path, energy: dict[str, float], accuracy=None) -> Path:
    """A copy of run ``src`` whose windows of each variant are scaled by ``energy[v]``;
    ``accuracy(record)`` may change its predictions."""
    dst.mkdir(parents=True)
    shutil.copy(src / "environment.json", dst)
    out = []
    for line in (src / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] == "ok" and rec["variant_id"] not in energy:  # eight variants: the runtime rows are left out
            continue
        if rec["status"] == "ok":
            for w in rec["inference"]["windows"]:
                w["energy_j"] *= energy[rec["variant_id"]]
                w["net_energy_j"] *= energy[rec["variant_id"]]
            if accuracy:
                accuracy(rec)
        out.append(json.dumps(rec))
    (dst / "records.jsonl").write_text("\n".join(out) + "\n")
    return dst


def runs(src: Path, root: Path, seed: int, drift: float, planted: dict[str, float] | None = None,
         jitter: float = 0.03, k: int = 5) -> tuple[list[Path], list[Path]]:
    """k BASE and k NEW runs; every run its own drift draw, every variant its own jitter."""
    rng = np.random.default_rng(seed)

    def side(name: str, change: dict[str, float]) -> list[Path]:
        dirs = []
        for i in range(k):
            d = math.exp(rng.normal(0, drift))
            factors = {v: d * math.exp(rng.normal(0, jitter)) * change.get(v, 1.0) for v in VARIANTS}
            dirs.append(plant_run(src, root / f"{name}{seed}-{i}", factors))
        return dirs

    return side("base", {}), side("new", planted or {})


def flagged(lines: list[str]) -> dict[str, str]:
    return {line.split()[0]: line.split("  ")[-1] for line in lines if "REGRESSION" in line}


SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
def test_aa_flags_nothing(digits_run: Path, tmp_path: Path, seed: int) -> None:
    base, new = runs(digits_run, tmp_path, seed, drift=0.15)
    lines, code = compare(base, new)
    assert code == 0 and not flagged(lines), "\n".join(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_one_variant_cheaper_flags_nothing(digits_run: Path, tmp_path: Path, seed: int) -> None:
    base, new = runs(digits_run, tmp_path, seed, drift=0.15, planted={"cnn.prune50": 0.5})
    lines, code = compare(base, new)
    assert code == 0 and not flagged(lines), "\n".join(lines)
    moved = next(line for line in lines if "left out of the other variants' reference" in line)
    assert "cnn.prune50" in moved.split(": ")[1].split(", ")


@pytest.mark.parametrize("seed", SEEDS)
def test_one_variant_dearer_flags_it_and_no_other(digits_run: Path, tmp_path: Path, seed: int) -> None:
    base, new = runs(digits_run, tmp_path, seed, drift=0.15, planted={"cnn.prune50": 1.3})
    lines, code = compare(base, new)
    assert code == 1, "\n".join(lines)
    got = flagged(lines)
    assert list(got) == ["cnn.prune50"] and "relative to the other variants" in got["cnn.prune50"], "\n".join(lines)


def test_all_variants_dearer_raw_flags_them_relative_silent(digits_run: Path, tmp_path: Path) -> None:
    """All 20% costlier on a quiet machine: the raw test flags every one (drift allows);
    the relative test cannot see a common change and stays silent."""
    base, new = runs(digits_run, tmp_path, 0, drift=0.02, jitter=0.02, planted={v: 1.2 for v in VARIANTS})
    lines, code = compare(base, new)
    got = flagged(lines)
    assert code == 1 and sorted(got) == sorted(VARIANTS), "\n".join(lines)
    assert all(v == "ENERGY REGRESSION" for v in got.values()), "\n".join(lines)


def test_majority_cheaper_does_not_blame_the_unchanged(digits_run: Path, tmp_path: Path) -> None:
    """Five of eight variants 30% cheaper: to a reference built from the others, the
    three unchanged ones look 40% dearer. The reference fell, so that is withheld."""
    cheaper = {v: 0.7 for v in VARIANTS[:5]}
    base, new = runs(digits_run, tmp_path, 1, drift=0.02, jitter=0.02, planted=cheaper)
    lines, code = compare(base, new)
    assert code == 0 and not flagged(lines), "\n".join(lines)
    assert any(line.startswith("withheld: ") for line in lines)


def test_accuracy_gate_is_holm_adjusted(digits_run: Path, tmp_path: Path) -> None:
    """One seed: McNemar per variant, Holm across the eight. A drop significant alone
    (p ~ 0.03) but not after Holm passes; a large drop fails."""
    def drop(vid: str, k: int):
        def change(rec: dict) -> None:
            if rec["variant_id"] != vid:
                return
            ev = rec["eval"]
            hits = [i for i, (p, y) in enumerate(zip(ev["predictions"], ev["labels"])) if p == y][:k]
            for i in hits:
                ev["predictions"][i] = (ev["labels"][i] + 1) % 10
            ev["correct"] -= len(hits)
            ev["accuracy"] = ev["correct"] / ev["n"]
        return change

    same = {v: 1.0 for v in VARIANTS}
    base = plant_run(digits_run, tmp_path / "base", same)
    small = plant_run(digits_run, tmp_path / "small", same, drop("cnn", 6))  # exact p = 2/64 = 0.031
    lines, code = compare([base], [small], Thresholds(acc_drop=0.005))
    row = next(line for line in lines if line.startswith("cnn "))
    assert code == 0 and "ok" in row and float(row.split()[4]) == pytest.approx(min(1, 8 * 2 / 64)), "\n".join(lines)
    big = plant_run(digits_run, tmp_path / "big", same, drop("cnn", 30))
    lines, code = compare([base], [big])
    got = flagged(lines)
    assert code == 1 and list(got) == ["cnn"] and got["cnn"] == "ACCURACY REGRESSION (McNemar)", "\n".join(lines)


def test_without_paired_examples_no_p_is_printed(digits_run: Path, tmp_path: Path) -> None:
    """Different seeds on the two sides: no paired test exists, so the CIs are compared
    and the p column says '-' (never a made-up 0 or 1)."""
    same = {v: 1.0 for v in VARIANTS}
    base = plant_run(digits_run, tmp_path / "base", same)
    other = plant_run(digits_run, tmp_path / "other", same, lambda rec: rec.update(seed=7, run_key="x@seed7"))
    lines, code = compare([base], [other])
    row = next(line for line in lines if line.startswith("cnn "))
    assert row.split()[4] == "-" and code == 0, "\n".join(lines)
    assert any("no p-value is printed because no test was run" in line for line in lines)


def test_windows_as_units_on_one_run_each(digits_run: Path, tmp_path: Path) -> None:
    """For a quiet machine: windows as units. A quick run's windows spread ~15% (they span
    the drift of the measurement phase), so plant a change no window overlap can hide."""
    same = {v: 1.0 for v in VARIANTS}
    base = plant_run(digits_run, tmp_path / "base", same)
    tripled = plant_run(digits_run, tmp_path / "tripled", {**same, "cnn": 3.0})
    lines, code = compare([base], [tripled], Thresholds(windows_as_units=True))
    assert code == 1 and list(flagged(lines)) == ["cnn"], "\n".join(lines)
    lines, code = compare([base], [plant_run(digits_run, tmp_path / "aa", same)], Thresholds(windows_as_units=True))
    assert code == 0 and not flagged(lines), "\n".join(lines)


def test_runs_on_different_devices_are_not_compared(digits_run: Path, tmp_path: Path) -> None:
    """A GPU run's J/inference against a CPU run's is no regression test: one line, refused;
    the same device on both sides is compared as usual (the absence of the planted thing)."""
    from harness.errors import UserError

    same = {v: 1.0 for v in VARIANTS}
    base = plant_run(digits_run, tmp_path / "base", same)
    gpu = plant_run(digits_run, tmp_path / "gpu", same, lambda rec: rec.update(
        device={"name": "cuda:0", "type": "cuda", "index": 0, "model": "Fake H100", "uuid": None,
                "capability": [9, 0], "requested": "cuda"}))
    with pytest.raises(UserError, match="BASE ran on cpu and NEW on cuda Fake H100"):
        compare([base], [gpu])
    lines, code = compare([base], [plant_run(digits_run, tmp_path / "cpu", same)])
    assert code == 0
