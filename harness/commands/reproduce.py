"""``joulebench reproduce RUN_DIR``: rerun a run's recorded configuration here and say, per
variant and figure, whether it reproduced (exit 1 when a figure differs unexpectedly)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME = "reproduce"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="rerun a run folder's recorded configuration; compare every figure with it")
    p.add_argument("run_dir", help="a run folder 'joulebench run' wrote, e.g. results/reference/digits")
    p.add_argument("--out", help="where the rerun and reproduction.md/.json go (default results/reproduce/...)")
    p.add_argument("--quick-subset", action="store_true",
                   help="rerun the first recorded seed only (the same configuration, fewer models)")
    p.add_argument("--allow", action="append", choices=("versions", "data"),
                   help="rerun although package versions or the task's data differ from the record. Repeatable")
    p.add_argument("--data-dir", help="folder a task's relative data: path is resolved against "
                                      "(default: $JOULEBENCH_DATA)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import reproduce

    data = args.data_dir or os.environ.get("JOULEBENCH_DATA")
    code, md = reproduce.run(Path(args.run_dir), Path(args.out) if args.out else None, args.quick_subset,
                             frozenset(args.allow or ()), Path(data) if data else None)
    print(md)
    return code
