"""Pareto, break-even, lineage energy and carbon on a hand-built 3-row table whose
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


def test_pareto_and_break_even(three_rows: pd.DataFrame) -> None:
    out = add_lifecycle(three_rows, PRESETS["default"]).set_index("variant_id")
    assert out["pareto"].to_dict() == {"A": True, "B": True, "C": False}
    # B saves 0.5 mJ per inference; its 20 J pay back after 20 / 0.0005 = 40,000 inferences
    assert out["break_even_inferences"].fillna(-1).to_dict() == {"A": -1, "B": 40000, "C": -1}
    assert out["break_even_never"].to_dict() == {"A": None, "B": False, "C": True}


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


def test_lineage_and_break_even_are_keyed_by_suite() -> None:
    """Two suites with the same task and variant ids (the SST-2 ladder and its sweep) in
    one report: each row's lineage and break-even come from its own suite's rows."""
    import pandas as pd

    from harness.lifecycle import break_even, lineage_train_j

    rows = []
    for suite, base_j, child_j, base_e, child_e in (("ladder", 8000.0, 10.0, 2e-3, 1e-3), ("sweep", 2000.0, 30.0,
                                                                                             3e-3, 1e-3)):
        rows += [{"suite": suite, "task": "sst2", "variant_id": "m", "parent": None, "train_J": base_j,
                  "J_per_inference": base_e, "train_J_source": "measured"},
                 {"suite": suite, "task": "sst2", "variant_id": "m.int8", "parent": "m", "train_J": child_j,
                  "J_per_inference": child_e, "train_J_source": "measured"}]
    t = pd.DataFrame(rows)
    lineage = lineage_train_j(t)
    assert list(lineage) == [8000.0, 8010.0, 2000.0, 2030.0]
    when, _, _ = break_even(t)
    assert when.iloc[1] == 10_000 and when.iloc[3] == 15_000


def test_break_even_needs_a_significant_saving() -> None:
    """SST-2 prune90: break-even 2.93e7 from a 0.6% gap whose intervals coincide. A saving
    whose interval reaches the parent's has no break-even (n.s.); a separated one has."""
    import pandas as pd

    from harness.lifecycle import break_even
    from harness.render import NOT_SIGNIFICANT, break_even_text

    def rows(child_lo: float, child_hi: float, parent_lo: float = 0.98) -> pd.DataFrame:
        return pd.DataFrame([
            {"suite": "s", "task": "t", "variant_id": "m", "parent": None, "train_J": 100.0, "J_per_inference": 1.0,
             "J_per_inference_within_run_ci95_lo": parent_lo, "J_per_inference_within_run_ci95_hi": 1.02},
            {"suite": "s", "task": "t", "variant_id": "m.p", "parent": "m", "train_J": 10.0, "J_per_inference": 0.994,
             "J_per_inference_within_run_ci95_lo": child_lo, "J_per_inference_within_run_ci95_hi": child_hi}])

    t = rows(0.97, 1.01)  # overlapping: noise
    when, never, sig = break_even(t)
    assert pd.isna(when.iloc[1]) and sig.iloc[1] is False and never.iloc[1] is False
    t["break_even_inferences"], t["break_even_never"], t["break_even_significant"] = when, never, sig
    assert break_even_text(t.iloc[1]) == NOT_SIGNIFICANT
    t = rows(0.990, 0.996, parent_lo=0.998)  # wholly below the parent's interval: a saving (absence of the refusal)
    when, never, sig = break_even(t)
    assert when.iloc[1] == 1667 and sig.iloc[1] is True
