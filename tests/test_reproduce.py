"""reproduce: the comparison of a published run with its rerun (on copies of the digits
reference, so each verdict's right answer is known), and the refusals that come before
anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import reproduction, rundir
from tests.conftest import ROOT, run_cli

DIGITS = ROOT / "results" / "reference" / "digits"


def copy_of(tmp: Path, name: str, edit=None, env_edit=None) -> Path:
    """The digits reference's records and environment in ``tmp/name``, edited."""
    out = tmp / name
    out.mkdir()
    lines = []
    for line in (DIGITS / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if edit:
            edit(rec)
        lines.append(json.dumps(rec))
    (out / "records.jsonl").write_text("\n".join(lines) + "\n")
    env = json.loads((DIGITS / "environment.json").read_text())
    if env_edit:
        env_edit(env)
    (out / "environment.json").write_text(json.dumps(env))
    return out


def verdicts(published: Path, reproduced: Path) -> list[reproduction.Check]:
    checks, _ = reproduction.compare(rundir.read(published), rundir.read(reproduced))
    return checks


def test_a_run_reproduces_itself(tmp_path: Path) -> None:
    checks = verdicts(DIGITS, copy_of(tmp_path, "same"))
    assert checks and not [c for c in checks if c.verdict == reproduction.UNEXPECTED]
    accuracy = [c for c in checks if c.figure == "accuracy"]
    assert len(accuracy) == 33 and all(c.verdict == reproduction.IDENTICAL for c in accuracy)  # 11 rows x 3 seeds
    assert all(c.verdict == reproduction.IDENTICAL for c in checks if c.figure in ("flops_per_inference", "params"))


def test_a_planted_wrong_accuracy_is_named(tmp_path: Path) -> None:
    """The published copy says cnn.prune50 seed 1 got 40 more answers wrong than it does."""
    def plant(rec: dict) -> None:
        if rec["variant_id"] == "cnn.prune50" and rec["seed"] == 1 and rec["status"] == "ok":
            ev = rec["eval"]
            flipped = [i for i, (p, y) in enumerate(zip(ev["predictions"], ev["labels"])) if p == y][:40]
            for i in flipped:
                ev["predictions"][i] = (ev["labels"][i] + 1) % 10
            ev["correct"] -= len(flipped)
            ev["accuracy"] = ev["correct"] / ev["n"]

    checks = verdicts(copy_of(tmp_path, "planted", plant), DIGITS)
    bad = [c for c in checks if c.verdict == reproduction.UNEXPECTED]
    assert [(c.variant, c.seed, c.figure) for c in bad] == [("cnn.prune50", 1, "accuracy")]
    assert "40 of 450 predictions differ" in bad[0].here


def test_a_count_must_be_identical(tmp_path: Path) -> None:
    def plant(rec: dict) -> None:
        if rec["variant_id"] == "mlp" and rec["seed"] == 0 and rec["status"] == "ok":
            rec["flops"]["per_inference"] += 1

    bad = [c for c in verdicts(copy_of(tmp_path, "flops", plant), DIGITS) if c.verdict == reproduction.UNEXPECTED]
    assert [(c.variant, c.figure) for c in bad] == [("mlp", "flops_per_inference")]


def test_another_machine_is_expected_not_blamed(tmp_path: Path) -> None:
    def elsewhere(rec: dict) -> None:
        rec["fingerprint"]["host"] = "another-host"
        for w in (rec["inference"] or {}).get("windows", []):
            w["energy_j"] *= 3  # three times the energy: another machine may
            w["net_energy_j"] *= 3

    checks = verdicts(DIGITS, copy_of(tmp_path, "other", elsewhere, lambda env: env.update(host="another-host")))
    energy = [c for c in checks if c.figure.startswith("J_per_inference")]
    assert energy and all(c.verdict.startswith("differs as expected (another machine: another-host") for c in energy)
    # the same threefold energy on this machine is unexpected (beyond the estimate's stated +-50%)
    same = verdicts(DIGITS, copy_of(tmp_path, "dearer", lambda rec: [
        w.update(energy_j=w["energy_j"] * 3) for w in (rec["inference"] or {}).get("windows", [])]))
    assert [c for c in same if c.figure == "J_per_inference" and c.verdict == reproduction.UNEXPECTED]


@pytest.mark.parametrize("what", ["versions", "data", "resolved"])
def test_refusals_come_before_anything_is_written(tmp_path: Path, what: str) -> None:
    edits = {"versions": lambda env: env.update(torch="1.0.0"),
             "data": lambda env: env["data"].update(train_sha256="0" * 64),
             "resolved": lambda env: env["suite"].pop("resolved")}
    run = copy_of(tmp_path, "run", env_edit=edits[what])
    out = tmp_path / "out"
    proc = run_cli("reproduce", str(run), "--out", str(out), "--quick-subset")
    assert proc.returncode == 2 and not out.exists(), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert {"versions": "--allow versions", "data": "--allow data", "resolved": "no resolved suite"}[what] in proc.stderr


def test_the_appendix_points_to_the_command() -> None:
    assert "joulebench reproduce" in (ROOT / "results" / "reference" / "sst2" / "appendix.md").read_text()
