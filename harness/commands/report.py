"""``joulebench report DIR...``: rebuild tables and plots from run directories."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.options import add_carbon_options, add_decide_options, add_plots_option, carbon, decide
from harness.files import check_creatable

NAME = "report"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="rebuild tables and plots from one or more run directories")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", help="where to write the tables and plots (default: the single run dir)")
    p.add_argument("--appendix", action="store_true",
                   help="also write appendix.md and appendix.tex: a paper's energy-reporting section for one run")
    p.add_argument("--columns", type=column_list, metavar="A,B,...",
                   help="only these columns, in this order, in every format (names as in columns.csv)")
    add_plots_option(p)
    add_carbon_options(p)
    add_decide_options(p)
    p.set_defaults(func=run)


def column_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one column, e.g. --columns variant_id,accuracy,J_per_inference")
    return names


def run(args: argparse.Namespace) -> int:
    from harness import report

    dirs = [Path(d) for d in args.run_dirs]
    if args.out:
        check_creatable(Path(args.out), "report folder")
    _, md, warnings = report.write(dirs, Path(args.out) if args.out else None, carbon=carbon(args),
                                   with_appendix=args.appendix, select=args.columns, decide=decide(args),
                                   plots=args.plots)
    for w in warnings:
        print(f"joulebench: warning: {w}", file=sys.stderr)
    print(md)
    return 0
