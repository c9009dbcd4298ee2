"""``joulebench compare BASE NEW``: exit 1 on a regression of NEW against BASE."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.options import bounded
from harness.errors import UserError

NAME = "compare"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="BASE vs NEW run dir(s); exit 1 on a regression")
    p.add_argument("base", help="run dir, or several repeated runs as DIR1,DIR2,...")
    p.add_argument("new", help="run dir, or several repeated runs as DIR1,DIR2,...")
    p.add_argument("--acc-drop", type=bounded(0, 1), default=0.01, help="accuracy drop that counts (fraction; 0.01)")
    p.add_argument("--energy-rise", type=bounded(0, 100), default=0.05, help="J/inference rise that counts (0.05 = 5%%)")
    p.add_argument("--work-rise", type=bounded(0, 100), default=0.02,
                   help="instructions-per-inference rise that counts (0.02 = 2%%; one run per side decides)")
    p.add_argument("--alpha", type=bounded(0, 0.5, open_low=True), default=0.05, help="significance level (0.05)")
    p.add_argument("--windows-as-units", action="store_true",
                   help="test energy over windows, not runs (only where an A/A shows little run-to-run drift)")
    p.add_argument("--allow", action="append", choices=("meter", "machine", "config"),
                   help="compare although BASE and NEW differ in this (energy method, machine, resolved config); "
                        "the output says so. Repeatable")
    p.add_argument("--non-inferiority", type=bounded(0, 0.5), metavar="MARGIN",
                   help="also gate on the verdict vs the parent: exit 1 when a variant that was 'cheaper, not worse' "
                        "at this accuracy margin (0.01 = one point) in BASE no longer is in NEW")
    p.set_defaults(func=run)


def _dirs(arg: str, side: str) -> list[Path]:
    out = [Path(d) for d in arg.split(",") if d.strip()]
    if not out:  # an unset variable in a CI gate must not pass as "0 regressions"
        raise UserError(f"compare: {side} names no run directory ({arg!r}); pass DIR or DIR1,DIR2,...")
    return out


def run(args: argparse.Namespace) -> int:
    from harness.compare import Thresholds, compare

    lines, code = compare(_dirs(args.base, "BASE"), _dirs(args.new, "NEW"),
                          Thresholds(args.acc_drop, args.energy_rise, args.alpha, args.windows_as_units, args.work_rise),
                          frozenset(args.allow or ()))
    if args.non_inferiority is not None:
        from harness.compare.kept import kept

        more, worse = kept(_dirs(args.base, "BASE"), _dirs(args.new, "NEW"), args.non_inferiority)
        lines, code = lines + [""] + more, max(code, worse)
    print("\n".join(lines))
    return code
