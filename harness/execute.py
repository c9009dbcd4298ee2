"""The last leg every run from Python shares (``api.run`` of a suite, ``api.bench`` of a
given module): the meter built, the runner run over the task's data, the table written,
and the result handed back as a value."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from harness.config import Suite
from harness.errors import UserError
from harness.progress import log as progress_log


class Interrupted(Exception):
    """The run was interrupted (Ctrl-C); the records finished so far are intact."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"interrupted; the records finished so far are intact in {run_dir}")
        self.run_dir = run_dir


@dataclass
class Result:
    run_dir: Path
    table: pd.DataFrame  # typed, as table.parquet
    markdown: str = ""
    warnings: list[str] = field(default_factory=list)
    status: str = "done"  # or "empty shard"
    suite: str = ""
    profile: str = ""

    @property
    def records(self) -> list:
        from harness.comparable import load_run_dirs

        return load_run_dirs([self.run_dir])[0]


def flag(value: Any, name: str) -> bool:
    """A yes/no argument of the Python API as given, or a UserError naming it (a string
    such as "no" would otherwise read as yes)."""
    if not isinstance(value, bool):
        raise UserError(f"{name}= is True or False, not {type(value).__name__} {str(value)[:40]!r}")
    return value


def typed(table: pd.DataFrame) -> pd.DataFrame:
    from harness import columns
    from harness.report import pick_columns

    return columns.typed(table[pick_columns(None)]) if len(table) else table


def execute(s: Suite, task: Any, run_dir: Path, dev: Any, *, cache: Any = None, meter: str | None = None,
            allow_estimate: bool = False, shard: tuple[int, int] | None = None, resume: bool = False,
            command: list[str] | None = None, log: Callable[[str], None] = progress_log, carbon: Any = None,
            plots: bool = True) -> Result:
    """Run ``s`` over ``task`` into ``run_dir`` (checked creatable by the caller) and
    report it (``plots``: with the figures). Everything that can fail on bad input has
    failed before this is called."""
    from harness import meters, report as report_mod
    from harness.runner import Runner

    meter_cfg = replace(s.meter, name=meter) if meter else s.meter
    monitor = meters.build(meter_cfg, allow_estimate=allow_estimate or s.allow_estimate, device=dev)
    log(f"joulebench: device {dev.name}" + (f" ({dev.model})" if dev.model else "") + f"; meter {monitor.method}")
    try:
        runner = Runner(s, task, monitor, run_dir, cache=cache, shard_spec=shard, device=dev, command=command,
                        log=log)
        runner.run_all(resume=resume)
    except KeyboardInterrupt:
        raise Interrupted(run_dir) from None
    finally:
        monitor.close()
    if cache is not None:
        log(f"joulebench: artifact cache {cache.root}: {len(cache.hits)} hit(s), {len(cache.misses)} miss(es)")
    table, md, warnings = report_mod.write([run_dir], carbon=carbon, plots=plots)
    return Result(run_dir, typed(table), md, warnings, suite=s.name, profile=s.profile)
