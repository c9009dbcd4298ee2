"""The command line the benchmark scripts share: a suite, its profile, a data folder."""

from __future__ import annotations

import argparse


def parse(description: str, runs: int | None = None) -> tuple[argparse.Namespace, list[str]]:
    """(args, the extra options to pass to ``joulebench run``)."""
    ap = argparse.ArgumentParser(description=description)
    if runs is not None:
        ap.add_argument("--runs", type=int, default=runs, help=f"runs per side ({runs})")
    ap.add_argument("suite", nargs="?", default="benchmarks/digits.yaml")
    ap.add_argument("--full", action="store_true", help="full profile (default: quick)")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    extra = ([] if args.full else ["--quick"]) + (["--data-dir", args.data_dir] if args.data_dir else [])
    return args, extra
