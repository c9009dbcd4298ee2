"""Reading one callgrind dump (the format: valgrind's docs, "Callgrind Format
Specification"): the instructions it holds, and how many of them the C heap allocator
executed.

- **The total is the file's ``totals:`` line** (the sum of its cost lines), not the
  header's ``summary:``. With instrumentation switched off and on between two dumps
  (``callgrind_control -i``), callgrind's summary of the next dump came out as the
  difference of counters that had been reset: a negative number printed unsigned
  (18446744073677698351 where the totals said 26335819).
- **The allocator's share** is the inclusive cost of every call into ``malloc``,
  ``free`` and their kin from outside them (read from the ``calls=`` records, so it
  needs no debug symbols for glibc's internals). How many instructions glibc's malloc
  runs depends on the heap's history (which bins hold what, when it consolidates): two
  processes counting the same passes of a digits CNN, one with a larger heap from its
  start, differed by 0.14-0.26%, and by at most 0.01% without the allocator's calls. The work
  figure leaves them out and keeps their count beside it.
- **Switching instrumentation on from inside** (``request``): valgrind's client requests
  (valgrind.h's ``VALGRIND_DO_CLIENT_REQUEST``; callgrind.h's codes) let the counting
  process switch callgrind's instrumentation on and off for itself, in place of a
  ``callgrind_control -i`` process (a Perl script talking to valgrind through vgdb, which
  the process had to poll for until it answered, and which cannot reach a fork).
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The C heap allocator's entry points (glibc's exported names).
ALLOCATOR = frozenset({"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
                       "memalign", "valloc", "pvalloc", "cfree", "malloc_trim"})
_NAME = re.compile(r"\((\d+)\)(?: (.*))?$")
_TOTALS = re.compile(r"^totals:\s*(\d+)", flags=re.M)


class DumpError(Exception):
    """A dump that cannot be read (its one-line reason)."""


@dataclass(frozen=True)
class Dump:
    total: int  # every instruction the dump holds (event Ir)
    allocator: int  # of which inside calls to ALLOCATOR

    @property
    def work(self) -> int:
        return self.total - self.allocator


def parse(text: str, name: str = "dump") -> Dump:
    found = _TOTALS.search(text)
    if not found:
        raise DumpError(f"callgrind dump {name} holds no totals line")
    names: dict[str, str | None] = {}
    fn = cfn = None
    call_cost_next = False
    allocator = 0
    for line in text.splitlines():
        if call_cost_next:
            if line[:1].isdigit() or line[:1] in "+-*":  # "position cost": the call's inclusive cost
                if cfn in ALLOCATOR and fn not in ALLOCATOR:
                    allocator += int(line.split()[1])
                call_cost_next = False
            continue
        if line.startswith(("fn=", "cfn=")):
            key, _, rest = line.partition("=")
            m = _NAME.match(rest)  # name compression: "(id) name" defines, "(id)" refers
            name_ = (names.setdefault(m.group(1), m.group(2)) if m.group(2) else names.get(m.group(1))) if m else rest
            fn, cfn = (name_, cfn) if key == "fn" else (fn, name_)
        elif line.startswith("calls="):
            call_cost_next = True
    total = int(found.group(1))
    if total <= 0 or allocator > total:
        raise DumpError(f"callgrind dump {name} reads {total} instructions with {allocator} in the allocator")
    return Dump(total, allocator)


def read(path: Path) -> Dump:
    return parse(path.read_text(errors="replace"), path.name)


#: callgrind.h's client requests: VG_USERREQ_TOOL_BASE('C','T') + their place in its enum.
_TOOL_BASE = (ord("C") << 24) | (ord("T") << 16)
DUMP_STATS, TOGGLE_COLLECT = _TOOL_BASE + 0, _TOOL_BASE + 2
START_INSTRUMENTATION, STOP_INSTRUMENTATION = _TOOL_BASE + 4, _TOOL_BASE + 5
#: ``long request(long *args)``: valgrind.h's client-request sequence on amd64 (args in
#: %rax, the default answer 0 in %rdx, the special preamble, ``xchgq %rbx,%rbx``; the
#: answer comes back in %rdx). Run natively it changes nothing and answers 0.
_AMD64 = bytes.fromhex("53" "4889f8" "31d2" "48c1c703" "48c1c70d" "48c1c73d" "48c1c733" "4887db" "4889d0" "5b" "c3")
_call: Any = None


def supported() -> str | None:
    """Why ``request`` cannot reach valgrind on this machine (one line), or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return (f"instructions not counted: the counting process switches callgrind on with an x86-64 client "
                f"request, and this machine is {platform.machine() or 'of an unknown architecture'}")
    return None


def request(code: int, *args: int) -> int:
    """Valgrind's client request ``code`` with up to five arguments, from this process;
    its answer (0 when not under valgrind). x86-64 only (``supported``)."""
    global _call
    why = supported()
    if why is not None:
        raise OSError(why)
    if _call is None:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        page.write(_AMD64)
        _call = (page, ctypes.CFUNCTYPE(ctypes.c_long, ctypes.POINTER(ctypes.c_long))(
            ctypes.addressof(ctypes.c_char.from_buffer(page))))
    block = (ctypes.c_long * 6)(code, *args, *([0] * (5 - len(args))))
    return _call[1](block)
