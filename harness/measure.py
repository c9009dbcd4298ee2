"""Inference energy: pre-built length-bucketed batches, a warm-up that also calibrates,
then ``repetitions`` windows, each stretched to whole passes over the eval inputs.

This is the hottest path in the project: the windowed loop does nothing but forward
passes over tensors built beforehand (no tokenization, no Python-side bookkeeping).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from harness.meters import EnergyMonitor, Measurement
from harness.models import Encoded
from harness.suite import MeasureConfig


@dataclass(frozen=True)
class InferenceResult:
    batch_size: int
    passes: int  # passes over the eval inputs per window
    inferences_per_window: int
    warmup_s: float
    windows: tuple[Measurement, ...]


def measure_inference(module: nn.Module, data: Encoded, cfg: MeasureConfig, monitor: EnergyMonitor,
                      desc: str = "measure") -> InferenceResult:
    batches = [data.batch(idx) for idx in data.buckets(cfg.batch_size)]
    module.eval()

    def one_pass() -> None:
        for batch in batches:
            module(**batch)

    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(cfg.warmup):
            one_pass()
        warmup_s = time.perf_counter() - start
        pass_s = warmup_s / cfg.warmup
        min_s = max(cfg.min_window_s, monitor.min_window_s())
        passes = max(1, math.ceil(min_s / max(pass_s, 1e-9)))
        windows = []
        for rep in tqdm(range(cfg.repetitions), desc=desc, unit="window", leave=False, disable=None):
            key = f"{desc}:{rep}"
            monitor.begin_window(key)
            for _ in range(passes):
                one_pass()
            windows.append(monitor.end_window(key))
    return InferenceResult(cfg.batch_size, passes, passes * len(data), warmup_s, tuple(windows))
