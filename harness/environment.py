"""Where a number was measured: package versions, CPU, GPUs and driver (every GPU the
machine has, from NVML; the one the run used is ``device``), host, git state.

Captured once per run into ``environment.json``; the part that could change a number
(the fingerprint) is copied into every record.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def now() -> str:
    """The time, in UTC, as every record and environment writes it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def host() -> str:
    """The machine's name, as every energy window records it."""
    return socket.gethostname() or platform.node() or "unknown-host"


#: The sources whose change can move a measured figure without changing any artifact.
MEASURE_SOURCES = ("measure.py", "meters", "runner.py", "runtimes", "evaluate.py", "counts.py", "counting.py", "work.py",
                   "device.py", "workshop.py", "deploy.py")


SLURM_KEYS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_CLUSTER_NAME", "SLURM_JOB_NODELIST")


def fingerprint(env: dict[str, Any]) -> dict[str, Any]:
    """The part of the environment every record carries: what could change a number."""
    keys = ("joulebench", "host", "git_commit", "git_dirty", "measure_code", "python", "torch", "transformers",
            "datasets", "numpy", "cpu_model", "logical_cpus", "torch_threads", "gpu", "gpu_driver", "device", "meter",
            "machine")
    return {k: env.get(k) for k in keys}


#: The CPU features the kernels torch, oneDNN, fbgemm and ONNX Runtime dispatch on: two
#: machines that differ in these run other code for the same model (bf16 here ran at
#: 0.87x fp32's J/inference with avx512_bf16 and at 8.2x without it).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2")


def machine(cpuinfo: str | None = None, meminfo: str | None = None) -> dict[str, Any]:
    """The machine as the kernels see it: CPU vendor, family, model and stepping, the ISA
    flags in ``ISA_FLAGS`` it has, torch's CPU capability (the kernel set ATen picked),
    logical CPUs and memory. A VM that names every CPU "AMD EPYC" and every host "vm"
    is told apart by these. ``cpuinfo``/``meminfo``: the files' text (tests)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    if meminfo is None:
        try:
            meminfo = Path("/proc/meminfo").read_text()
        except OSError:
            meminfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor's block
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    mem_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), None)
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # an older torch without it
        capability = None
    return {"vendor": fields.get("vendor_id") or fields.get("CPU implementer"),
            "family": fields.get("cpu family") or fields.get("CPU architecture"),
            "model": fields.get("model") or fields.get("CPU part"), "stepping": fields.get("stepping"),
            "model_name": fields.get("model name") or platform.processor() or platform.machine(),
            "isa": sorted(f for f in ISA_FLAGS if f in flags), "torch_cpu_capability": capability,
            "logical_cpus": os.cpu_count(), "memory_gib": round(mem_kb / 2**20) if mem_kb else None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def gpus() -> tuple[list[str] | None, str | None]:
    """(GPU names, driver version) from NVML; (None, None) without a driver. NVML, not
    torch.cuda, so a CPU run never initialises CUDA on the machine's GPUs."""
    try:
        import pynvml

        pynvml.nvmlInit()
        names = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else name)
        version = pynvml.nvmlSystemGetDriverVersion()
        return names or None, version.decode() if isinstance(version, bytes) else version
    except Exception:  # no driver, no GPU, no pynvml: all mean "none"
        return None, None


def _installed(name: str) -> str:
    """A distribution's installed version, or "not installed"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """The versions an unchanged model runs through here (comparable.PACKAGES): what a
    run records, and what ``reproduce`` checks before it reruns one."""
    import numpy
    import torch
    import transformers

    from harness import __version__

    return {"joulebench": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__}


def environment(meter_method: str, formulas: list[str], device: dict[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from harness.files import source_digest

    gpu, driver = gpus()
    have = versions()
    return {
        "joulebench": have["joulebench"],
        "host": host(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        # the code that measures (windows, meters, runtimes' run path, the runner): a change
        # there changes J/inference of every row, whatever the artifacts
        "measure_code": source_digest(Path(__file__).parent, MEASURE_SOURCES),
        "python": have["python"],
        "platform": platform.platform(),
        "torch": have["torch"],
        "transformers": have["transformers"],
        "datasets": _installed("datasets"),  # read, not imported: only a Hub dataset needs it
        "numpy": have["numpy"],
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "gpu_driver": driver,
        "device": device,  # the one the run used (harness.device.Device.describe())
        "meter": meter_method,
        "meter_formulas": formulas,
        "machine": machine(),
        # the Slurm job the run ran in (its energy accounting is a cross-check: slurm.accounted)
        "slurm": {k: os.environ[k] for k in SLURM_KEYS if k in os.environ} or None,
    }
