"""``joulebench run SUITE``: train, evaluate and measure a suite; write records, tables, plots."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from harness.commands.options import add_carbon_options, add_plots_option, bounded, carbon
from harness.errors import DataUnavailable, UserError

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
    p.add_argument("--meter", help="override the suite's meter: auto, or a meter `joulebench meters` lists")
    p.add_argument("--device", help="override the suite's device: auto (CUDA if torch sees a GPU, else CPU), "
                                    "cpu, cuda or cuda:N")
    p.add_argument("--allow-estimate", action="store_true",
                   help="with meter auto: estimate CPU energy when a RAPL counter exists but cannot be read")
    p.add_argument("--work", choices=["none", "instructions"],
                   help="override measure.work: after the energy rounds, count instructions per inference under "
                        "valgrind (a deterministic work figure, not energy)")
    p.add_argument("--work-batches", type=batches, metavar="K|all",
                   help="override measure.work_batches (default 4): count K of each target's eval batches, evenly "
                        "spaced (the figure is of those batches), or all of them")
    p.add_argument("--no-cache", action="store_true", help="retrain everything; do not read or write the cache")
    add_plots_option(p)
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
    from harness.plan import check_shard

    m = re.fullmatch(r"(\d{1,9})/(\d{1,9})", text)
    if not m:
        raise UserError(f"--shard {text!r} is not of the form i/n, e.g. --shard 2/4")
    return check_shard((int(m.group(1)), int(m.group(2))), f"--shard {text!r}")


def batches(text: str) -> int | str:
    """--work-batches: a count of batches, or ``all``."""
    return "all" if text == "all" else bounded(1, 1_000_000, int)(text)


def run(args: argparse.Namespace) -> int:
    """The command line over ``harness.api.run``: parse, call, print."""
    from harness import api

    shard = _shard(args.shard)
    carbon_ = carbon(args)
    try:
        result = api.run(args.suite, quick=args.quick, out=args.out, resume=args.resume, shard=shard,
                         data_dir=_data_dir(args.data_dir), meter=args.meter, device=args.device,
                         allow_estimate=args.allow_estimate, cache_dir=args.cache_dir, no_cache=args.no_cache,
                         work=args.work, work_batches=args.work_batches, plots=args.plots, carbon=carbon_,
                         command=["joulebench", "run", *args.argv])
    except DataUnavailable as exc:
        if not args.skip_if_no_data:
            raise
        print(f"joulebench: skipped {getattr(exc, 'suite', args.suite)}: {exc}", file=sys.stderr)
        return exc.exit_code
    except api.Interrupted as exc:
        print(f"joulebench: interrupted; the records finished so far are intact in {exc.run_dir} "
              f"(finish with: joulebench run {args.suite} --resume {exc.run_dir})", file=sys.stderr)
        return 130
    if result.status != "done":
        return 0
    for w in result.warnings:
        print(f"joulebench: warning: {w}", file=sys.stderr)
    print(f"\n## {result.suite} ({result.profile}) -> {result.run_dir}\n")
    print(result.markdown)
    return 0
