"""Inference energy, measured in interleaved rounds (the asv design).

This VM's speed drifts by +-25% over tens of seconds (benchmarks/scripts/aa_check.py
and the README's A/A figures), so measuring one variant's windows back to back and then
the next variant's compares the variants at different machine states. Instead every
variant of a group is made and its batches staged first; then each is warmed up and
calibrated (how many passes fill a window), one after another right before the rounds;
then round r measures one window of each variant, in the
order of row r of a Williams design (``williams``): over n rounds (2n for an odd number
of variants) every variant comes first equally often and follows every other variant
equally often, so the carry-over of a neighbour (a heavy one's heat and clocks under
RAPL or NVML) is no fixed bias of any one variant. Rotating the start, as before, kept
the cyclic order: one variant followed the same neighbour in every round. Each
variant's windows span the whole measurement phase, and the variants in a table share
it; every window's place in the group's order is recorded (``sequence``).

This is the hottest path in the project: the windowed loop does nothing but forward
passes over tensors built beforehand (no tokenization, no Python-side bookkeeping).
On a GPU the batches are staged in device memory before any window opens, so no
host-to-device copy sits in a window unless the suite asks for it
(``measure.include_transfer``); the warm-up that calibrates the window length waits
for the device before it reads the clock, and every window edge does (the monitor's
sync). One variant is measured at every batch size in ``measure.batch_sizes``, each
its own target in the same interleaved rounds.

The loop runs a runtime's Runnable (runtimes/): its inputs are staged once per batch
in the runtime's own form (device tensors for PyTorch, numpy arrays for ONNX Runtime),
and a window calls it on them, nothing else. For a runtime that compiles, the count of
compiled graphs is read around every window, and any growth is recorded.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from harness.progress import bars

from harness.config import MeasureConfig
from harness.meters import EnergyMonitor, Measurement
from harness.models import Encoded
from harness.runtimes import Runnable, as_runnable

SCHEDULE = "interleaved rounds, Williams design (first-order carry-over balanced)"


def schedule(n: int, rounds: int, start: int = 0) -> str:
    """What the rounds ran, named for what it is: the rows of the Williams design for
    ``n`` targets taken, and whether they make whole designs (only whole designs balance
    first-order carry-over: every target first equally often and after every other)."""
    size = len(williams(n))
    rows = f"rows {start % size + 1}-{(start + rounds - 1) % size + 1}" if rounds < size else f"{rounds} rows"
    if rounds % size == 0:
        return f"interleaved rounds: {rounds // size} whole Williams design(s) of {size} rows for {n} targets " \
               "(first-order carry-over balanced)"
    return (f"interleaved rounds: {rows} of the {size}-row Williams design for {n} targets, in turn (not carry-over "
            f"balanced: that takes repetitions a multiple of {size})")
CALIBRATION_MARGIN = 1.2
#: Timings of the calibrated pass count; the fastest is kept. A timing can only be slowed
#: (the process descheduled, an OpenMP barrier waiting on a worker another job holds):
#: one slowed timing of a single one made the windows of a CI run's onnxruntime row 0.02 s
#: against the 0.05 s asked for, and beside a busy neighbour a row's windows too short for
#: /proc/stat to tell its share. Not where one pass already fills a window (MiniLM on
#: SST-2: two more passes of seconds each would be spent to learn that one pass is enough).
CALIBRATION_TIMINGS = 3


@dataclass(frozen=True)
class InferenceResult:
    batch_size: int
    passes: int  # passes over the eval inputs per window
    inferences_per_window: int
    warmup_s: float
    windows: tuple[Measurement, ...]
    rounds: tuple[int, ...]  # the round each window belongs to
    sequence: tuple[int, ...]  # each window's place in the group's measurement order
    schedule: str = SCHEDULE
    compiles_in_windows: int | None = None  # graphs compiled inside the windows (None: never compiles)

    @property
    def unsettled(self) -> int:
        """Windows whose end waited settle's whole cap: another thread of the process was still working."""
        return sum(bool(w.unsettled) for w in self.windows)


@dataclass(frozen=True)
class Target:
    """One runnable at one batch size, ready to measure: its batches staged (on the
    device, or left in host memory with ``transfer`` set) and its window length calibrated."""

    name: str
    runnable: Runnable
    batches: list[Any]
    n: int
    passes: int
    warmup_s: float
    batch_size: int = 0
    transfer: bool = False  # stage (copy to the device) each batch inside the window

    def one_pass(self) -> None:
        run = self.runnable
        if not self.transfer:
            for batch in self.batches:
                run(batch)
        else:
            for batch in self.batches:
                run(run.stage(batch))


def stage(name: str, model: nn.Module | Runnable, data: Encoded, cfg: MeasureConfig,
          device: torch.device = torch.device("cpu"), batch_size: int | None = None) -> Target:
    """The eval split's batches staged where a window reads them (one pass each, no
    warm-up yet): what the energy windows and the work pass (work.py) both run."""
    run = as_runnable(model)
    batch_size = batch_size or cfg.batch_size
    host = [data.batch(idx) for idx in data.buckets(batch_size)]
    transfer = cfg.include_transfer and device.type != "cpu"
    batches = host if transfer else [run.stage(b) for b in host]
    return Target(name, run, batches, len(data), 1, 0.0, batch_size, transfer)


def layout(target: Target) -> str:
    """A digest of the staged batches' shapes, dtypes, strides and values: the work pass
    counts only a target whose batches are the energy windows' own, byte for byte and
    in layout (a stride changes the kernel PyTorch picks)."""
    import hashlib

    h = hashlib.sha256()
    for batch in target.batches:
        for key in sorted(batch):
            value = batch[key]
            arr = value.detach().cpu() if isinstance(value, torch.Tensor) else value
            strides = tuple(arr.stride()) if isinstance(arr, torch.Tensor) else tuple(s // arr.itemsize for s in arr.strides)
            h.update(f"{key}{tuple(arr.shape)}{arr.dtype}{strides}".encode())
            h.update((arr.contiguous().numpy() if isinstance(arr, torch.Tensor) else arr).tobytes())
    return h.hexdigest()[:16]


def prepare(name: str, model: nn.Module | Runnable, data: Encoded, cfg: MeasureConfig, monitor: EnergyMonitor,
            device: torch.device = torch.device("cpu"), batch_size: int | None = None) -> Target:
    """``stage`` then ``calibrate``: one target ready for its windows."""
    return calibrate(stage(name, model, data, cfg, device, batch_size), cfg, monitor)


def calibrate(target: Target, cfg: MeasureConfig, monitor: EnergyMonitor) -> Target:
    """Warm a staged target up and calibrate how many passes over the split fill a window
    of at least ``min_window_s``. A run calibrates its group's targets one after another
    right before their rounds (``Runner``), in the state the windows will run in.
    Calibrated right after its own creation, in the state that creation left, quick
    digits' distilled student got 944 passes against 1,634 for the same architecture
    undistilled, and its windows came out at 0.13 s against the 0.2 s asked for; before
    the rounds, 1,764 and 1,743 (and, with onnxruntime's idle spin stopped too, no window of
    the run under 0.225 s)."""
    min_s = max(cfg.min_window_s, monitor.min_window_s())
    with torch.inference_mode(), monitor.quiet():  # timed as the windows will run: nothing held runs meanwhile
        warmup_s = _timed(target, cfg.warmup, monitor)
        # Calibrate on warm passes (the first ones pay for allocation, kernel selection,
        # cuBLAS start-up): double the passes until they fill a tenth of a window, then
        # time that many again and keep the fastest (CALIBRATION_TIMINGS).
        k, elapsed = 1, _timed(target, 1, monitor)
        while elapsed < min_s / 10:
            k *= 2
            elapsed = _timed(target, k, monitor)
        if elapsed < min_s:  # each further timing costs less than a window (a pass longer than one fills it)
            elapsed = min([elapsed] + [_timed(target, k, monitor) for _ in range(CALIBRATION_TIMINGS - 1)])
    # 20% to spare: the machine's speed drifts between calibration and the windows
    passes = max(1, math.ceil(CALIBRATION_MARGIN * min_s / max(elapsed / k, 1e-9)))
    return dataclasses.replace(target, passes=passes, warmup_s=warmup_s)


def _timed(target: Target, passes: int, monitor: EnergyMonitor) -> float:
    """Seconds for ``passes`` passes, the device synchronised before both clock reads
    (staging copies and earlier kernels are done before the clock starts)."""
    monitor.sync()
    start = time.perf_counter()
    for _ in range(passes):
        target.one_pass()
    monitor.sync()
    return time.perf_counter() - start


def williams(n: int) -> list[list[int]]:
    """The rows of a Williams design for ``n`` treatments: n rows for even n, 2n for odd
    (each row followed by its mirror). In the rows together, every treatment stands in
    every position equally often and directly follows every other equally often."""
    if n <= 1:
        return [list(range(n))]
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:  # 0, 1, n-1, 2, n-2, ...
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(x + r) % n for x in first] for r in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


SETTLE_STEP_S, SETTLE_MAX_S = 0.002, 0.5


def settle() -> float:
    """Wait until this process's other threads have stopped working (over two 2 ms steps
    in a row, its CPU time grows by under a tenth of the wall time and no other thread of
    it is runnable: one quiet step can be a worker descheduled), at most 0.5 s; the
    seconds waited.
    An intra-op pool's workers spin on after the last pass has returned (PyTorch's OpenMP
    pool: about 10 ms of CPU on the project's VM; onnxruntime's: 47 ms before its spin
    was stopped after each run). Waited for inside a window, that work is charged to the
    target that left it, not to the next window, another variant's. A worker the VM
    descheduled for two steps spends no CPU time but is still runnable (its state R):
    by the CPU clock alone a test's busy thread once looked settled."""
    t0, quiet = time.perf_counter(), 0
    while quiet < 2 and time.perf_counter() - t0 < SETTLE_MAX_S:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(SETTLE_STEP_S)
        still = time.process_time() - cpu >= 0.1 * (time.perf_counter() - wall) or others_runnable()
        quiet = 0 if still else quiet + 1
    return time.perf_counter() - t0


def others_runnable(task: str = "/proc/self/task") -> bool:
    """Whether another thread of this process is running or waiting for a CPU (state R
    in its /proc stat); False where /proc cannot say (the CPU clock alone decides). Read
    inside the window, so its cost grows with the threads (benchmarks/scripts/settle_cost.py
    prints it): plain descriptors relative to the folder, which cost about half of
    Python's file objects here."""
    me = str(threading.get_native_id())
    try:
        folder = os.open(task, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        for tid in os.listdir(folder):
            if tid == me:
                continue
            try:
                fd = os.open(f"{tid}/stat", os.O_RDONLY, dir_fd=folder)
            except OSError:
                continue  # the thread ended meanwhile
            try:
                stat = os.read(fd, 1024)
            except OSError:
                continue
            finally:
                os.close(fd)
            state = stat.rfind(b")") + 2  # after the command name, which may itself hold ")"
            if state > 1 and stat[state:state + 1] == b"R":
                return True
        return False
    finally:
        os.close(folder)


def measure_rounds(targets: list[Target], cfg: MeasureConfig, monitor: EnergyMonitor,
                   desc: str = "measure", start: int = 0) -> list[InferenceResult]:
    """``cfg.repetitions`` rounds of one window per target, round r in the order of row
    ``start + r`` of the targets' Williams design (a run's seeds continue the design
    where the seed before stopped, rather than each repeating its first rows)."""
    windows: list[list[Measurement]] = [[] for _ in targets]
    sequence: list[list[int]] = [[] for _ in targets]
    compiles: list[int | None] = [None if t.runnable.compilations() is None else 0 for t in targets]
    n = len(targets)
    design = williams(n)
    with torch.inference_mode(), tqdm(total=cfg.repetitions * n, desc=desc, unit="window",
                                      leave=False, disable=bars()) as bar:
        for rnd in range(cfg.repetitions):
            for k, i in enumerate(design[(start + rnd) % len(design)]):
                t = targets[i]
                key = f"{t.name}:{rnd}"
                graphs = t.runnable.compilations()  # read outside the window
                settle()  # what ran before (a calibration, the last window) has stopped working
                monitor.begin_window(key)
                for _ in range(t.passes):
                    t.one_pass()
                # this target's own pool stops spinning inside its own window; a thread that
                # outlasts the wait is recorded with the window (its work is in the joules)
                unsettled = settle() >= SETTLE_MAX_S
                windows[i].append(dataclasses.replace(monitor.end_window(key), unsettled=unsettled))
                if graphs is not None:
                    compiles[i] += t.runnable.compilations() - graphs
                sequence[i].append(rnd * n + k)
                bar.update()
    rounds = tuple(range(cfg.repetitions))
    named = schedule(n, cfg.repetitions, start)
    return [InferenceResult(t.batch_size or cfg.batch_size, t.passes, t.passes * t.n, t.warmup_s, tuple(w), rounds,
                            tuple(q), named, compiles_in_windows=c)
            for t, w, q, c in zip(targets, windows, sequence, compiles)]
