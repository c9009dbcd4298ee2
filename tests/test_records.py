"""The declared record type: the committed reference records (schema 2) are the golden
files; older schemas upgrade on read; a round trip keeps every field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import recordfile, records
from harness.records import RunRecord
from harness.table import build_table
from tests.conftest import ROOT

REFERENCE = ROOT / "results" / "reference"


@pytest.mark.parametrize("suite", ["digits", "sst2"])
def test_reference_records_load_and_rebuild_their_accuracies(suite: str) -> None:
    recs, warnings = recordfile.load(REFERENCE / suite / records.RECORDS)
    assert recs and not warnings
    assert all(r.schema_version == records.SCHEMA for r in recs)  # upgraded on read
    table = build_table(recs).set_index("variant_id")
    assert set(table.index) == {r.variant_id for r in recs if r.ok}
    for r in recs:
        if r.ok:  # the accuracy in the table is the one its predictions give
            assert sum(p == y for p, y in zip(r.eval.predictions, r.eval.labels)) == r.eval.correct


def test_upgrade_from_schema_1_and_round_trip() -> None:
    golden = Path(__file__).parent / "data" / "records_schema2.jsonl"  # written by schema 2: no hosts
    raw = json.loads(golden.read_text().splitlines()[1])
    v1 = {k: v for k, v in raw.items() if k not in ("run_config_hash", "fingerprint", "flops")}
    v1["schema"] = 1
    rec = RunRecord.from_dict(v1)
    assert rec.schema_version == records.SCHEMA and rec.fingerprint == {} and rec.run_config_hash is None
    assert rec.inference.windows[0].host == ""  # unknown, never invented
    again = RunRecord.from_dict(json.loads(rec.to_json()))
    assert again == rec
    raw["a_field_from_the_future"] = {"x": 1}
    assert json.loads(RunRecord.from_dict(raw).to_json())["a_field_from_the_future"] == {"x": 1}
    with pytest.raises(ValueError, match="schema 99"):
        RunRecord.from_dict({**raw, "schema": 99})


def test_a_record_missing_a_field_is_named_and_skipped(tmp_path: Path) -> None:
    lines = (REFERENCE / "digits" / records.RECORDS).read_text().splitlines()[:3]
    broken = json.loads(lines[1])
    del broken["eval"]["labels"]
    (tmp_path / records.RECORDS).write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")
    recs, warnings = recordfile.load(tmp_path / records.RECORDS)
    assert len(recs) == 2 and len(warnings) == 1
    assert "line 2 is not a valid record (eval.labels" in warnings[0]


def test_no_module_outside_compress_names_a_technique() -> None:
    """Techniques declare their traits; nobody else checks their names or params."""
    from harness.compress import TECHNIQUES

    names = set(TECHNIQUES.names()) | {"student"}
    offenders = []
    for path in (ROOT / "harness").rglob("*.py"):
        if "compress" in path.parts:
            continue
        text = path.read_text()
        offenders += [f"{path.name}: {n}" for n in names if f'"{n}"' in text or f"'{n}'" in text]
    assert not offenders


def test_atomic_write_keeps_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    from harness.files import write_atomic, write_json_atomic

    mask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "t.md", lambda p: p.write_text("x"))
        write_json_atomic(tmp_path / "e.json", {"a": 1})
    finally:
        os.umask(mask)
    assert (tmp_path / "t.md").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "e.json").stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp"))  # nothing left beside them


def test_schema_2_golden_records_upgrade() -> None:
    """Two lines of the previous reference (schema 2, committed as written then)."""
    recs, warnings = recordfile.load(Path(__file__).parent / "data" / "records_schema2.jsonl")
    assert not warnings and [r.status for r in recs] == ["skipped", "ok"]
    ok = recs[1]
    assert ok.schema_version == records.SCHEMA and ok.fingerprint["git_commit"].startswith("15e8bd1")
    assert ok.eval.correct == sum(ok.eval.correct_mask()) and len(ok.inference.j_per_inference()) == 7
    assert all(w.host == "" and w.provenance == "estimate" for w in ok.inference.windows)
    # before schema 4 no tensor left the CPU: the upgrade says so instead of leaving it blank
    assert ok.device["type"] == "cpu" and ok.train.precision == "fp32" and ok.inference_sweep == []
    assert all(w.cross_check == [] for w in ok.inference.windows)
