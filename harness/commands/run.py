"""``joulebench run SUITE``: train, evaluate and measure a suite; write records, tables, plots."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from harness.commands.options import add_carbon_options, carbon
from harness.errors import DataUnavailable, UserError
from harness.files import check_creatable

NAME = "run"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="train, evaluate and measure a suite; write records, tables and plots")
    p.add_argument("suite", help="a suite file, e.g. benchmarks/digits.yaml")
    p.add_argument("--quick", action="store_true", help="use the suite's quick profile (tests, CI)")
    p.add_argument("--out", help="run directory (default results/<suite>/<timestamp>-<profile>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run: do only what is missing")
    p.add_argument("--shard", metavar="i/n", help="run only shard i of n of the (variant x seed) matrix")
    p.add_argument("--data-dir", help="folder that a task's relative data: path is resolved against, e.g. "
                                      "one holding sst2/ (default: $JOULEBENCH_DATA; GLUE presets: else the Hub)")
    p.add_argument("--meter", help="override the suite's meter (auto, estimate, rapl, nvml)")
    p.add_argument("--device", help="override the suite's device: auto (CUDA if torch sees a GPU, else CPU), "
                                    "cpu, cuda or cuda:N")
    p.add_argument("--allow-estimate", action="store_true",
                   help="with meter auto: estimate CPU energy when a RAPL counter exists but cannot be read")
    p.add_argument("--work", choices=["none", "instructions"],
                   help="override measure.work: after the energy rounds, count instructions per inference under "
                        "valgrind (a deterministic work figure, not energy)")
    p.add_argument("--no-cache", action="store_true", help="retrain everything; do not read or write the cache")
    p.add_argument("--cache-dir", help="artifact cache (default $JOULEBENCH_CACHE, else ~/.cache/joulebench)")
    p.add_argument("--skip-if-no-data", action="store_true",
                   help="if the task's data is unreachable, say 'skipped' (exit 3) instead of 'error'")
    add_carbon_options(p)
    p.set_defaults(func=run)


def _data_dir(arg: str | None) -> Path | None:
    value = arg or os.environ.get("JOULEBENCH_DATA")
    return Path(value) if value else None


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)) <= 100_000:
        raise UserError(f"--shard {text!r} is not of the form i/n with 1 <= i <= n <= 100000, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def run(args: argparse.Namespace) -> int:
    from harness import device as device_mod, suite

    s = suite.load(args.suite, "quick" if args.quick else "full")
    if args.work:
        s = suite.with_overrides(s, {"measure": {"work": args.work}})
    device = device_mod.resolve(args.device or s.device, where="--device" if args.device else f"{s.path} device:")
    shard = _shard(args.shard)
    carbon_ = carbon(args)
    if args.resume and args.out and Path(args.resume) != Path(args.out):
        raise UserError("--resume names the run directory itself; drop --out")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-shard{shard[0]}of{shard[1]}" if shard else ""
    out = Path(args.resume or args.out or Path("results") / s.name / f"{stamp}-{s.profile}{suffix}")
    check_creatable(out, "run directory")  # before any data is read or trained on
    # the heavy modules only now: bad input above is told in the time it takes to import torch
    from harness import meters, report
    from harness.cache import ArtifactCache
    from harness.runner import Runner, load_task
    if shard:
        from harness.plan import expand, shard as shard_of

        planned = expand(s)
        if not shard_of(planned, *shard):  # a Slurm array wider than the matrix: normal, not an error
            from harness.runner import write_empty_shard

            write_empty_shard(s, out, shard, ["joulebench", "run", *args.argv])
            print(f"joulebench: shard {shard[0]}/{shard[1]} of {s.name} holds none of its {len(planned)} runs; "
                  f"nothing to do ({out} is an empty shard that merge skips)", file=sys.stderr)
            return 0
    try:
        task = load_task(s, _data_dir(args.data_dir))
    except DataUnavailable as exc:
        if not args.skip_if_no_data:
            raise
        print(f"joulebench: skipped {s.name}: {exc}", file=sys.stderr)
        return exc.exit_code
    cache = None if args.no_cache else ArtifactCache(Path(args.cache_dir) if args.cache_dir else None)
    meter = replace(s.meter, name=args.meter) if args.meter else s.meter
    monitor = meters.build(meter, allow_estimate=args.allow_estimate or s.allow_estimate, device=device)
    print(f"joulebench: device {device.name}" + (f" ({device.model})" if device.model else "")
          + f"; meter {monitor.method}", file=sys.stderr)
    try:
        runner = Runner(s, task, monitor, out, cache=cache, shard_spec=shard, device=device,
                        command=["joulebench", "run", *args.argv])
    except BaseException:
        monitor.close()
        raise
    try:
        runner.run_all(resume=bool(args.resume))
    except KeyboardInterrupt:
        print(f"joulebench: interrupted; the records finished so far are intact in {out} "
              f"(finish with: joulebench run {args.suite} --resume {out})", file=sys.stderr)
        return 130
    finally:
        monitor.close()
    if cache is not None:
        print(f"joulebench: artifact cache {cache.root}: {len(cache.hits)} hit(s), {len(cache.misses)} miss(es)",
              file=sys.stderr)
    _, md, warnings = report.write([out], carbon=carbon_)
    for w in warnings:
        print(f"joulebench: warning: {w}", file=sys.stderr)
    print(f"\n## {s.name} ({s.profile}) -> {out}\n")
    print(md)
    return 0
