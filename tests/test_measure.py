"""The measured loop's schedule: balanced against carry-over from a neighbour."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from harness.config import MeasureConfig
from harness.measure import Target, measure_rounds, williams
from harness.meters import EnergyMonitor
from harness.meters.estimate import EstimateBackend
from harness.runtimes import eager


def follows(rows: list[list[int]]) -> Counter:
    return Counter((row[k - 1], row[k]) for row in rows for k in range(1, len(row)))


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8])
def test_williams_rows_balance_position_and_neighbour(n: int) -> None:
    rows = williams(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    assert all(sorted(r) == list(range(n)) for r in rows)
    for pos in range(n):  # every treatment in every position equally often
        assert len(set(Counter(r[pos] for r in rows).values())) == 1
    pairs = follows(rows)  # every ordered pair of distinct treatments equally often
    assert len(pairs) == n * (n - 1) and len(set(pairs.values())) == 1


def test_a_rotating_start_is_what_the_design_replaces() -> None:
    """Absence planted: rotation keeps one neighbour order (the detector can fail)."""
    n = 7
    rotation = [[(r + k) % n for k in range(n)] for r in range(2 * n)]
    assert len(follows(rotation)) == n  # only i -> i+1, every round


def test_measured_rounds_follow_the_design() -> None:
    """SST-2 had bert_tiny.int8 after minilm.layers3 in 7 of 7 rounds; now no variant
    follows one neighbour in more than its share of rounds."""
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    n, reps = 7, 14
    targets = [Target(f"v{i}", eager(torch.nn.Linear(2, 2)), [{"input": torch.zeros(1, 2)}], 1, 20, 0.0)
               for i in range(n)]
    results = measure_rounds(targets, MeasureConfig(repetitions=reps), monitor)
    slot = {pos: i for i, r in enumerate(results) for pos in r.sequence}
    order = [[slot[rnd * n + k] for k in range(n)] for rnd in range(reps)]
    assert order == williams(n)
    assert max(follows(order).values()) == 2


def test_the_schedule_is_named_for_what_ran_and_seeds_continue_the_design() -> None:
    """Digits: 11 targets, 7 rounds, where the design has 22 rows: the records named it
    'Williams design (first-order carry-over balanced)'. Now the name says which rows ran
    and that they are not balanced; a second seed continues the design where the first
    stopped instead of repeating its rows."""
    from harness.measure import schedule

    assert "rows 1-7 of the 22-row Williams design for 11 targets" in schedule(11, 7)
    assert "not carry-over balanced" in schedule(11, 7)
    assert "rows 8-14" in schedule(11, 7, start=7)
    assert "1 whole Williams design(s)" in schedule(4, 4) and "not" not in schedule(4, 4)  # absence
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    n, reps = 5, 3
    targets = [Target(f"v{i}", eager(torch.nn.Linear(2, 2)), [{"input": torch.zeros(1, 2)}], 1, 20, 0.0)
               for i in range(n)]
    results = measure_rounds(targets, MeasureConfig(repetitions=reps), monitor, start=reps)
    slot = {pos: i for i, r in enumerate(results) for pos in r.sequence}
    order = [[slot[rnd * n + k] for k in range(n)] for rnd in range(reps)]
    assert order == williams(n)[reps:2 * reps]
    assert results[0].schedule == schedule(n, reps, reps)
