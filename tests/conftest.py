"""Shared fixtures. Fakes live only at hardware boundaries; data and training are real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_SST2 = ROOT.parent / "shared" / "data" / "sst2"


def run_cli(*args: str, env: dict[str, str | None] | None = None, cwd: Path = ROOT, timeout: int = 900):
    """Run ``python -m harness`` for real, as a user would; returns the CompletedProcess.

    GPUs are hidden (CUDA_VISIBLE_DEVICES="") unless ``env`` sets it: the CLI tests are CPU
    runs on every machine, so they pass alike with and without a GPU; the GPU tests pass
    ``gpu_env()``."""
    full_env = {k: v for k, v in os.environ.items() if k != "JOULEBENCH_DATA"}
    full_env["HF_HUB_OFFLINE"] = "1"  # tests never touch the Hub
    full_env["CUDA_VISIBLE_DEVICES"] = ""
    full_env.update(env or {})
    full_env = {k: v for k, v in full_env.items() if v is not None}  # None: unset it
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def cli(*args: str, env: dict[str, str | None] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``joulebench`` in this process, for the commands that must fail (or finish) before
    any real work: the same ``main`` with the same environment as ``run_cli`` (Hub
    offline, no JOULEBENCH_DATA), without paying a new interpreter and torch import
    (~7 s) each time. An exception that escapes ``main`` fails the test with its
    traceback, as it would show one to a user. Runs that train and measure keep
    ``run_cli``: a fresh process is what they measure (imports, threads, cold caches)."""
    import contextlib
    import io

    from harness.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.pop("JOULEBENCH_DATA", None)
        os.environ["HF_HUB_OFFLINE"] = "1"
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: a bad argument, or --help
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(["joulebench", *args], code, out.getvalue(), err.getvalue())


def gpu_env() -> dict[str, str | None]:
    """The caller's own GPU visibility (None: unset), for the tests that run on a GPU."""
    return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}


@pytest.fixture(scope="session")
def shared_sst2() -> Path:
    if not (SHARED_SST2 / "train.tsv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs SST-2 at {SHARED_SST2} (../shared beside the clone)")
        pytest.skip(f"SST-2 not found at {SHARED_SST2}")
    return SHARED_SST2


@pytest.fixture(scope="session")
def sst2_slice(shared_sst2: Path, tmp_path_factory) -> Path:
    """A GLUE-format folder holding sst2/ with the first rows of the real files."""
    root = tmp_path_factory.mktemp("glue")
    folder = root / "sst2"
    folder.mkdir()
    for name, rows in (("train.tsv", 3000), ("validation.tsv", 300)):
        lines = (shared_sst2 / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / name).write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def spine_suite(folder: Path, keep_runtimes: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> Path:
    """benchmarks/digits.yaml without its rows under a runtime other than ``keep_runtimes``
    (and without the variants ``drop``), for the tests of the run's spine (kill, resume,
    cache provenance, shards), which would otherwise pay a cold torch.compile on every
    run. Returns the suite file written into ``folder``."""
    import yaml

    raw = yaml.safe_load((ROOT / "benchmarks" / "digits.yaml").read_text())
    for where in (raw, raw.get("quick") or {}):
        if "variants" in where:
            where["variants"] = [v for v in where["variants"] if v["id"] not in drop
                                 and ("runtime" not in v or v["runtime"] in keep_runtimes)]
    path = folder / "digits_spine.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


RUNTIME_ROWS = ("cnn.ort", "cnn.ort_int8", "cnn.compiled")  # the digits suite's runtime rows


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory, cache_dir: Path) -> Path:
    """One real quick digits run, shared by the tests that read its outputs. It fills a
    fresh artifact cache, which the cache test then reuses."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    # --device cpu: the CPU ladder (int8 runs, fp16 is skipped) on any machine; a GPU
    # box meters it with RAPL or the estimate and leaves its idle GPUs out
    proc = run_cli("run", "benchmarks/digits.yaml", "--quick", "--device", "cpu", "--out", str(out),
                   env={"JOULEBENCH_CACHE": str(cache_dir)})
    assert proc.returncode == 0, proc.stderr
    (out / "stdout.txt").write_text(proc.stdout)
    (out / "stderr.txt").write_text(proc.stderr)
    return out


def window_meta(energy_j: float = 12.0) -> dict:
    """A creation window as the cache stores it (one estimate component)."""
    from harness.meters.base import ComponentEnergy, Measurement

    return Measurement(1.0, (ComponentEnergy("cpu", "estimate", energy_j, 0.5),)).to_dict()


def module_meta(**extra) -> dict:
    """A module entry's meta, as the workshop writes it."""
    return {"info": {}, "windows": {"create": window_meta()}, "measured_at": "2026-01-01T00:00:00", **extra}
