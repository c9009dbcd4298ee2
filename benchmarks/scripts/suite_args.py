"""The command line the benchmark scripts share: a suite, its profile, a data folder."""

from __future__ import annotations

import argparse


def parse(description: str, runs: int | None = None, passed: tuple[str, ...] = (),
          own: dict[str, str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """(args, the extra options to pass to ``joulebench run``); ``passed``: options of
    ``joulebench run`` taking one value that the script forwards as given; ``own``: the
    script's own options taking one value (flag: help), not forwarded."""
    ap = argparse.ArgumentParser(description=description)
    for flag, help_ in (own or {}).items():
        ap.add_argument(flag, help=help_)
    for flag in passed:
        ap.add_argument(flag, help=f"passed to joulebench run {flag}")
    if runs is not None:
        ap.add_argument("--runs", type=int, default=runs, help=f"runs per side ({runs})")
    ap.add_argument("suite", nargs="?", default="benchmarks/digits.yaml")
    ap.add_argument("--full", action="store_true", help="full profile (default: quick)")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    extra = ([] if args.full else ["--quick"]) + (["--data-dir", args.data_dir] if args.data_dir else [])
    for flag in passed:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            extra += [flag, value]
    return args, extra
