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
from pathlib import Path
from typing import Any


def host() -> str:
    """The machine's name, as every energy window records it."""
    return socket.gethostname() or platform.node() or "unknown-host"


def fingerprint(env: dict[str, Any]) -> dict[str, Any]:
    """The part of the environment every record carries: what could change a number."""
    keys = ("joulebench", "host", "git_commit", "git_dirty", "python", "torch", "transformers", "datasets", "numpy",
            "cpu_model", "logical_cpus", "torch_threads", "gpu", "gpu_driver", "device", "meter")
    return {k: env.get(k) for k in keys}


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


def environment(meter_method: str, formulas: list[str], device: dict[str, Any] | None = None) -> dict[str, Any]:
    import datasets
    import numpy
    import torch
    import transformers

    from harness import __version__

    gpu, driver = gpus()
    return {
        "joulebench": __version__,
        "host": host(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "numpy": numpy.__version__,
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "gpu_driver": driver,
        "device": device,  # the one the run used (harness.device.Device.describe())
        "meter": meter_method,
        "meter_formulas": formulas,
    }
