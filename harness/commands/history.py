"""``joulebench history add | show | html``: a nightly history in SQLite, its steps, a dashboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.options import bounded
from harness.errors import UserError

NAME = "history"


def add(sub) -> None:
    his = sub.add_parser(NAME, help="a nightly history: import runs into SQLite, detect steps, write a dashboard")
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
        h.add_argument("--work-rise", type=bounded(0, 100), default=0.02,
                       help="smallest relative rise of instructions per inference that counts (0.02)")
        h.add_argument("--acc-drop", type=bounded(0, 1), default=0.01, help="smallest accuracy step that counts (0.01)")
        h.add_argument("--spread-factor", type=bounded(0, 100, open_low=True), default=3.0,
                       help="a step must also exceed this many run-to-run spreads of its series (3)")
        h.add_argument("--window", type=bounded(1, 1000, int), default=7,
                       help="nights in the latest night's rolling baseline (7)")
        if name == "html":
            h.add_argument("--out", required=True, help="folder for index.html")
    for h in hsub.choices.values():
        h.add_argument("--db", required=True, help="the history database (SQLite file), e.g. history.sqlite")
    his.set_defaults(func=run)


def _series(args: argparse.Namespace):
    """(series, rules, n_runs) of the database, filtered as asked (ranges were checked at parse time)."""
    from harness.history import db, series

    hist = db.load(Path(args.db), with_records=False)
    rules = series.rules(args.energy_rise, args.acc_drop, args.spread_factor, args.window, args.work_rise)
    return series.build(hist.points, rules, args.suite, args.variant), rules, len(hist.runs)


def run(args: argparse.Namespace) -> int:
    from harness import history
    from harness.history import dashboard, show

    if args.action == "add":
        for line in history.add(Path(args.db), [Path(d) for d in args.run_dirs]):
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
