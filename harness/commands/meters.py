"""``joulebench meters``: which energy meters exist here, and why any is absent."""

from __future__ import annotations

import argparse

NAME = "meters"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="which energy meters exist here, and why any is absent")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
