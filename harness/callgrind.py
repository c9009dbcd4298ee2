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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
