"""Benchmark (prints figures; not a test): what the measured inference loop costs against
a bare ``torch.inference_mode`` loop over the same staged batches. Target: throughput
ratio >= 0.97.

Both loops run the suite's first model (as built, untrained: the arithmetic is the
same) over the eval split's batches, staged where the run keeps them, for the number of
passes the harness calibrates. They alternate, bare then measured, for ``--rounds``
rounds, so the machine's drift falls on both; the ratio is median(bare s) /
median(measured s). The measured side is ``measure_rounds`` itself: the monitor's
sync and readings at each window edge, the pass loop, the bookkeeping.

    python benchmarks/scripts/loop_overhead.py [suite] [--device cuda] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from harness import device as device_mod, meters, suite  # noqa: E402
from harness.device import prepare as prepare_device  # noqa: E402
from harness.measure import measure_rounds, prepare  # noqa: E402
from harness.models import MODELS  # noqa: E402
from harness.runner import load_task  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("suite", nargs="?", default="benchmarks/digits.yaml")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch-size", type=int, help="default: the suite's measure.batch_size")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    s = suite.load(args.suite, "full")  # the full profile's window length
    device = device_mod.resolve(args.device)
    prepare_device(device)
    cfg = replace(s.measure, repetitions=6, batch_size=args.batch_size or s.measure.batch_size)
    task = load_task(s, Path(args.data_dir) if args.data_dir else None)
    model = s.models[0]
    bundle = MODELS.get(model.family)(task, **model.options)
    module = bundle.module.to(device.torch).eval()
    data = bundle.encode(task.eval)
    monitor = meters.build(s.meter, allow_estimate=True, device=device, log=lambda line: None)
    try:
        target = prepare("loop", module, data, cfg, monitor, device.torch)
        one = replace(cfg, repetitions=1)
        bare_s, measured_s = [], []
        for _ in range(args.rounds):
            with torch.inference_mode():
                device.sync()
                start = time.perf_counter()
                for _ in range(target.passes):
                    for batch in target.batches:
                        module(**batch)
                device.sync()
                bare_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            measure_rounds([target], one, monitor, desc="measured")
            measured_s.append(time.perf_counter() - start)
    finally:
        monitor.close()
    ratio = statistics.median(bare_s) / statistics.median(measured_s)
    print(f"suite {s.name}, model {model.name}, device {device.name} {device.model}, meter {monitor.method}, "
          f"batch {cfg.batch_size}, {target.passes} passes x {len(target.batches)} batches per window")
    print(f"bare inference_mode loop: median {statistics.median(bare_s):.4f} s (min {min(bare_s):.4f})")
    print(f"measured loop (windows):  median {statistics.median(measured_s):.4f} s (min {min(measured_s):.4f})")
    print(f"throughput ratio measured/bare: {ratio:.4f} over {args.rounds} interleaved rounds "
          f"(target >= 0.97: {'met' if ratio >= 0.97 else 'NOT met'})")


if __name__ == "__main__":
    main()
