"""Whether runs were measured the same way: the one comparability key.

A run's key is its facets, each read from the run folder once, here:

- ``machine``: host, CPU (as the kernels see it: ISA flags, torch's CPU capability),
  cores, GPUs and the device the run used;
- ``meter``: the energy methods of its inference windows;
- ``code``: the digest of the measuring code (measure.py, meters/, runtimes/, runner,
  workshop, evaluate, counts, work; ``environment.MEASURE_SOURCES``), or, for a record
  made before the digest existed, its commit (another commit may measure otherwise);
- ``config``: the resolved run configs (suite, profile, measurement settings);
- ``packages``: the versions an unchanged model runs through.

``compare`` refuses or withholds on a difference (``--allow`` names the first three
kinds), ``report`` refuses to pool runs of one suite that differ, and the history's
series start a new segment where a night's ``code`` differs from the last one's
(machine and meter are already in the series' key, and package versions are what a
nightly watches change). The model itself (the artifact keys) is not a facet: it is
what a comparison compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from harness import rundir
from harness.errors import UserError
from harness.files import digest
from harness.records import RunRecord
from harness.rundir import RunDir

#: Package versions that change the code an unchanged model runs through.
PACKAGES = ("python", "torch", "transformers", "numpy", "joulebench")

#: The facets, in the order differences are told.
FACETS = ("meter", "machine", "config", "code", "packages")


def machine(fp: dict[str, Any]) -> dict[str, Any]:
    """The machine a run was measured on, from its fingerprint (keys a run does not
    record are left out: older runs keep what they have)."""
    dev = fp.get("device") or {}
    parts = {"host": fp.get("host"), "cpu_model": fp.get("cpu_model"), "logical_cpus": fp.get("logical_cpus"),
             "gpu": fp.get("gpu"), "device": dev.get("name", "cpu"), "device_model": dev.get("model")}
    parts.update(fp.get("machine") or {})  # the CPU as the kernels see it (ISA flags, torch's capability)
    return parts


def machine_key(fp: dict[str, Any]) -> tuple[str, str]:
    """(key, label) of the machine: a short digest and the machine in words."""
    dev = fp.get("device") or {}
    parts = {k: v for k, v in machine(fp).items() if k in ("host", "cpu_model", "logical_cpus", "gpu", "device",
                                                            "device_model")}
    if fp.get("machine"):  # runs that predate the ISA description keep their old key
        parts["machine"] = fp["machine"]
    device = dev.get("name", "cpu") + (f" {dev['model']}" if dev.get("model") else "")
    cap = (fp.get("machine") or {}).get("torch_cpu_capability")
    label = (f"{fp.get('host') or 'unknown host'} ({device}; {fp.get('cpu_model') or '?'} x{fp.get('logical_cpus') or '?'}"
             f"{', ' + cap if cap else ''})")
    return digest(parts, 12), label


def code(fp: dict[str, Any]) -> str | None:
    """The measuring code: its digest, or ``commit <sha>`` for a run made before the digest
    was recorded; None where neither is known."""
    if fp.get("measure_code"):
        return str(fp["measure_code"])
    return f"commit {str(fp['git_commit'])[:8]}" if fp.get("git_commit") else None


def facets(run: RunDir) -> dict[str, Any]:
    """The run's key, facet by facet."""
    fp = run.fingerprint
    return {"meter": "+".join(sorted({w.method for r in run.records if r.ok for w in r.inference.windows})),
            "machine": machine(fp),
            "config": ", ".join(sorted({str(r.config_hash) for r in run.records})),
            "code": code(fp),
            "packages": {k: fp.get(k) for k in PACKAGES}}


def _words(kind: str, a: set[str], b: set[str]) -> str:
    return f"{kind} {'/'.join(sorted(a))} vs {'/'.join(sorted(b))}"


def differences(base: Iterable[RunDir], new: Iterable[RunDir]) -> dict[str, str]:
    """What differs between two groups of runs, by facet, in words; empty when they were
    measured the same way. A key one side does not record (older runs) is not a difference."""
    sides = [[facets(run) for run in side] for side in (base, new)]
    out: dict[str, str] = {}
    for facet in FACETS:
        if facet in ("machine", "packages"):
            keys = sorted({k for side in sides for f in side for k in f[facet]})
            differ = []
            for k in keys:
                values = [{repr(f[facet][k]) for f in side if k in f[facet] and f[facet][k] is not None}
                          for side in sides]
                if values[0] and values[1] and values[0] != values[1]:
                    differ.append(_words(k, *values))
            if differ:
                out[facet] = "; ".join(differ)
            continue
        values = [{str(f[facet]) for f in side if f[facet]} for side in sides]
        if values[0] and values[1] and values[0] != values[1]:
            out[facet] = _words({"code": "measuring code", "config": "resolved config"}.get(facet, facet), *values)
    return out


def split(runs: list[RunDir]) -> dict[str, str]:
    """What differs among runs meant to be pooled (each against the first), by facet."""
    out: dict[str, str] = {}
    for run in runs[1:]:
        for facet, words in differences(runs[:1], [run]).items():
            out.setdefault(facet, f"{runs[0].path} and {run.path}: {words}")
    return out


def load_run_dirs(run_dirs: Iterable[Path]) -> tuple[list[RunRecord], list[str]]:
    """Records of every run dir, each run once, and the warnings (``load_runs``)."""
    runs = load_runs(run_dirs)
    return [r for run in runs for r in run.records], [w for run in runs for w in run.warnings]


def load_runs(run_dirs: Iterable[Path]) -> list[RunDir]:
    """Every run dir, each run once (rundir.py: the one reader and its checks). Runs of
    one suite are pooled only where they were measured the same way (the comparability
    key, comparable.py, that compare and the history use too)."""
    runs = rundir.read_many(Path(d) for d in run_dirs)
    suites: dict[str, list[rundir.RunDir]] = {}
    for run in runs:
        suites.setdefault(str(run.suite.get("name") or run.records[0].suite), []).append(run)
    for name, group in suites.items():
        differ = {k: v for k, v in split(group).items() if k in POOLED_ONLY_IF_SAME}
        if differ:
            raise UserError(f"runs of suite {name!r} were measured differently and cannot be pooled into one row "
                            f"({'; '.join(differ.values())}): report them one at a time, or compare them with "
                            "`joulebench compare`")
    return runs


#: What runs pooled into one row must share (comparable.FACETS): package versions are
#: what a nightly watches change, and are told apart by compare, not refused.
POOLED_ONLY_IF_SAME = ("meter", "machine", "config", "code")


def provenance(group: list[RunRecord]) -> dict[str, str | None]:
    """Which runs a table row pools, from its records: run identity, commit, machine key,
    profile, start and version (several values comma-separated, sorted)."""
    def joined(values: Iterable[Any]) -> str | None:
        kept = sorted({str(v) for v in values if v not in (None, "")})
        return ", ".join(kept) if kept else None

    fps = [r.fingerprint for r in group]
    return {"run_id": joined(r.run for r in group),
            "git_commit": joined(f"{fp['git_commit'][:12]}{'-dirty' if fp.get('git_dirty') else ''}"
                                 for fp in fps if fp.get("git_commit")),
            "machine": joined(machine_key(fp)[0] for fp in fps if fp),
            "profile": joined(r.profile for r in group),
            "started_at": min((r.started_at for r in group if r.started_at), default=None),
            "joulebench_version": joined(fp.get("joulebench") for fp in fps)}
