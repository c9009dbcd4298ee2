"""Repeated runs are not extra seeds: one record per trained model for accuracy, runs as
the unit for J/inference pooled over runs, a run passed twice counted once, a repeated
line noticed. On the committed SST-2 reference (one seed)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from harness.comparable import load_run_dirs
from harness.table import build_table

REF = Path(__file__).resolve().parent.parent / "results" / "reference" / "sst2"


def table_of(*dirs: Path):
    recs, warnings = load_run_dirs(list(dirs))
    return build_table(recs).set_index("variant_id"), warnings


@pytest.fixture(scope="module")
def alone():
    return table_of(REF)[0]


def copy(dst: Path, run_id: str | None = None) -> Path:
    shutil.copytree(REF, dst, ignore=shutil.ignore_patterns("*.png", "table.*", "appendix.*"))
    if run_id:
        env = json.loads((dst / "environment.json").read_text())
        env["run_id"] = run_id
        (dst / "environment.json").write_text(json.dumps(env))
    return dst


def same_statistics(a, b) -> None:
    for col in ("seeds", "accuracy", "accuracy_ci95_lo", "accuracy_ci95_hi", "accuracy_ci_method", "delta_p",
                "delta_test"):
        assert a[col].equals(b[col]), col


def test_the_same_run_twice_is_one_run(alone, tmp_path: Path) -> None:
    twice, warnings = table_of(REF, REF)
    same_statistics(alone, twice)
    assert twice.loc["bert_tiny.int8", "delta_test"] == "McNemar"  # not a seeds x examples bootstrap
    assert twice["J_per_inference"].equals(alone["J_per_inference"])
    assert twice["J_per_inference_within_run_ci95_lo"].equals(alone["J_per_inference_within_run_ci95_lo"])
    assert any("is the same run as" in w for w in warnings)
    copied, warnings = table_of(REF, copy(tmp_path / "copy"))  # a copy is the same run too
    same_statistics(alone, copied)
    assert any("is the same run as" in w for w in warnings)


def test_two_runs_of_the_same_models_pool_energy_across_runs(alone, tmp_path: Path) -> None:
    other = copy(tmp_path / "other", run_id="f" * 32)  # a repeated run: same models, its own run
    both, warnings = table_of(REF, other)
    same_statistics(alone, both)  # seeds stay 1: the same trained models answered
    assert not any("same run" in w for w in warnings)
    assert (both["J_per_inference_runs"] == 2).all() and (alone["J_per_inference_runs"] == 1).all()
    # within-run intervals would claim one run; across 2 runs there is no 95% interval
    assert both["J_per_inference_within_run_ci95_lo"].isna().all()
    assert both["J_per_inference_across_runs_ci95_lo"].isna().all()
    assert alone["J_per_inference_across_runs_ci95_lo"].isna().all()
    assert alone["J_per_inference_within_run_ci95_lo"].notna().all()
    for vid in alone.index:
        assert math.isclose(both.loc[vid, "J_per_inference"], alone.loc[vid, "J_per_inference"], rel_tol=1e-12)


def test_a_repeated_line_is_not_another_seed(alone, tmp_path: Path) -> None:
    run = copy(tmp_path / "run")
    path = run / "records.jsonl"
    lines = path.read_text().splitlines()
    int8 = next(i for i, line in enumerate(lines) if json.loads(line)["variant_id"] == "bert_tiny.int8")
    path.write_text("\n".join(lines + [lines[int8]]) + "\n")
    repeated, warnings = table_of(run)
    same_statistics(alone, repeated)
    assert any(f"line {len(lines) + 1} repeats bert_tiny.int8@seed0" in w for w in warnings)
