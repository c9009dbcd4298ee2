"""Pareto, lineage energy and carbon on a hand-built 3-row table whose
answers are worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.lifecycle import PRESETS, add_lifecycle, carbon_from


@pytest.fixture
def three_rows() -> pd.DataFrame:
    # A: the baseline. B: a variant of A that halves J/inference for 1 accuracy point.
    # C: a variant of A that costs more per inference and is less accurate.
    return pd.DataFrame([
        {"task": "t", "variant_id": "A", "parent": None, "accuracy": 0.90, "J_per_inference": 1.0e-3, "train_J": 100.0},
        {"task": "t", "variant_id": "B", "parent": "A", "accuracy": 0.89, "J_per_inference": 0.5e-3, "train_J": 20.0},
        {"task": "t", "variant_id": "C", "parent": "A", "accuracy": 0.85, "J_per_inference": 2.0e-3, "train_J": 5.0},
    ])


def test_pareto(three_rows: pd.DataFrame) -> None:
    out = add_lifecycle(three_rows, PRESETS["default"]).set_index("variant_id")
    assert out["pareto"].to_dict() == {"A": True, "B": True, "C": False}


def test_lineage_and_energy_at_scale(three_rows: pd.DataFrame) -> None:
    out = add_lifecycle(three_rows, PRESETS["default"]).set_index("variant_id")
    assert out["lineage_train_J"].to_dict() == {"A": 100.0, "B": 120.0, "C": 105.0}
    assert out.loc["A", "J_at_1e3_queries"] == pytest.approx(101.0)
    assert out.loc["B", "J_at_1e6_queries"] == pytest.approx(620.0)
    assert out.loc["C", "J_at_1e9_queries"] == pytest.approx(105.0 + 2.0e6)
    # at 1e3 queries the baseline is cheapest in total; at 1e6 the variant B is
    assert out["J_at_1e3_queries"].idxmin() == "A" and out["J_at_1e6_queries"].idxmin() == "B"


def test_carbon_presets_and_overrides(three_rows: pd.DataFrame) -> None:
    strubell = PRESETS["strubell2019"]
    assert strubell.g_per_kwh == pytest.approx(432.7, abs=0.1) and strubell.pue == 1.58
    out = add_lifecycle(three_rows, strubell).set_index("variant_id")
    # 100 J = 100 / 3.6e6 kWh; x 432.74 g/kWh x 1.58
    assert out.loc["A", "train_gCO2e"] == pytest.approx(100 / 3.6e6 * 432.74 * 1.58, rel=1e-3)
    custom = carbon_from("default", g_per_kwh=0.0)
    assert custom.pue == 1.58 and custom.grams(1e9) == 0.0
    assert "user-set" in custom.describe()


def test_lineage_is_keyed_by_suite() -> None:
    """Two suites with the same task and variant ids (the SST-2 ladder and its sweep) in
    one report: each row's lineage comes from its own suite's rows (break-even:
    test_decisions.py)."""
    from harness.lifecycle import lineage_train_j

    rows = []
    for suite, base_j, child_j in (("ladder", 8000.0, 10.0), ("sweep", 2000.0, 30.0)):
        rows += [{"suite": suite, "task": "sst2", "variant_id": "m", "parent": None, "train_J": base_j,
                  "train_J_source": "measured"},
                 {"suite": suite, "task": "sst2", "variant_id": "m.int8", "parent": "m", "train_J": child_j,
                  "train_J_source": "measured"}]
    assert list(lineage_train_j(pd.DataFrame(rows))) == [8000.0, 8010.0, 2000.0, 2030.0]
