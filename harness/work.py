"""The work pass: instructions per inference, counted under valgrind's callgrind.

On a machine without an energy counter (a shared VM, a CI runner) the energy figure is
an estimate proportional to CPU time, and CPU time drifts with the machine. The number
of instructions a forward pass executes does not: it is the same on every run of the
same code on the same inputs. So after a group's energy rounds, every measured target
(variant x batch size) has its work counted:

- **One valgrind process per run** (``Process``): starting Python and torch under
  valgrind costs ~15 s of CPU, the suite's libraries (``imports``) 5-16 s more
  (benchmarks/scripts/valgrind_start.py). It runs ``harness.counting``, begun at the
  run's start so that its start-up overlaps the run's own work between windows, stopped
  while any window is open (``meters/held.py``), and is handed one job per group after
  that group's energy rounds. A job rebuilds the group's variants from the artifact
  cache (a technique it does not keep, such as dynamic int8, is redone), stages the same
  eval batches the energy windows ran (``measure.stage``) and takes the declared sample
  of them (``measure.work_batches``), uninstrumented; then (``counting_forks``) warms each target up on one batch of each
  shape and counts it in a fork taken right after, later targets warming while earlier
  ones count, ``forks()`` counting at once, collection toggled around the counted passes
  only (``torch._C._valgrind_toggle`` and ``_valgrind_toggle_and_dump_stats``).
- **One intra-op thread**: valgrind runs a process's threads one at a time, so more
  would only cost time; the count is of the single-threaded code path. Valgrind also
  implements no AVX-512, so under it the libraries pick their AVX2 (or older) kernels on
  every machine alike: the count is of that code path, not of the native one.
- **MKL's SSE4.2 kernels** (``MKL_ENABLE_INSTRUCTIONS=SSE4_2``, counting process only):
  under valgrind MKL's AVX2 products ran ~1,500x slower than natively (fp32 2560x128x512:
  8.7 s against 0.0056 s; SSE4.2: 0.06 s). The count is of that code path (more
  instructions than the AVX2 one the windows ran); the tool string says so, and counts
  of another code path are not compared. **oneDNN's SSE4.1 kernels**
  (``ONEDNN_MAX_CPU_ISA=SSE41``) likewise: valgrind emulates AVX2's fused multiply-adds
  by helper calls (a digits CNN's pass: 6 s; SSE4.1: 0.8 s for 3x the instructions).
  **ATen's default kernels** (``ATEN_CPU_CAPABILITY=default``: torch's own, built for
  any x86-64, without AVX2's fused multiply-adds) likewise: quick digits' bf16 row warmed
  in 1.2 s and counted in 2.6 s, against 4.3 s and 10.7 s on ATen's AVX2 kernels, for
  2.4x the instructions. ONNX Runtime's kernels (MLAS) have no such switch: slow rows.
- **The C allocator's calls left out** (``callgrind.py``): what glibc's malloc executes
  depends on the process's heap history, not on the passes; its count is kept beside
  (``allocator``). Python's collector is off while counting (as in ``timeit``): when it
  runs depends on that history too.
- **Work, never energy**: a deterministic count of executed instructions (the CPU's
  work, not memory stalls, frequency, or an accelerator; on a GPU run it would cover
  host instructions only, so it is not counted there).

This module is the parent's side (what to count, the job, reading the dumps); the
process valgrind runs is ``counting.py``. Nothing here imports torch at import time.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness import callgrind
from harness.meters import held
from harness.errors import UserError

NONE, INSTRUCTIONS = "none", "instructions"
METRICS = (NONE, INSTRUCTIONS)
INSTALL = "apt-get install valgrind"
SCOPE = "host CPU, one thread"
WHAT = ("instructions per inference: a deterministic count of executed instructions (valgrind's callgrind, one "
        "thread, over the staged eval batches the energy windows ran, after a warm-up); it tracks CPU work, not "
        "memory stalls, frequency or an accelerator, and it is not energy")
TIMEOUT_S = 6 * 3600
#: The kernels MKL, oneDNN (its convolutions) and ATen (torch's own) are held to in the counting process (the docstring).
MKL_INSTRUCTIONS, ONEDNN_ISA, ATEN_CAPABILITY = "SSE4_2", "SSE41", "default"
#: The counting process's environment: one thread, the libraries held to SSE kernels (the tool string says so).
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "MKL_ENABLE_INSTRUCTIONS": MKL_INSTRUCTIONS,
       "ONEDNN_MAX_CPU_ISA": ONEDNN_ISA, "ATEN_CPU_CAPABILITY": ATEN_CAPABILITY, "TQDM_DISABLE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
CHECKED = "87306f3"  # the commit of the work_check.py outputs the next two quote (reference/work/work_check-*-CHECKED.txt)
#: How far a sample of K batches was measured to sit from every batch counted, by K; a K not here: unmeasured.
SAMPLE_ERROR = {4: "a 4-batch sample sat within 0.92% of every batch counted on SST-2's BERT-tiny rows "
                   f"(-0.92% to +0.61% by variant; work_check.py at {CHECKED})"}
#: The spread of instructions per inference between repeated processes: printed by compare.
AA_SPREAD = ("max/min at most 1.00064 (digits' mlp rows; 1.00000 for its cnn row and on SST-2's BERT-tiny "
             f"rows; 3 processes each, work_check.py at {CHECKED})")

ALWAYS_IMPORTED = ("numpy.random",)  # the counting process's start, whatever the suite (seed_everything's first call)
FORKS_ENV = "JOULEBENCH_WORK_FORKS"  # how many targets count at once (counting_forks); unset: one per CPU


def forks() -> int:
    """How many forks count at once: ``$JOULEBENCH_WORK_FORKS``, or one per CPU this
    process may run on. A count does not depend on it. Not a positive integer: UserError."""
    given = os.environ.get(FORKS_ENV, "").strip()
    if not given:
        return max(1, len(os.sched_getaffinity(0)))
    if not given.isdigit() or int(given) < 1:
        raise UserError(f"{FORKS_ENV}={given[:40]!r} is not a positive integer: set it to how many targets the work "
                        "pass may count at once, or unset it (one per CPU)")
    return int(given)


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
    if shutil.which("valgrind") is None:
        return f"instructions not counted: valgrind not found; install valgrind ({INSTALL})"
    return callgrind.supported()


def tool_version() -> str:
    try:
        out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "valgrind"
    return ((f"{out} callgrind" if out else "valgrind callgrind")
            + f", MKL {MKL_INSTRUCTIONS}, oneDNN {ONEDNN_ISA} and ATen {ATEN_CAPABILITY} kernels, the C allocator's "
            "calls left out, each target in a fork taken after its warm-up and the earlier targets', instrumentation "
            "switched on from inside it")


def command(out_file: Path | str, args: list[str]) -> list[str]:
    """The counting process's command line (``args``: Python's), under callgrind with nothing on at its start."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
            f"--callgrind-out-file={out_file}", sys.executable, *args]


def imports(specs: list[Any], task_kind: str) -> list[str]:
    """The modules the counting process imports at its start to rebuild ``specs``' variants (their model
    families' and runtimes' ``imports``; none for a runtime it does not count on this task)."""
    from harness import models, runtimes

    names: list[str] = []
    for spec in specs:
        runtime = runtimes.create(spec.runtime)
        if runtime.work_skip_on(task_kind) is None:
            names += [*models.imports(models.MODELS.get(spec.model.family)), *runtime.imports]
    return list(dict.fromkeys(names))


def skipped(reason: str) -> dict[str, Any]:
    """The record's work block where nothing was counted, and why."""
    return {"metric": INSTRUCTIONS, "instructions": None, "skipped": reason}


def sample_error(batches: list[int] | None) -> str | None:
    """What is known of a sample's error against every batch counted (None: no sample)."""
    if not batches:
        return None
    return SAMPLE_ERROR.get(batches[0], f"the error of a {batches[0]}-batch sample against every batch is not measured")


class Process:
    """The run's one counting process (``harness.counting`` under callgrind), begun at
    the run's start (``begin``; else at the first group's work pass) and then handed one
    job per group: imports, the suite and the examples are paid for once per run, not
    once per group. ``close`` ends it (at once, where it was never given a job)."""

    def __init__(self, task: Any, log: Callable[[str], None], timeout_s: float = TIMEOUT_S) -> None:
        self.task, self.log, self.timeout_s = task, log, timeout_s
        self.proc: subprocess.Popen | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.jobs, self.tool, self.stderr = 0, "", None
        self.begun = 0.0  # time.time() at begin
        self.started_s: float | None = None  # begin to ready, once ready has been read

    def begin(self, imports: list[str]) -> int:
        """Start the process without waiting for it; it imports ``imports`` (modules the
        suite's variants load when rebuilt) before it says ``ready``. Returns its pid."""
        self.begun = time.time()
        self.tmp = tempfile.TemporaryDirectory(prefix="joulebench-work-")
        root = Path(self.tmp.name)
        from harness import tasks

        (root / "task").mkdir()
        tasks.save(self.task, root / "task")
        self.tool = tool_version()
        cmd = command(root / "cg.out.%p", ["-m", "harness.counting", *imports])
        env = {**os.environ, **ENV}
        self.stderr = open(root / "stderr.txt", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1, preexec_fn=held.die_with_parent())
        return self.proc.pid

    def _ready(self, t0: float) -> float:
        """Wait for the begun process's ``ready TIME``; the seconds from begin to ready (much
        of it, where it was begun at the run's start, spent while the run did its own work)."""
        line = self._answer("ready", t0)
        self.started_s = max(0.0, float(line.split()[1]) - self.begun)
        return self.started_s

    def _answer(self, want: str, t0: float) -> str:
        """Wait for the process's line starting with ``want`` and return it; a timeout or
        an exit is WorkFailed (its last line of stderr), and the process is ended."""
        assert self.proc is not None and self.proc.stdout is not None and self.tmp is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], max(1.0, self.timeout_s - (time.perf_counter() - t0)))
        line = self.proc.stdout.readline().strip() if ready else None
        if line is not None and line.split()[:1] == [want]:
            return line
        proc = self.proc
        said = (Path(self.tmp.name) / "stderr.txt").read_text(errors="replace").splitlines()
        said = [ln for ln in said if ln.strip() and not ln.startswith("==")]
        self.close()  # waits for its exit (or kills it)
        code = proc.returncode
        if line is None:
            raise WorkFailed(f"the counting process ran past {self.timeout_s:g} s")
        raise WorkFailed(f"the counting process exited {code}: {said[-1] if said else 'no message'}"[:300])

    def close(self) -> None:
        if self.proc is not None:
            try:
                if self.proc.poll() is None and not self.jobs:  # never given a job (a refused run): nothing to wait for
                    self.proc.kill()
                    self.proc.wait()
                elif self.proc.poll() is None:
                    os.kill(self.proc.pid, signal.SIGCONT)  # in case a window left open by an error still holds it
                    self.proc.stdin.write("\n")
                    self.proc.stdin.close()
                    self.proc.wait(timeout=60)
            except (OSError, subprocess.SubprocessError):
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.stderr.close()
        self.started_s = None  # a later count begins a new process and waits for its ready
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def count(self, job: dict[str, Any], requests: list[Request]) -> dict[str, dict[str, Any]]:
        """Count ``requests`` (one group's targets) as ``job`` says (the suite, the cache,
        passes, batches, and ``forks``: how many at once); returns the work block of each
        (by ``Request.name``): the raw count, passes, inferences, tool, threads, or the
        reason one target was not counted. Raises WorkFailed when the process fails."""
        t0 = time.perf_counter()
        if self.proc is None:
            self.begin([])
        started_s = self._ready(t0) if self.started_s is None else None
        waited_s = time.perf_counter() - t0
        root = Path(self.tmp.name)
        self.jobs += 1
        job_path, out_path = root / f"job{self.jobs}.json", root / f"counted{self.jobs}.json"
        job_path.write_text(json.dumps({**job, "task": str(root / "task"),
                                        "targets": [[r.run_key, r.batch_size, r.layout] for r in requests]}))
        try:
            self.proc.stdin.write(f"{job_path} {out_path}\n")
        except OSError:
            pass  # the process is gone: _answer says why
        self._answer("done", t0)
        process_s = time.perf_counter() - t0
        counted = json.loads(out_path.read_text())
        if "error" in counted:
            raise WorkFailed(counted["error"][:300])
        out: dict[str, dict[str, Any]] = {}
        for entry in counted["targets"]:
            if entry.get("skipped"):
                out[entry["name"]] = skipped(entry["skipped"])
                continue
            dump = root / f"cg.out.{entry['pid']}.1"  # the counting fork's one dump (counting_forks)
            try:
                got = callgrind.read(dump)
            except callgrind.DumpError as exc:
                raise WorkFailed(str(exc)) from None
            for left in (dump, root / f"cg.out.{entry['pid']}"):  # and the file its exit wrote
                left.unlink(missing_ok=True)
            out[entry["name"]] = {"metric": INSTRUCTIONS, "instructions": got.work, "allocator": got.allocator,
                                  "passes": entry["passes"],
                                  "inferences": entry["inferences"], "tool": self.tool, "threads": 1, "scope": SCOPE,
                                  "batches": entry.get("batches"), "sample_error": sample_error(entry.get("batches")),
                                  "process_s": process_s, "start_s": started_s, "skipped": None}
        slow = max((e for e in counted["targets"] if "count_s" in e), key=lambda e: e["count_s"], default=None)
        if slow is not None:
            self.log(f"  work pass: slowest target {slow['name']} ({slow['count_s']:.0f} s under instrumentation)")
        start = (f"waiting {waited_s:.0f} s for the process, whose start took {started_s:.0f} s from the run's "
                 "start, stopped in every window; " if started_s is not None else "")
        self.log(f"  work pass: {sum(1 for w in out.values() if w['instructions'])} target(s) counted under "
                 f"{self.tool} in {process_s:.0f} s ({start}loading and staging {counted['load_s']:.0f} s, "
                 f"warming and counting {counted['count_s']:.0f} s, {job['forks']} fork(s) at once)")
        return out
