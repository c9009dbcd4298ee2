"""``joulebench merge SHARD... --out DIR``: combine shard run dirs into one run dir and table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.options import add_carbon_options, carbon
from harness.files import check_creatable

NAME = "merge"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="combine shard run dirs into one run dir and table")
    p.add_argument("shard_dirs", nargs="+")
    p.add_argument("--out", required=True, help="the merged run directory (new)")
    add_carbon_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import report
    from harness.merge import merge

    out = Path(args.out)
    check_creatable(out, "merged run directory")
    for line in merge([Path(d) for d in args.shard_dirs], out):
        print(f"joulebench: {line}", file=sys.stderr)
    _, md, warnings = report.write([out], carbon=carbon(args))
    print(md)
    return 0
