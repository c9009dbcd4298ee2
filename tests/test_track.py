"""A window over the user's own code (``api.track``): the suite's meters and checks,
as a context manager and as a decorator; nesting refused in one line."""

from __future__ import annotations

import time

import pytest

from harness import api
from harness.errors import UserError


def burn(seconds: float) -> int:
    end, n = time.thread_time() + seconds, 0
    while time.thread_time() < end:
        n += 1
    return n


def test_a_tracked_block_is_measured_like_a_suite_window() -> None:
    with api.track("burn", meter="estimate", idle_s=0.2) as w:
        burn(0.6)
    assert w.status == "resolved" and w.method == "estimate" and w.uncertainty == pytest.approx(0.5)
    assert 0.6 * 12 * 0.8 < w.energy_J < 0.6 * 12 * 2  # ~12 W x the CPU-seconds burnt, plus memory
    assert w.net_energy_J is not None and 0 < w.net_energy_J < w.energy_J
    assert 0.55 < w.duration_s < 5 and w.device == "cpu" and "12 W x CPU-seconds" in w.formulas[0]
    assert "burn: " in str(w) and "estimate" in str(w)
    assert w.measurement.to_dict()["energy_j"] == pytest.approx(w.energy_J)  # what a record would store


def test_work_shorter_than_the_meter_resolves_is_padded_and_labelled() -> None:
    with api.track("blink", meter="estimate", idle_s=0) as w:
        pass
    assert w.duration_s < 0.05  # the work's own seconds, not the padding
    assert w.status in ("resolved", "bounded")
    if w.status == "bounded":
        assert w.net_energy_J is None and str(w).split(": ", 1)[1].startswith("<= ")


def test_as_a_decorator() -> None:
    @api.track("decorated", meter="estimate", idle_s=0)
    def work() -> int:
        return burn(0.3)

    assert work.window is None
    assert work() > 0 and work.window.energy_J > 0 and work.window.name == "decorated"


def test_nested_windows_and_bad_options_are_one_line() -> None:
    with api.track("outer", meter="estimate", idle_s=0):
        with pytest.raises(UserError, match="opened inside the open window 'outer'"):
            with api.track("inner", meter="estimate", idle_s=0):
                pass
    with api.track("after", meter="estimate", idle_s=0) as w:  # the refusal left nothing open
        burn(0.2)
    assert w.energy_J > 0
    with pytest.raises(UserError, match="unknown meter 'joules'"):
        with api.track("x", meter="joules"):
            pass
    with pytest.raises(UserError, match="idle_s"):
        api.track("x", idle_s=-1)
    unread = api.track("unread")
    with pytest.raises(AttributeError, match="until its block ends"):
        unread.energy_J
