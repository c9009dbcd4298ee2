"""The counting process's forks (``counting.py``; work.py says why): every target of a
job warmed up and then counted in a fork of its own, the warm-ups of later targets
overlapping the counts of earlier ones.

Three kinds of process, each doing one thing:

- **the warmer**, a fork of the counting process: switches callgrind's instrumentation on
  for itself, once (a client request, ``callgrind.request``; switching it on discards
  every translation made so far: done in each fork instead, it cost 1-2 s per fork on
  quick digits), then warms the targets one after another in the order listed and takes
  each one's counting fork right after its warm-up. Its warm-ups run instrumented with
  collection off, so each fork inherits its own target's code already translated. Between
  its forks it does nothing but warm and take them, the same on every run: a fork's count
  starts from the state of every target up to it warmed (forked while a process reaped
  earlier forks, later counts moved with the heap's layout: quick digits' mlp rows by
  0.6%). It reaps its forks once every one is taken.
- **a counting fork**: waits to be let go, toggles collection around its passes, dumps
  once (callgrind names the dump ``cg.out.PID.1``) and exits without any teardown. A fork
  whose pipe closes unwritten (the counting process gone) leaves without counting.
- **the counting process** only schedules: it lets each fork go once it is taken, at most
  ``at_once`` counting at a time (a fork's exit is the end of file of a pipe only it
  holds), so how the counts met the CPUs never reaches a state anything is counted from.
"""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path
from typing import Any, Callable

import torch

from harness import callgrind
from harness.measure import Target


def forked(targets: list[tuple[dict[str, Any], Target]], passes: int, out: Path, at_once: int,
           warm: Callable[[Target], None] = lambda target: None) -> None:
    """Warm each target (``warm``) in the warmer and count its ``passes`` in a fork of
    its own (the module's docstring), at most ``at_once`` forks counting at a time; each
    ``entry`` gets its fork's pid and seconds under the toggles (``count_s``), or
    ``skipped`` (one line) where its warm-up or its fork failed. The forks write beside
    ``out``."""
    n = len(targets)
    go, alive = [os.pipe() for _ in range(n)], [os.pipe() for _ in range(n)]
    ready_r, ready_w = os.pipe()
    said = [out.parent / f"{out.name}.fork{i}.json" for i in range(n)]
    result = out.parent / f"{out.name}.warmer.json"
    warmer = os.fork()
    if warmer == 0:  # the warmer: warm, take the fork, say so; reap them all once every fork is taken
        code = 1
        try:
            os.close(ready_r)
            for r, w in go:
                os.close(w)  # only this process's parent lets a fork go: its death is every fork's EOF
            for r, w in alive:
                os.close(r)
            taken, failed = {}, {}
            callgrind.request(callgrind.START_INSTRUMENTATION)
            for i, (_, target) in enumerate(targets):
                try:
                    warm(target)
                except Exception as exc:  # noqa: BLE001 - the target is left uncounted, the others go on
                    failed[i] = f"{type(exc).__name__}: {exc}"[:200]
                else:
                    pid = os.fork()
                    if pid == 0:
                        _count(i, target, passes, go, alive, ready_w, said[i])
                    taken[i] = pid
                os.close(go[i][0])
                os.close(alive[i][1])
                os.write(ready_w, b"%08d\n" % i if i in taken else b"-\n")
            os.close(ready_w)
            reaped = dict(os.wait() for _ in taken)
            result.write_text(json.dumps({"taken": {i: [pid, reaped[pid]] for i, pid in taken.items()},
                                          "failed": failed}))
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    for r, w in go:
        os.close(r)
    for r, w in alive:
        os.close(w)
    let_go = {i: go[i][1] for i in range(n)}  # a fork's pipe: written (and closed) to let it go
    ends = {r for r, _ in alive}  # a fork's other pipe: its end of file is the fork's exit
    queue: list[int] = []
    running: set[int] = set()
    said_by_warmer, reading = b"", True
    while reading or queue or running:
        while queue and len(running) < at_once:
            i = queue.pop(0)
            os.write(let_go[i], b"1")
            os.close(let_go.pop(i))
            running.add(alive[i][0])
        for fd in select.select([*running, *([ready_r] if reading else [])], [], [])[0]:
            if fd == ready_r:
                chunk = os.read(ready_r, 4096)
                reading = bool(chunk)
                said_by_warmer += chunk
                *lines, said_by_warmer = said_by_warmer.split(b"\n")
                queue += [int(line) for line in lines if line.isdigit()]
            elif not os.read(fd, 1):  # its fork has exited
                running.discard(fd)
                os.close(fd)
                ends.discard(fd)
    for fd in [*let_go.values(), *ends]:  # forks never taken (their warm-up failed, or the warmer died)
        os.close(fd)
    os.close(ready_r)
    _, status = os.waitpid(warmer, 0)
    told = json.loads(result.read_text()) if result.exists() else {"taken": {}, "failed": {}}
    result.unlink(missing_ok=True)
    for i, (entry, _) in enumerate(targets):
        pid, code = told["taken"].get(str(i), (None, None))
        if code == 0 and said[i].exists():
            entry.update(json.loads(said[i].read_text()), pid=pid)
            said[i].unlink()
        elif str(i) in told["failed"]:
            entry["skipped"] = f"not counted: its warm-up failed ({told['failed'][str(i)]})"
        elif pid is None:
            entry["skipped"] = f"not counted: the process warming it ended with wait status {status}"
        else:
            entry["skipped"] = f"not counted: its counting fork ended with wait status {code}"


def _count(i: int, target: Target, passes: int, go: list[tuple[int, int]], alive: list[tuple[int, int]],
           ready_w: int, said: Path) -> None:
    """A counting fork (``forked``): keep only its own pipes' ends, wait to be let go,
    count, say how long, and leave without any teardown."""
    code = 1
    try:
        os.close(ready_w)
        for r, w in go[i + 1:]:
            os.close(r)
        for r, w in alive[i + 1:]:
            os.close(w)
        if os.read(go[i][0], 1):
            t0 = time.perf_counter()
            with torch.inference_mode():
                torch._C._valgrind_toggle()
                for _ in range(passes):
                    target.one_pass()
                torch._C._valgrind_toggle_and_dump_stats()
            said.write_text(json.dumps({"count_s": time.perf_counter() - t0}))
            code = 0
    finally:
        os._exit(code)
