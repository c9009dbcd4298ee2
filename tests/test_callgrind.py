"""Reading a callgrind dump (callgrind.py): the totals line, not the header's summary,
and the C allocator's calls counted apart."""

from __future__ import annotations

import pytest

from harness import callgrind

# A dump as callgrind writes it after instrumentation was switched off and on: its
# summary is a negative difference printed unsigned; its totals are the file's costs.
DUMP = """\
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 18446744073677698351

ob=(1) /usr/lib/libtorch_cpu.so
fl=(1) ???
fn=(1) conv_forward
0 9000
cfn=(2) malloc
calls=3 0
0 300
cfn=(3) free
calls=3 0
0 120
fn=(2)
0 250
cfn=(4) _int_malloc
calls=1 0
0 50
fn=(5) realloc
0 40
cfn=(2)
calls=1 0
0 30
fn=(6) python_loop
+2 500
cfn=(5)
calls=1 0
* 70

totals: 9570
"""


def test_the_total_is_the_totals_line_and_the_allocator_is_counted_apart() -> None:
    dump = callgrind.parse(DUMP)
    assert dump.total == 9570  # not the summary's wrapped number
    # malloc 300 + free 120 from conv_forward, realloc 70 from the loop; realloc's own call to
    # malloc (30) is inside those 70 and not counted twice
    assert dump.allocator == 490
    assert dump.work == 9570 - 490


def test_a_dump_without_allocator_calls_keeps_every_instruction() -> None:
    plain = "events: Ir\nfn=(1) conv\n0 100\ncfn=(2) memcpy\ncalls=1 0\n0 40\ntotals: 140\n"
    assert callgrind.parse(plain) == callgrind.Dump(140, 0)


def test_an_unreadable_dump_is_a_one_line_error() -> None:
    with pytest.raises(callgrind.DumpError, match="no totals line"):
        callgrind.parse(DUMP.replace("totals: 9570", ""))
    with pytest.raises(callgrind.DumpError, match="reads 0 instructions"):
        callgrind.parse("events: Ir\ntotals: 0\n")
