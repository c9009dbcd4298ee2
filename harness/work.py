"""The work pass: instructions per inference, counted under valgrind's callgrind.

On a machine without an energy counter (a shared VM, a CI runner) the energy figure is
an estimate proportional to CPU time, and CPU time drifts with the machine. The number
of instructions a forward pass executes does not: it is the same on every run of the
same code on the same inputs. So after a group's energy rounds, every measured target
(variant x batch size) has its work counted:

- **One valgrind process per group**, not one per variant: starting Python and
  importing torch under valgrind is the dominant cost. It runs ``harness.counting``,
  which rebuilds every variant of the group from the artifact cache (safetensors and
  the technique's recipe; the cached ``.onnx`` for onnxruntime rows; a technique that
  is not cached, such as dynamic int8, is redone), stages the same eval batches the
  energy windows ran (``measure.stage``), warms each target up, then switches
  callgrind's instrumentation on (``callgrind_control -i on``: the imports and loading
  run uninstrumented, several times faster) and toggles collection around the counted
  passes only (``torch._C._valgrind_toggle`` and ``_valgrind_toggle_and_dump_stats``,
  one dump per target).
- **One intra-op thread**: valgrind runs a process's threads one at a time, so more
  would only cost time; the count is of the single-threaded code path. Valgrind also
  implements no AVX-512, so under it the libraries pick their AVX2 (or older) kernels on
  every machine alike: the count is of that code path, not of the native one.
- **MKL's SSE4.2 kernels** (``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` in the counting process
  only): under valgrind MKL's AVX2 matrix products ran ~1,500x slower than natively
  (an fp32 2560x128x512 product: 8.7 s against 0.0056 s; its SSE4.2 kernels: 0.06 s),
  which made a BERT-tiny work pass take hours. So the count is of MKL's SSE4.2 code
  path (more instructions per product than the AVX2 one the energy windows ran); the
  tool string says so, and counts made with another code path are not compared.
- **Work, never energy**: a deterministic count of executed instructions. It tracks
  the CPU's work, not memory stalls, frequency, or an accelerator; on a GPU run it would
  cover host instructions only (launches, Python, copies), so it is not counted there.

This module is the parent's side (what to count, the job, reading the dumps); the
process valgrind runs is ``counting.py``. Nothing here imports torch at import time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

NONE, INSTRUCTIONS = "none", "instructions"
METRICS = (NONE, INSTRUCTIONS)
INSTALL = "apt-get install valgrind"
SCOPE = "host CPU, one thread"
WHAT = ("instructions per inference: a deterministic count of executed instructions (valgrind's callgrind, one "
        "thread, over the staged eval batches the energy windows ran, after a warm-up); it tracks CPU work, not "
        "memory stalls, frequency or an accelerator, and it is not energy")
TIMEOUT_S = 6 * 3600
#: MKL's instruction set in the counting process (see the module's docstring).
MKL_INSTRUCTIONS = "SSE4_2"
#: The spread of instructions per inference between repeated processes, as measured by
#: benchmarks/scripts/work_check.py (results/reference/work/): printed by compare.
AA_SPREAD = "at most 0.14% (digits, 2 processes)"


class WorkFailed(Exception):
    """The counting process did not deliver (its one-line reason)."""


@dataclass(frozen=True)
class Request:
    """One target to count: a run's variant at one batch size."""

    run_key: str
    batch_size: int
    layout: str = ""  # measure.layout of the energy windows' staged batches

    @property
    def name(self) -> str:
        return f"{self.run_key}@bs{self.batch_size}"


def unavailable(device_type: str = "cpu") -> str | None:
    """Why instructions cannot be counted here (one line naming the fix), or None."""
    if device_type != "cpu":
        return (f"instructions not counted on {device_type}: under valgrind the count would cover host instructions "
                "only (launches, Python, copies), not the kernels; count a CPU run")
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"instructions not counted: {tool} not found; install valgrind ({INSTALL})"
    return None


def tool_version() -> str:
    try:
        out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "valgrind"
    return (f"{out} callgrind" if out else "valgrind callgrind") + f", MKL {MKL_INSTRUCTIONS} kernels"


def skipped(reason: str) -> dict[str, Any]:
    """The record's work block where nothing was counted, and why."""
    return {"metric": INSTRUCTIONS, "instructions": None, "skipped": reason}


def totals(path: Path) -> int:
    """The instruction count (event Ir) of one callgrind dump."""
    text = path.read_text(errors="replace")
    found = re.search(r"^(?:totals|summary):\s*(\d+)", text, flags=re.M)
    if not found:
        raise WorkFailed(f"callgrind dump {path.name} holds no totals line")
    return int(found.group(1))


def count(job: dict[str, Any], task: Any, requests: list[Request], log: Callable[[str], None],
          timeout_s: float = TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """Count ``requests`` in one valgrind process; returns the work block of each
    (by ``Request.name``): the raw count, passes, inferences, tool, threads, or the
    reason one target was not counted. Raises WorkFailed when the process fails."""
    tool = tool_version()
    with tempfile.TemporaryDirectory(prefix="joulebench-work-") as tmp:
        tmpdir = Path(tmp)
        job_path, out_path = tmpdir / "job.json", tmpdir / "counted.json"
        from harness import tasks

        (tmpdir / "task").mkdir()
        tasks.save(task, tmpdir / "task")
        job_path.write_text(json.dumps({**job, "task": str(tmpdir / "task"),
                                        "targets": [[r.run_key, r.batch_size, r.layout] for r in requests]}))
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--callgrind-out-file={tmpdir / 'cg.out'}", sys.executable, "-m", "harness.counting",
               str(job_path), str(out_path)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
               "MKL_ENABLE_INSTRUCTIONS": MKL_INSTRUCTIONS,
               "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise WorkFailed(f"the counting process ran past {timeout_s:g} s") from None
        if proc.returncode != 0 or not out_path.is_file():
            lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip() and not ln.startswith("==")]
            raise WorkFailed(f"the counting process exited {proc.returncode}: "
                             f"{lines[-1] if lines else 'no message'}"[:300])
        process_s = time.perf_counter() - t0
        counted = json.loads(out_path.read_text())
        out: dict[str, dict[str, Any]] = {}
        for entry in counted["targets"]:
            if entry.get("skipped"):
                out[entry["name"]] = skipped(entry["skipped"])
                continue
            raw = totals(tmpdir / f"cg.out.{entry['dump']}")
            out[entry["name"]] = {"metric": INSTRUCTIONS, "instructions": raw, "passes": entry["passes"],
                                  "inferences": entry["inferences"], "tool": tool, "threads": 1, "scope": SCOPE,
                                  "batches": entry.get("batches"),
                                  "process_s": process_s, "skipped": None}
        slow = max((e for e in counted["targets"] if "count_s" in e), key=lambda e: e["count_s"], default=None)
        if slow is not None:
            log(f"  work pass: slowest target {slow['name']} ({slow['count_s']:.0f} s under instrumentation)")
        log(f"  work pass: {sum(1 for w in out.values() if w['instructions'])} target(s) counted under {tool} "
            f"in {process_s:.0f} s (starting, loading and staging {counted['load_s']:.0f} s, counting "
            f"{counted['count_s']:.0f} s)")
        return out
