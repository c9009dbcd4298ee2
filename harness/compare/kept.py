"""``compare --non-inferiority MARGIN``: did a variant that was "cheaper, not worse" than
its parent in BASE stop being so in NEW? Each side's verdicts are the report's own
(finished.table, decisions.py) with the accuracy margin set to MARGIN; a variant that
loses its verdict is a regression (exit 1), one that gains it is said."""

from __future__ import annotations

from pathlib import Path

from harness import finished
from harness.comparable import load_runs
from harness.decisions import CHEAPER_NOT_WORSE


def verdicts(dirs: list[Path], margin: float) -> dict[tuple[str, str], str | None]:
    runs = load_runs(dirs)
    table = finished.table([r for run in runs for r in run.records],
                           decide=finished.decide_settings(runs, {"accuracy_margin": margin}))
    return {(str(r["task"]), str(r["variant_id"])): (r["verdict"] if isinstance(r["verdict"], str) else None)
            for _, r in table.iterrows()}


def kept(base_dirs: list[Path], new_dirs: list[Path], margin: float) -> tuple[list[str], int]:
    """(lines, exit code): every variant "cheaper, not worse" on either side, and what it is on the other."""
    base, new = verdicts(base_dirs, margin), verdicts(new_dirs, margin)
    lines = [f"Non-inferiority at an accuracy margin of {margin:g} (verdict vs the parent, each side on its own; "
             "docs/statistics.md):"]
    lost = 0
    for key in sorted(set(base) | set(new)):
        was, now = base.get(key), new.get(key)
        if was != CHEAPER_NOT_WORSE and now != CHEAPER_NOT_WORSE:
            continue
        name = key[1]
        if was == CHEAPER_NOT_WORSE and now != CHEAPER_NOT_WORSE:
            lost += 1
            lines.append(f"  {name}  BASE: {was}; NEW: {now or 'absent'}  REGRESSION: no longer cheaper, not worse")
        elif was == now:
            lines.append(f"  {name}  {now} on both sides")
        else:
            lines.append(f"  {name}  BASE: {was or 'absent'}; NEW: {now}  (gained)")
    if len(lines) == 1:
        lines.append("  no variant is cheaper, not worse on either side")
    lines.append(f"{lost} variant(s) lost 'cheaper, not worse'.")
    return lines, 1 if lost else 0
