"""Closed-form statistics against values worked out by hand."""

from __future__ import annotations

import pytest

from harness import stats


def test_wilson_known_values() -> None:
    lo, hi = stats.wilson(8, 10)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    lo, hi = stats.wilson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)


def test_median_ci_order_statistics() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0]
    assert stats.median(values) == 3.5
    assert stats.median_ci(values) == (1.0, 6.0)  # n=6: coverage 1 - 2/64 = 96.9%
    ten = list(range(1, 11))
    assert stats.median_ci(ten) == (2, 9)  # n=10: j=2, coverage 97.9%
    with pytest.raises(ValueError, match="need >= 6"):
        stats.median_ci([1, 2, 3, 4, 5])


def test_cv() -> None:
    assert stats.cv([1.0, 1.0, 1.0]) == 0.0
    assert stats.cv([1.0, 3.0]) == pytest.approx(2 ** 0.5 / 2)
