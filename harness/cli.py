"""Command line: ``joulebench run | report | compare | merge | meters | history``.

Bad input is a UserError: one line on stderr, a non-zero exit, no traceback. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from harness.errors import DataUnavailable, UserError
from harness.files import check_creatable


def _data_dir(arg: str | None) -> Path | None:
    value = arg or os.environ.get("JOULEBENCH_DATA")
    return Path(value) if value else None


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UserError(f"--shard {text!r} is not of the form i/n with 1 <= i <= n, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def _carbon(args: argparse.Namespace):
    from harness.lifecycle import PRESETS, carbon_from

    if args.carbon_preset not in PRESETS:
        raise UserError(f"unknown carbon preset {args.carbon_preset!r}; use one of: {', '.join(PRESETS)}")
    if (args.grid_g_per_kwh is not None and args.grid_g_per_kwh < 0) or (args.pue is not None and args.pue < 1):
        raise UserError("--grid-g-per-kwh must be >= 0 and --pue >= 1")
    return carbon_from(args.carbon_preset, args.grid_g_per_kwh, args.pue)


def cmd_run(args: argparse.Namespace) -> int:
    from harness import device as device_mod, meters, report, suite
    from harness.cache import ArtifactCache
    from harness.runner import Runner, load_task

    s = suite.load(args.suite, "quick" if args.quick else "full")
    device = device_mod.resolve(args.device or s.device, where="--device" if args.device else f"{s.path} device:")
    shard = _shard(args.shard)
    carbon = _carbon(args)
    if args.resume and args.out and Path(args.resume) != Path(args.out):
        raise UserError("--resume names the run directory itself; drop --out")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-shard{shard[0]}of{shard[1]}" if shard else ""
    out = Path(args.resume or args.out or Path("results") / s.name / f"{stamp}-{s.profile}{suffix}")
    check_creatable(out, "run directory")  # before any data is read or trained on
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
    _, md, warnings = report.write([out], carbon=carbon)
    for w in warnings:
        print(f"joulebench: warning: {w}", file=sys.stderr)
    print(f"\n## {s.name} ({s.profile}) -> {out}\n")
    print(md)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness import report

    dirs = [Path(d) for d in args.run_dirs]
    if args.out:
        check_creatable(Path(args.out), "report folder")
    _, md, warnings = report.write(dirs, Path(args.out) if args.out else None, carbon=_carbon(args),
                                   with_appendix=args.appendix)
    for w in warnings:
        print(f"joulebench: warning: {w}", file=sys.stderr)
    print(md)
    return 0


def bounded(lo: float, hi: float, kind: type = float, open_low: bool = False):
    """An argparse type: a finite number of ``kind`` from ``lo`` to ``hi`` (``open_low``:
    above ``lo``), checked at parse time (NaN, infinity and out-of-range values are one
    line naming the option, never a hang or a traceback later)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or value > hi or value < lo or (open_low and value == lo):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give a number {'above' if open_low else 'from'} "
                                             f"{lo:g} {'and at most' if open_low else 'to'} {hi:g}")
        return value
    return parse


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import Thresholds, compare

    def dirs(arg: str, side: str) -> list[Path]:
        out = [Path(d) for d in arg.split(",") if d.strip()]
        if not out:  # an unset variable in a CI gate must not pass as "0 regressions"
            raise UserError(f"compare: {side} names no run directory ({arg!r}); pass DIR or DIR1,DIR2,...")
        return out

    lines, code = compare(dirs(args.base, "BASE"), dirs(args.new, "NEW"),
                          Thresholds(args.acc_drop, args.energy_rise, args.alpha, args.windows_as_units),
                          frozenset(args.allow or ()))
    print("\n".join(lines))
    return code


def cmd_merge(args: argparse.Namespace) -> int:
    from harness import report
    from harness.merge import merge

    out = Path(args.out)
    check_creatable(out, "merged run directory")
    for line in merge([Path(d) for d in args.shard_dirs], out):
        print(f"joulebench: {line}", file=sys.stderr)
    _, md, warnings = report.write([out], carbon=_carbon(args))
    print(md)
    return 0


def cmd_meters(args: argparse.Namespace) -> int:
    from harness import device as device_mod, meters

    for name, avail in meters.availability().items():
        state = "available" if avail.available else "BLOCKED" if avail.blocked else "absent"
        print(f"{name:10s} {state:9s} {avail.reason}")
    notes: list[str] = []
    device = device_mod.resolve("auto")
    monitor = meters.build("auto", allow_estimate=True, log=notes.append, device=device)
    try:
        print(f"\ndevice: auto -> {device.name}" + (f" ({device.model})" if device.model else ""))
        print(f"meter: auto -> {monitor.method}")
        for backend in monitor.backends:
            print(f"  {', '.join(backend.components())}: {backend.formula()}")
        for note in notes:
            print(note.replace("joulebench: ", "note: "))
    finally:
        monitor.close()
    return 0


def _series(args: argparse.Namespace):
    """(series, rules, n_runs) of the database, filtered as asked."""
    from harness.history import db, series

    for name in ("energy_rise", "acc_drop"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")
    if args.spread_factor <= 0 or args.window < 1:
        raise UserError("--spread-factor must be > 0 and --window >= 1")
    hist = db.load(Path(args.db), with_records=False)
    rules = series.rules(args.energy_rise, args.acc_drop, args.spread_factor, args.window)
    return series.build(hist.points, rules, args.suite, args.variant), rules, len(hist.runs)


def cmd_history(args: argparse.Namespace) -> int:
    from harness.history import dashboard, db, show

    if args.action == "add":
        for line in db.add(Path(args.db), [Path(d) for d in args.run_dirs]):
            print(f"joulebench: {line}", file=sys.stderr)
        return 0
    found, rules, n_runs = _series(args)
    if not found:
        raise UserError(f"{args.db} holds no series" + (" matching --suite/--variant; check them against "
                                                         "'joulebench history show' without them"
                                                         if args.suite or args.variant else
                                                         " (no finished variant in its runs); add run dirs"))
    if args.action == "show":
        lines, code = show.render(found, rules, args.db, n_runs)
        print("\n".join(lines))
        return code
    path = dashboard.write(found, rules, args.db, n_runs, Path(args.out))
    print(f"joulebench: wrote {path} ({len(found)} series, {n_runs} runs); open it in a browser, no server needed",
          file=sys.stderr)
    return 0


def add_carbon_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--carbon-preset", default="default",
                   help="default (IEA 2019 world grid 475 g/kWh, PUE 1.58) or strubell2019 (0.954 lb/kWh, PUE 1.58)")
    p.add_argument("--grid-g-per-kwh", type=bounded(0, 10_000), help="grid carbon intensity, gCO2e per kWh")
    p.add_argument("--pue", type=bounded(1, 10), help="data-centre power usage effectiveness (>= 1)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="joulebench", description="How much accuracy does each joule buy?")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train, evaluate and measure a suite; write records, tables and plots")
    run.add_argument("suite", help="a suite file, e.g. benchmarks/digits.yaml")
    run.add_argument("--quick", action="store_true", help="use the suite's quick profile (tests, CI)")
    run.add_argument("--out", help="run directory (default results/<suite>/<timestamp>-<profile>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run: do only what is missing")
    run.add_argument("--shard", metavar="i/n", help="run only shard i of n of the (variant x seed) matrix")
    run.add_argument("--data-dir", help="folder that a task's relative data: path is resolved against, e.g. "
                                        "one holding sst2/ (default: $JOULEBENCH_DATA; GLUE presets: else the Hub)")
    run.add_argument("--meter", help="override the suite's meter (auto, estimate, rapl, nvml)")
    run.add_argument("--device", help="override the suite's device: auto (CUDA if torch sees a GPU, else CPU), "
                                      "cpu, cuda or cuda:N")
    run.add_argument("--allow-estimate", action="store_true",
                     help="with meter auto: estimate CPU energy when a RAPL counter exists but cannot be read")
    run.add_argument("--no-cache", action="store_true", help="retrain everything; do not read or write the cache")
    run.add_argument("--cache-dir", help="artifact cache (default $JOULEBENCH_CACHE, else ~/.cache/joulebench)")
    run.add_argument("--skip-if-no-data", action="store_true",
                     help="if the task's data is unreachable, say 'skipped' (exit 3) instead of 'error'")
    add_carbon_options(run)
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="rebuild tables and plots from one or more run directories")
    rep.add_argument("run_dirs", nargs="+")
    rep.add_argument("--out", help="where to write the tables and plots (default: the single run dir)")
    rep.add_argument("--appendix", action="store_true",
                     help="also write appendix.md and appendix.tex: a paper's energy-reporting section for one run")
    add_carbon_options(rep)
    rep.set_defaults(func=cmd_report)
    cmp_ = sub.add_parser("compare", help="BASE vs NEW run dir(s); exit 1 on a regression")
    cmp_.add_argument("base", help="run dir, or several repeated runs as DIR1,DIR2,...")
    cmp_.add_argument("new", help="run dir, or several repeated runs as DIR1,DIR2,...")
    cmp_.add_argument("--acc-drop", type=bounded(0, 1), default=0.01, help="accuracy drop that counts (fraction; 0.01)")
    cmp_.add_argument("--energy-rise", type=bounded(0, 100), default=0.05, help="J/inference rise that counts (0.05 = 5%%)")
    cmp_.add_argument("--alpha", type=bounded(0, 0.5, open_low=True), default=0.05, help="significance level (0.05)")
    cmp_.add_argument("--windows-as-units", action="store_true",
                      help="test energy over windows, not runs (only where an A/A shows little run-to-run drift)")
    cmp_.add_argument("--allow", action="append", choices=("meter", "machine", "config"),
                      help="compare although BASE and NEW differ in this (energy method, machine, resolved config); "
                           "the output says so. Repeatable")
    cmp_.set_defaults(func=cmd_compare)
    mer = sub.add_parser("merge", help="combine shard run dirs into one run dir and table")
    mer.add_argument("shard_dirs", nargs="+")
    mer.add_argument("--out", required=True, help="the merged run directory (new)")
    add_carbon_options(mer)
    mer.set_defaults(func=cmd_merge)
    his = sub.add_parser("history", help="a nightly history: import runs into SQLite, detect steps, write a dashboard")
    hsub = his.add_subparsers(dest="action", required=True)
    hadd = hsub.add_parser("add", help="import run dirs (idempotent, one transaction)")
    hadd.add_argument("run_dirs", nargs="+")
    for name, help_ in (("show", "each series' latest night, its change and its steps; exit 1 when the latest "
                                 "night starts a regression step"),
                        ("html", "write a self-contained dashboard page (index.html) for a browser or CI artifact")):
        h = hsub.add_parser(name, help=help_)
        h.add_argument("--suite", help="only this suite")
        h.add_argument("--variant", help="only this variant id, e.g. bert_tiny.int8")
        h.add_argument("--energy-rise", type=bounded(0, 100), default=0.05,
                       help="smallest J/inference step that counts (0.05 = 5%%)")
        h.add_argument("--acc-drop", type=bounded(0, 1), default=0.01, help="smallest accuracy step that counts (0.01)")
        h.add_argument("--spread-factor", type=bounded(0, 100, open_low=True), default=3.0,
                       help="a step must also exceed this many run-to-run spreads of its series (3)")
        h.add_argument("--window", type=bounded(1, 1000, int), default=7, help="nights in the latest night's rolling baseline (7)")
        if name == "html":
            h.add_argument("--out", required=True, help="folder for index.html")
    for h in (hadd, *hsub.choices.values()):
        if not any(a.dest == "db" for a in h._actions):
            h.add_argument("--db", required=True, help="the history database (SQLite file), e.g. history.sqlite")
    his.set_defaults(func=cmd_history)
    met = sub.add_parser("meters", help="which energy meters exist here, and why any is absent")
    met.set_defaults(func=cmd_meters)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv[1:]  # after the subcommand: recorded so a run says how to reproduce it
    try:
        return args.func(args)
    except UserError as exc:
        print(f"joulebench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the file system said no (full disk, permissions): not a joulebench bug
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"joulebench: error: {exc.strerror or exc}{where}; check the path and free space, then rerun "
              "(with --resume RUN_DIR for an interrupted run)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("joulebench: interrupted", file=sys.stderr)
        return 130
