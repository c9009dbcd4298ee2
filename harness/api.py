"""joulebench from Python: run a suite and get its table back, report runs, compare them.

    from harness import api

    result = api.run("benchmarks/digits.yaml", quick=True, out="runs/digits")
    result.table            # the typed DataFrame of table.parquet (columns.py declares each column)
    result.records          # the RunRecords behind it
    api.report([result.run_dir])                 # the table again, from the run folder
    api.compare(["runs/a"], ["runs/b"]).exit_code  # 1 on a regression

    with api.track("fine-tune") as w:   # a window over your own code (track.py)
        my_training_loop(model)
    w.energy_J, w.method, w.status      # resolved, or bounded (an upper bound)

``joulebench run`` is a thin layer over ``run``: it parses the command line, calls it,
and prints. Nothing here keeps state between calls: two ``run`` calls in one process
give the same tables as two command-line runs. Bad input raises ``UserError`` (one
line) before the run folder exists, as on the command line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import pandas as pd

from harness import suite as suite_mod
from harness.config import Suite
from harness.errors import DataUnavailable, UserError
from harness.files import check_creatable
from harness.track import Window, track

if TYPE_CHECKING:  # compare (and scipy) only when compare is called: a run's bad input is told fast
    from harness.compare import Comparison, Thresholds

__all__ = ["Interrupted", "Result", "Window", "compare", "load_suite", "report", "run", "track"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


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


def load_suite(suite: str | Path | Mapping[str, Any] | Suite, quick: bool = False,
               overrides: Mapping[str, Any] | None = None) -> Suite:
    """A suite from a YAML file, a mapping as the YAML would hold it, or a Suite; with
    ``overrides`` merged into it (e.g. ``{"measure": {"work": "instructions"}}``)."""
    profile = "quick" if quick else "full"
    if isinstance(suite, Suite):
        s = suite
    elif isinstance(suite, Mapping):
        s = suite_mod.parse(dict(suite), "suite mapping", profile)
    elif isinstance(suite, (str, Path)):
        s = suite_mod.load(suite, profile)
    else:
        raise UserError(f"a suite is a YAML file's path, a mapping or a Suite, not {type(suite).__name__}")
    if overrides is not None and not isinstance(overrides, Mapping):
        raise UserError(f"overrides are a mapping of suite keys, not {type(overrides).__name__}")
    return suite_mod.with_overrides(s, overrides) if overrides else s


def run(suite: str | Path | Mapping[str, Any] | Suite, *, quick: bool = False, out: str | Path | None = None,
        resume: str | Path | None = None, shard: tuple[int, int] | None = None, data_dir: str | Path | None = None,
        meter: str | None = None, device: str | None = None, allow_estimate: bool = False,
        cache_dir: str | Path | None = None, no_cache: bool = False, work: str | None = None,
        work_batches: int | None = None,
        carbon: Any = None, command: list[str] | None = None, log: Callable[[str], None] = _stderr,
        **overrides: Any) -> Result:
    """Plan -> obtain each variant (make or load) -> deploy -> evaluate -> count ->
    measure -> record, then the tables. ``overrides`` are suite keys (``measure={...}``,
    ``seeds=[0]``) merged into the suite as if written there."""
    from harness import device as device_mod

    if shard is not None:
        from harness.plan import check_shard

        shard = check_shard(shard)
    over = dict(overrides)
    if work:
        over = suite_mod._deep_merge(over, {"measure": {"work": work}})
    if work_batches is not None:
        over = suite_mod._deep_merge(over, {"measure": {"work_batches": work_batches}})
    s = load_suite(suite, quick, over)
    dev = device_mod.resolve(device or s.device, where="--device" if device else f"{s.path} device:")
    if resume and out and Path(resume) != Path(out):
        raise UserError("--resume names the run directory itself; drop --out")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-shard{shard[0]}of{shard[1]}" if shard else ""
    run_dir = Path(resume or out or Path("results") / s.name / f"{stamp}-{s.profile}{suffix}")
    check_creatable(run_dir, "run directory")  # before any data is read or trained on
    command = command or ["harness.api.run", str(getattr(s, "path", ""))]
    # the heavy modules only now: bad input above is told in the time it takes to import torch
    from harness import meters, report as report_mod
    from harness.cache import ArtifactCache
    from harness.runner import Runner, load_task

    if shard:
        from harness.plan import expand, shard as shard_of

        planned = expand(s)
        if not shard_of(planned, *shard):  # a Slurm array wider than the matrix: normal, not an error
            from harness.rundir import write_empty_shard

            write_empty_shard(run_dir, {"name": s.name, "path": s.path, "profile": s.profile,
                                        "config_hash": s.config_hash()}, shard, command)
            log(f"joulebench: shard {shard[0]}/{shard[1]} of {s.name} holds none of its {len(planned)} runs; "
                f"nothing to do ({run_dir} is an empty shard that merge skips)")
            return Result(run_dir, pd.DataFrame(), status="empty shard", suite=s.name, profile=s.profile)
    try:
        task = load_task(s, Path(data_dir) if data_dir else None)
    except DataUnavailable as exc:
        exc.suite = s.name  # the command line says which suite it skips
        raise
    cache = None if no_cache else ArtifactCache(Path(cache_dir) if cache_dir else None)
    meter_cfg = replace(s.meter, name=meter) if meter else s.meter
    monitor = meters.build(meter_cfg, allow_estimate=allow_estimate or s.allow_estimate, device=dev)
    log(f"joulebench: device {dev.name}" + (f" ({dev.model})" if dev.model else "") + f"; meter {monitor.method}")
    try:
        runner = Runner(s, task, monitor, run_dir, cache=cache, shard_spec=shard, device=dev, command=command,
                        log=log)
        runner.run_all(resume=bool(resume))
    except KeyboardInterrupt:
        raise Interrupted(run_dir) from None
    finally:
        monitor.close()
    if cache is not None:
        log(f"joulebench: artifact cache {cache.root}: {len(cache.hits)} hit(s), {len(cache.misses)} miss(es)")
    table, md, warnings = report_mod.write([run_dir], carbon=carbon)
    return Result(run_dir, _typed(table), md, warnings, suite=s.name, profile=s.profile)


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    from harness import columns
    from harness.report import pick_columns

    return columns.typed(table[pick_columns(None)]) if len(table) else table


def report(run_dirs: list[str | Path], out: str | Path | None = None, carbon: Any = None) -> pd.DataFrame:
    """The typed table of one or several run folders (written into ``out``, or into the
    one run folder; with several and no ``out``, nothing is written)."""
    from harness import report as report_mod

    table, _, _ = report_mod.write([Path(d) for d in run_dirs], Path(out) if out else None, carbon=carbon)
    return _typed(table)


def compare(base: list[str | Path], new: list[str | Path], thresholds: "Thresholds | None" = None,
            allow: frozenset[str] = frozenset()) -> "Comparison":
    """The verdicts of NEW against BASE (``.exit_code``: 1 on a regression;
    ``compare.render`` prints them as the command line does)."""
    from harness.compare import Thresholds, decide

    return decide([Path(d) for d in base], [Path(d) for d in new], thresholds or Thresholds(), allow)
