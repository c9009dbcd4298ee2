"""Benchmark (prints figures; not a test): what the measured inference loop costs against
a bare loop over the same staged inputs, for each runtime. Target: throughput ratio
>= 0.95 (eager on the CPU has shown 1.00).

Both loops run the suite's first model (as built, untrained: the arithmetic is the
same) over the eval split's batches, staged where and how the run keeps them (device
tensors for eager and compile, numpy arrays for onnxruntime), for the number of passes
the harness calibrates. The bare loop calls the runtime's own API directly
(``module(**batch)`` under ``torch.inference_mode``, ``session.run``); the measured
side is ``measure_rounds`` itself: the monitor's sync and readings at each window edge,
the compile counter, the pass loop, the bookkeeping. They alternate, bare then
measured, for ``--rounds`` rounds, so the machine's drift falls on both; the ratio is
median(bare s) / median(measured s).

    python benchmarks/scripts/loop_overhead.py [suite] [--device cuda] [--rounds 15]
        [--runtimes eager,compile,onnxruntime]
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

from harness import device as device_mod, meters, runtimes, suite  # noqa: E402
from harness.device import prepare as prepare_device  # noqa: E402
from harness.measure import measure_rounds, prepare  # noqa: E402
from harness.models import MODELS  # noqa: E402
from harness.runner import load_task  # noqa: E402
from harness.runtimes import DeployContext  # noqa: E402


def bare_call(runnable: runtimes.Runnable):
    """The runtime's own API, without the Runnable in between."""
    if hasattr(runnable, "session"):  # onnxruntime
        session, outputs = runnable.session, runnable.outputs
        return lambda feeds: session.run(outputs, feeds)
    module = runnable.module  # eager, or the torch.compile wrapper
    return lambda batch: module(**batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("suite", nargs="?", default="benchmarks/digits.yaml")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--runtimes", default="eager,compile,onnxruntime")
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
    print(f"suite {s.name}, model {model.name}, device {device.name} {device.model}, meter {monitor.method}, "
          f"batch {cfg.batch_size}, {args.rounds} interleaved rounds per runtime")
    one = replace(cfg, repetitions=1)
    try:
        for name in args.runtimes.split(","):
            runtime = runtimes.RUNTIMES.get(name)()
            why = runtime.unavailable(device)
            if why:
                print(f"{name:12s} skipped: {why}")
                continue
            samples = [data.batch(idx) for idx in data.buckets(cfg.batch_size)]
            ctx = DeployContext("loop", module, None, samples, data.lengths is not None, device,
                                torch.get_num_threads(), log=lambda line: None)
            runnable = runtime.deploy(ctx).runnable
            target = prepare(f"loop-{name}", runnable, data, cfg, monitor, device.torch)
            call = bare_call(runnable)
            bare_s, measured_s = [], []
            for _ in range(args.rounds):
                with torch.inference_mode():
                    device.sync()
                    start = time.perf_counter()
                    for _ in range(target.passes):
                        for batch in target.batches:
                            call(batch)
                    device.sync()
                    bare_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                measure_rounds([target], one, monitor, desc="measured")
                measured_s.append(time.perf_counter() - start)
            ratio = statistics.median(bare_s) / statistics.median(measured_s)
            print(f"{name:12s} {target.passes} passes x {len(target.batches)} batches per window; "
                  f"bare median {statistics.median(bare_s):.4f} s, measured median {statistics.median(measured_s):.4f} s; "
                  f"ratio measured/bare {ratio:.4f} (target >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})")
    finally:
        monitor.close()


if __name__ == "__main__":
    main()
