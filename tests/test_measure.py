"""The measured loop's schedule: balanced against carry-over from a neighbour."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from harness.config import MeasureConfig
from harness.measure import Target, measure_rounds, williams
from harness.meters import EnergyMonitor
from harness.meters.estimate import EstimateBackend
from harness.runtimes import Runnable, eager


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


class Spinner(Runnable):
    """A runnable whose work goes on in another thread after it returns (as a thread
    pool's workers spin after the last pass): 60 ms of CPU after each call. Or, with
    ``burn_s`` 0, one that sleeps 0.1 s: a window as long as a real one, with no work."""

    def __init__(self, burn_s: float = 0.06) -> None:
        self.burn_s, self.thread = burn_s, None

    def __call__(self, batch) -> None:
        import hashlib
        import threading
        import time

        if not self.burn_s:
            time.sleep(0.1)
            return
        if self.thread is not None:
            self.thread.join()

        def burn() -> None:  # hashing a large buffer runs without the GIL, as a C pool's workers do
            chunk, end = bytes(1 << 20), time.thread_time() + self.burn_s
            while time.thread_time() < end:
                hashlib.sha256(chunk).digest()

        self.thread = threading.Thread(target=burn)
        self.thread.start()


@pytest.mark.parametrize("planted", [False, True])
def test_work_left_running_after_the_last_pass_is_charged_to_its_own_window(monkeypatch, planted: bool) -> None:
    """The window after a target that leaves work running (a spinning pool) is not
    charged that work: the window waits for it (measure.settle). Planted: without the
    wait, the next window, another target's, holds it."""
    from harness import measure

    if planted:
        monkeypatch.setattr(measure, "settle", lambda: 0.0)
    monitor = EnergyMonitor([EstimateBackend(parts=("cpu",), cpu_w_per_busy_cpu=1.0)])  # joules = CPU-seconds
    targets = [Target(name, Spinner(burn), [{"input": torch.zeros(1)}], 1, 1, 0.0)
               for name, burn in (("spinner", 0.06), ("quiet", 0.0))]
    spins, after = measure_rounds(targets, MeasureConfig(repetitions=4), monitor)
    cpu = [[w.energy_j for w in r.windows] for r in (spins, after)]
    followed = [q for q, pos in zip(cpu[1], after.sequence) if pos % 2 == 1]  # quiet windows right after a spinner
    if planted:
        assert max(followed) > 0.03, cpu
    else:
        assert max(cpu[1]) < 0.03 and sorted(cpu[0])[2] > 0.05, cpu  # the quiet rows clean; most spin kept


class Busy(Runnable):
    """A runnable whose first call leaves a thread working (GIL-free) for ``busy_s``."""

    def __init__(self, busy_s: float) -> None:
        self.busy_s, self.started = busy_s, False

    def __call__(self, batch) -> None:
        import hashlib
        import threading
        import time

        def work() -> None:
            chunk, end = bytes(1 << 20), time.monotonic() + self.busy_s
            while time.monotonic() < end:
                hashlib.sha256(chunk).digest()

        if not self.started and self.busy_s:
            self.started = True
            threading.Thread(target=work, daemon=True).start()


@pytest.mark.parametrize("busy_s", [0.0, 1.2])
def test_a_window_that_never_settles_is_counted(busy_s: float) -> None:
    """A thread of the process still working when settle's cap runs out is not waited
    for past the cap; the windows it kept busy are counted (``unsettled``: the run warns
    that their joules hold its work). Absence: no such thread, none counted."""
    from harness.measure import SETTLE_MAX_S

    monitor = EnergyMonitor([EstimateBackend(parts=("cpu",), cpu_w_per_busy_cpu=1.0)])
    targets = [Target(name, Busy(s), [{"input": torch.zeros(1)}], 1, 1, 0.0)
               for name, s in (("busy", busy_s), ("other", 0.0))]
    results = measure_rounds(targets, MeasureConfig(repetitions=2), monitor)
    unsettled = sum(r.unsettled for r in results)
    longest = max(w.duration_s for r in results for w in r.windows)
    if busy_s:
        assert unsettled >= 1 and longest >= SETTLE_MAX_S, (unsettled, longest)
    else:
        assert unsettled == 0 and longest < SETTLE_MAX_S, (unsettled, longest)


class Hiccup(Runnable):
    """A runnable of 2 ms a call whose second call (the first timed one after a single
    warm-up) takes 40 ms: the process descheduled once while the window was sized."""

    def __init__(self) -> None:
        self.calls = 0

    def stage(self, batch):
        return batch

    def __call__(self, batch) -> None:
        import time

        self.calls += 1
        time.sleep(0.04 if self.calls == 2 else 0.002)


@pytest.mark.parametrize("timings", [1, 3])
def test_one_slowed_timing_does_not_shorten_the_windows(monkeypatch, timings: int) -> None:
    """Calibration keeps the fastest of CALIBRATION_TIMINGS timings: one slowed timing
    still fills a window. Planted: a single timing, and the windows come out at a tenth
    of the length asked for."""
    from harness import measure
    from harness.models import Encoded

    monkeypatch.setattr(measure, "CALIBRATION_TIMINGS", timings)
    monitor = EnergyMonitor([EstimateBackend(parts=("cpu",))])
    cfg = MeasureConfig(batch_size=1, warmup=1, repetitions=2, min_window_s=0.1, idle_s=0)
    data = Encoded({"x": torch.zeros(1, 1)}, torch.zeros(1, dtype=torch.long))
    target = measure.prepare("t", Hiccup(), data, cfg, monitor)
    window = min(w.duration_s for w in measure_rounds([target], cfg, monitor)[0].windows)
    if timings == 1:
        assert target.passes <= 4 and window < 0.05, (target.passes, window)
    else:
        assert target.passes >= 40 and window >= 0.1, (target.passes, window)


@pytest.mark.parametrize("planted", [False, True])
def test_a_descheduled_worker_is_not_taken_for_a_settled_one(monkeypatch, planted: bool) -> None:
    """A worker the VM deschedules spends no CPU time while it waits for a CPU: the CPU
    clock alone (planted here: it stands still) would call the process settled. It is
    still runnable, and settle waits for it. Planted without that check: settle returns
    at once beside a busy thread."""
    import hashlib
    import threading
    import time

    from harness import measure

    stop = threading.Event()

    def work() -> None:
        chunk = bytes(1 << 20)
        while not stop.is_set():
            hashlib.sha256(chunk).digest()

    monkeypatch.setattr(measure.time, "process_time", lambda: 0.0)
    if planted:
        monkeypatch.setattr(measure, "others_runnable", lambda: False)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        waited = measure.settle()
    finally:
        stop.set()
        thread.join()
    if planted:
        assert waited < 0.1, waited
    else:
        assert waited >= measure.SETTLE_MAX_S, waited
        assert not measure.others_runnable()  # the thread gone, none runnable
