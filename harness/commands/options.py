"""Argument types and option groups that several subcommands share."""

from __future__ import annotations

import argparse
import math

from harness.errors import UserError


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


def add_carbon_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--carbon-preset", default="default",
                   help="default (IEA 2019 world grid 475 g/kWh, PUE 1.58) or strubell2019 (0.954 lb/kWh, PUE 1.58)")
    p.add_argument("--grid-g-per-kwh", type=bounded(0, 10_000), help="grid carbon intensity, gCO2e per kWh")
    p.add_argument("--pue", type=bounded(1, 10), help="data-centre power usage effectiveness (>= 1)")


def add_plots_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="write the tables without the figures (seconds per run: a nightly gate, a shard that a merge "
                        "draws again)")


def add_decide_options(p: argparse.ArgumentParser) -> None:
    """Overrides of a suite's ``decide:`` (the verdict vs the parent; docs/statistics.md)."""
    p.add_argument("--accuracy-margin", type=bounded(0, 0.5), metavar="SHARE",
                   help="accuracy a variant may lose and still be 'not worse' (0.01 = one point; suite decide: "
                        "default 0.01)")
    p.add_argument("--accuracy-alpha", type=bounded(0, 0.5, open_low=True), help="the non-inferiority test's level")
    p.add_argument("--energy-alpha", type=bounded(0, 0.5, open_low=True), help="the 'cheaper' test's level")


def decide(args: argparse.Namespace) -> dict[str, float]:
    from harness.finished import overrides

    return overrides(accuracy_margin=args.accuracy_margin, accuracy_alpha=args.accuracy_alpha,
                     energy_alpha=args.energy_alpha)


def carbon(args: argparse.Namespace):
    """The carbon settings the carbon options name (ranges were checked at parse time)."""
    from harness.lifecycle import PRESETS, carbon_from

    if args.carbon_preset not in PRESETS:
        raise UserError(f"unknown carbon preset {args.carbon_preset!r}; use one of: {', '.join(PRESETS)}")
    return carbon_from(args.carbon_preset, args.grid_g_per_kwh, args.pue)
