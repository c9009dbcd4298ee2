"""``joulebench plugins``: the entries other installed packages add to each registry."""

from __future__ import annotations

import argparse

NAME = "plugins"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="list the techniques, runtimes, tasks, models and meters installed packages add")
    p.set_defaults(func=run)


def registries() -> dict[str, object]:
    """Every registry, by the kind its entry-point group names."""
    from harness.compress import TECHNIQUES
    from harness.meters import METERS
    from harness.models import MODELS
    from harness.runtimes import RUNTIMES
    from harness.tasks import TASKS

    return {r.kind: r for r in (TECHNIQUES, RUNTIMES, TASKS, MODELS, METERS)}


def run(args: argparse.Namespace) -> int:
    found = 0
    for kind, registry in registries().items():
        plugins = registry.plugins()
        print(f"{registry.group} ({kind}): " + ("none" if not plugins else ""))
        for p in plugins:
            found += 1
            state = f"FAILED: {p.error}" if p.error else "loaded"
            print(f"  {p.name:20s} {p.distribution:32s} {p.value}  {state}")
    if not found:
        print("\nno plugin installed; a package adds one with an entry point in one of these groups "
              "(docs/extending.md)")
    return 0
