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
    result = api.bench(model, eval_data=(X, y), variants=[...], creation=w)  # your module down the ladder (bench.py)

Everything public is listed in ``__all__``: these calls, and the names a plugin or your
own code builds on (``Technique``, ``CompressContext``, ``train``, ``TECHNIQUES``, ...),
resolved on first use so that importing this module stays light.

``joulebench run`` is a thin layer over ``run``: it parses the command line, calls it,
and prints. Nothing here keeps state between calls: two ``run`` calls in one process
give the same tables as two command-line runs. Bad input raises ``UserError`` (one
line) before the run folder exists, as on the command line.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import pandas as pd

from harness import suite as suite_mod, suite_file
from harness.config import Suite
from harness.errors import DataUnavailable, UserError
from harness.files import check_creatable
from harness.bench import bench
from harness.execute import Interrupted, Result, execute, flag, typed as _typed
from harness.progress import log as _log
from harness.track import Window, track

if TYPE_CHECKING:  # compare (and scipy) only when compare is called: a run's bad input is told fast
    from harness.compare import Comparison, Thresholds

#: The names a plugin (or your own code) builds on, by the module that defines them.
PLUGIN_NAMES = {
    "harness.compress": ("TECHNIQUES", "Technique", "CompressContext", "CompressResult", "NoParams"),
    "harness.models": ("MODELS", "ModelBundle", "Encoded"),
    "harness.tasks": ("TASKS", "TaskData", "Split"),
    "harness.runtimes": ("RUNTIMES", "Runtime"),
    "harness.meters.base": ("METERS", "Backend"),
    "harness.registry": ("between",),
    "harness.errors": ("VariantSkipped",),
    "harness.train": ("train",),
    "harness.inspection": ("prunable_weights", "measured_sparsity"),
}
_PLUGIN = {name: module for module, names in PLUGIN_NAMES.items() for name in names}

__all__ = ["Interrupted", "Result", "UserError", "Window", "bench", "compare", "load_suite", "report", "run",
           "track", *_PLUGIN]


def __getattr__(name: str) -> Any:
    """A plugin name, imported when first asked for (``from harness.api import Technique``)."""
    if name in _PLUGIN:
        import importlib

        return getattr(importlib.import_module(_PLUGIN[name]), name)
    raise AttributeError(f"module 'harness.api' has no attribute {name!r}")


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
        work_batches: int | str | None = None, plots: bool = True,
        carbon: Any = None, command: list[str] | None = None, log: Callable[[str], None] = _log,
        **overrides: Any) -> Result:
    """Plan -> obtain each variant (make or load) -> deploy -> evaluate -> count ->
    measure -> record, then the tables (and the figures, unless ``plots=False``).
    ``overrides`` are suite keys (``measure={...}``, ``seeds=[0]``) merged into the suite
    as if written there."""
    from harness import device as device_mod

    plots = flag(plots, "api.run plots")
    if shard is not None:
        from harness.plan import check_shard

        shard = check_shard(shard)
    over = dict(overrides)
    if work:
        over = suite_file.deep_merge(over, {"measure": {"work": work}})
    if work_batches is not None:
        over = suite_file.deep_merge(over, {"measure": {"work_batches": work_batches}})
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
    from harness.cache import ArtifactCache
    from harness.runner import load_task

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
    return execute(s, task, run_dir, dev, cache=cache, meter=meter, allow_estimate=allow_estimate, shard=shard,
                   resume=bool(resume), command=command, log=log, carbon=carbon, plots=plots)


def report(run_dirs: list[str | Path], out: str | Path | None = None, carbon: Any = None,
           plots: bool = True) -> pd.DataFrame:
    """The typed table of one or several run folders (written into ``out``, or into the
    one run folder, with the figures unless ``plots=False``; with several and no
    ``out``, nothing is written)."""
    from harness import report as report_mod

    table, _, _ = report_mod.write([Path(d) for d in run_dirs], Path(out) if out else None, carbon=carbon,
                                   plots=flag(plots, "api.report plots"))
    return _typed(table)


def compare(base: list[str | Path], new: list[str | Path], thresholds: "Thresholds | None" = None,
            allow: frozenset[str] = frozenset()) -> "Comparison":
    """The verdicts of NEW against BASE (``.exit_code``: 1 on a regression;
    ``compare.render`` prints them as the command line does)."""
    from harness.compare import Thresholds, decide

    return decide([Path(d) for d in base], [Path(d) for d in new], thresholds or Thresholds(), allow)
