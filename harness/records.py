"""The records file: one JSON object per finished run of a (variant, seed), appended.

Each line is complete or absent: it is written in one ``write`` and fsynced, so a
killed run leaves whole lines behind and a reader warns about (and skips) a torn tail.
Raw window values are kept; statistics are computed by the report, never stored.

Schema history (readers accept every version listed):
- 1: first version (suite, lineage, train window, eval predictions and labels,
  inference windows).
- 2: provenance (run_config_hash, fingerprint), artifact_key and cached, flops.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

SCHEMA = 2
READABLE = {1, 2}
RECORDS = "records.jsonl"
ENVIRONMENT = "environment.json"


def append(path: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def load(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(records, warnings). A line that is not a complete record is skipped with a warning.
    Each record carries its line number as ``_line`` (in memory only), for messages."""
    records, warnings = [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                warnings.append(f"{path} line {number} is truncated or not JSON; skipped it")
                continue
            if not isinstance(rec, dict) or rec.get("schema") not in READABLE:
                warnings.append(f"{path} line {number} is not a joulebench record (schema {sorted(READABLE)}); skipped it")
                continue
            rec["_line"] = number
            records.append(rec)
    return records, warnings


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline: the write was interrupted). Returns
    the bytes dropped; complete lines are never touched."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as fh:
        fh.truncate(keep)
    return len(data) - keep


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def fingerprint(env: dict[str, Any]) -> dict[str, Any]:
    """The part of the environment every record carries: what could change a number."""
    keys = ("joulebench", "git_commit", "git_dirty", "python", "torch", "transformers", "datasets", "numpy",
            "cpu_model", "logical_cpus", "torch_threads", "gpu", "gpu_driver", "meter")
    return {k: env.get(k) for k in keys}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write beside, then rename: a reader never sees half a file, an old one is never lost."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


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


def gpu_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else version
    except Exception:  # no driver, no GPU, no pynvml: all mean "none"
        return None


def environment(meter_method: str, formulas: list[str]) -> dict[str, Any]:
    import datasets
    import numpy
    import torch
    import transformers

    from harness import __version__

    gpu = None
    if torch.cuda.is_available():
        gpu = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "joulebench": __version__,
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
        "gpu_driver": gpu_driver() if gpu else None,
        "meter": meter_method,
        "meter_formulas": formulas,
    }
