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
import uuid
from pathlib import Path

import numpy as np
import pytest

from harness.compare import Thresholds, compare

VARIANTS = ["cnn", "mlp", "mlp.distill", "cnn.prune50", "cnn.prune90", "cnn.channels50", "cnn.int8", "cnn.bf16"]


def plant_run(src: Path, dst: Path, energy: dict[str, float], accuracy=None) -> Path:
    """A copy of run ``src`` whose windows of each variant are scaled by ``energy[v]``;
    ``accuracy(record)`` may change its predictions."""
    dst.mkdir(parents=True)
    env = json.loads((src / "environment.json").read_text())
    env["run_id"] = uuid.uuid4().hex  # a repeated run is a run of its own
    (dst / "environment.json").write_text(json.dumps(env))
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
         jitter: float = 0.03, k: int = 5, variants: list[str] = VARIANTS, new_speed: float = 1.0,
         rekeyed: tuple[str, ...] = ()) -> tuple[list[Path], list[Path]]:
    """k BASE and k NEW runs; every run its own drift draw, every variant its own jitter.
    ``new_speed`` scales every NEW window (a faster or slower machine state); ``rekeyed``
    variants carry another artifact key in NEW (their model changed)."""
    rng = np.random.default_rng(seed)

    def rekey(rec: dict) -> None:
        if rec["variant_id"] in rekeyed:
            rec["artifact_key"] = "changed-" + str(rec["artifact_key"])

    def side(name: str, change: dict[str, float], speed: float, edit) -> list[Path]:
        dirs = []
        for i in range(k):
            d = speed * math.exp(rng.normal(0, drift))
            factors = {v: d * math.exp(rng.normal(0, jitter)) * change.get(v, 1.0) for v in variants}
            dirs.append(plant_run(src, root / f"{name}{seed}-{i}", factors, edit))
        return dirs

    return side("base", {}, 1.0, None), side("new", planted or {}, new_speed, rekey if rekeyed else None)


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
    base, new = runs(digits_run, tmp_path, 1, drift=0.02, jitter=0.02, planted=cheaper, rekeyed=tuple(VARIANTS[:5]))
    lines, code = compare(base, new)
    assert code == 0 and not flagged(lines), "\n".join(lines)
    assert any(line.startswith("withheld: ") and "changed in NEW" in line for line in lines), "\n".join(lines)


@pytest.mark.parametrize("seed", range(3))
def test_a_regression_on_a_faster_machine_state_is_not_withheld(digits_run: Path, tmp_path: Path,
                                                                seed: int) -> None:
    """NEW ran on a state 16% faster for every variant (this VM drifts so) and one
    variant got 30% dearer: the others' reference fell, but they ran the same models
    and config on both sides, so the fall is drift and the rise is reported."""
    base, new = runs(digits_run, tmp_path, seed, drift=0.05, planted={"cnn.prune50": 1.3}, new_speed=0.84)
    lines, code = compare(base, new)
    got = flagged(lines)
    assert code == 1 and list(got) == ["cnn.prune50"], "\n".join(lines)
    assert any(line.startswith("drift: cnn.prune50") for line in lines), "\n".join(lines)
    # the same runs, but the reference's variants changed models in NEW: no evidence, withheld
    base, new = runs(digits_run, tmp_path / "rekeyed", seed, drift=0.05, planted={"cnn.prune50": 1.3},
                     new_speed=0.84, rekeyed=tuple(v for v in VARIANTS if v != "cnn.prune50"))
    lines, code = compare(base, new)
    assert "cnn.prune50" not in flagged(lines) or "relative" not in flagged(lines)["cnn.prune50"], "\n".join(lines)
    assert any(line.startswith("withheld: cnn.prune50") for line in lines), "\n".join(lines)


THREE = ["cnn", "mlp", "cnn.prune50"]


@pytest.mark.parametrize("seed", range(3))
def test_three_variants_one_dearer_is_found_by_the_relative_test(digits_run: Path, tmp_path: Path,
                                                                 seed: int) -> None:
    """With three variants one mover pulled both others' references: all three were
    marked moved and no relative test ran. Now the mover alone is left out."""
    base, new = runs(digits_run, tmp_path, seed, drift=0.15, planted={"cnn.prune50": 1.3}, variants=THREE)
    lines, code = compare(base, new)
    got = flagged(lines)
    assert code == 1 and list(got) == ["cnn.prune50"] and "relative" in got["cnn.prune50"], "\n".join(lines)
    moved = next(line for line in lines if "left out of the other variants' reference" in line)
    assert moved.split(": ")[1] == "cnn.prune50"
    base, new = runs(digits_run, tmp_path / "aa", seed, drift=0.15, variants=THREE)  # absence
    lines, code = compare(base, new)
    assert code == 0 and not flagged(lines), "\n".join(lines)


def test_two_variants_one_moved_says_the_relative_test_cannot_run(digits_run: Path, tmp_path: Path) -> None:
    base, new = runs(digits_run, tmp_path, 0, drift=0.02, jitter=0.02, planted={"cnn": 1.5}, variants=["cnn", "mlp"])
    lines, _ = compare(base, new)
    assert any(line.startswith("note: mlp: no relative test: no unmoved variant") for line in lines), "\n".join(lines)


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


def _edit_side(run: Path, env_edit=None, rec_edit=None) -> Path:
    env = json.loads((run / "environment.json").read_text())
    if env_edit:
        env_edit(env)
    (run / "environment.json").write_text(json.dumps(env))
    if rec_edit:
        lines = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
        for rec in lines:
            rec_edit(rec)
        (run / "records.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return run


MACHINE = {"vendor": "AuthenticAMD", "family": "25", "model": "17", "stepping": "1", "model_name": "AMD EPYC",
           "isa": ["avx", "avx2", "avx512_bf16", "avx512f"], "torch_cpu_capability": "AVX512", "logical_cpus": 2,
           "memory_gib": 24}


def test_runs_measured_differently_are_refused_unless_allowed(digits_run: Path, tmp_path: Path) -> None:
    """Another energy method, another machine (the same host name and CPU name, other ISA
    flags: the AVX-512 and the AVX2 VM), another resolved config: one line each, showing
    what differs; --allow compares anyway and says so. The same on both sides compares."""
    from harness.errors import UserError

    same = {v: 1.0 for v in VARIANTS}

    def with_machine(machine: dict):
        def env(e: dict) -> None:
            e["machine"] = machine

        def rec(r: dict) -> None:
            r["fingerprint"]["machine"] = machine
        return env, rec

    avx512 = _edit_side(plant_run(digits_run, tmp_path / "avx512", same), *with_machine(MACHINE))
    avx2 = _edit_side(plant_run(digits_run, tmp_path / "avx2", same), *with_machine(
        {**MACHINE, "isa": ["avx", "avx2"], "torch_cpu_capability": "AVX2"}))
    with pytest.raises(UserError, match=r"different machines: isa .* torch_cpu_capability 'AVX512' vs 'AVX2'"):
        compare([avx512], [avx2])
    lines, code = compare([avx512], [avx2], allow=frozenset({"machine"}))
    assert any("compared although BASE and NEW ran on different machines" in line for line in lines)
    twin = _edit_side(plant_run(digits_run, tmp_path / "twin", same), *with_machine(MACHINE))
    lines, code = compare([avx512], [twin])
    assert code == 0 and not any("compared although" in line for line in lines)

    def rapl(rec: dict) -> None:
        for w in (rec.get("inference") or {}).get("windows", []):
            w["method"] = "planted"
            for c in w["components"]:
                c["method"] = "planted"
    other_meter = _edit_side(plant_run(digits_run, tmp_path / "rapl", same), rec_edit=rapl)
    with pytest.raises(UserError, match=r"measured by other methods: meter \S+ vs planted"):
        compare([plant_run(digits_run, tmp_path / "est", same)], [other_meter])

    full = _edit_side(plant_run(digits_run, tmp_path / "full", same),
                      rec_edit=lambda r: r.update(config_hash="0123456789abcdef"))
    with pytest.raises(UserError, match="other resolved configs"):
        compare([plant_run(digits_run, tmp_path / "quick", same)], [full])


def test_a_change_of_measuring_code_is_stated_not_blamed_on_the_unchanged(digits_run: Path, tmp_path: Path) -> None:
    """NEW at another commit whose measuring code made five variants 20% cheaper (same
    models, same config): to a reference of those five, the other three look dearer. The
    code changed, so nothing shows the reference's fall was the machine's: withheld and
    said, not "ENERGY REGRESSION ... the fall is the machine's drift"."""
    rng = np.random.default_rng(5)
    cheaper = {v: 0.8 for v in VARIANTS[:5]}

    new_code, same_code = "0123456789abcdef", "fedcba9876543210"

    def side(name: str, change: dict, code: str) -> list[Path]:
        dirs = [plant_run(digits_run, tmp_path / f"{name}{i}", {v: math.exp(rng.normal(0, 0.02)) * change.get(v, 1.0)
                                                               for v in VARIANTS}) for i in range(5)]
        for d in dirs:  # every record of the run carries the code's digest, as a run writes it
            recs = [json.loads(x) for x in (d / "records.jsonl").read_text().splitlines()]
            for r in recs:
                r["fingerprint"] = {**r.get("fingerprint", {}), "measure_code": code}
            (d / "records.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
        return dirs

    base = side("base", {}, same_code)
    lines, code = compare(base, side("new", cheaper, new_code))
    assert code == 0 and not flagged(lines), "\n".join(lines)
    assert any(line.startswith("withheld: ") and "measuring code" in line for line in lines), "\n".join(lines)
    # absence: the same fall with the same measuring code is attributed to the machine
    lines, code = compare(base, side("again", cheaper, same_code))
    assert any(line.startswith("drift: ") for line in lines), "\n".join(lines)
