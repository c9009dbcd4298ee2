"""Reading a callgrind dump (callgrind.py): the totals line, not the header's summary,
and the C allocator's calls counted apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import callgrind
from tests.conftest import ROOT

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


REQUESTER = """
import sys
from harness import callgrind
def work():
    return sum(i * i for i in range(20000))
print(callgrind.request(0x1001), flush=True)  # valgrind.h's RUNNING_ON_VALGRIND
work()
if sys.argv[1] == "on":
    callgrind.request(callgrind.START_INSTRUMENTATION)
callgrind.request(callgrind.TOGGLE_COLLECT)
work()
callgrind.request(callgrind.TOGGLE_COLLECT)
callgrind.request(callgrind.DUMP_STATS)
"""


@pytest.mark.skipif(shutil.which("valgrind") is None or callgrind.supported() is not None,
                    reason="valgrind is not installed (the test command installs it), or not x86-64")
@pytest.mark.parametrize("switch", ["on", "off"])
def test_a_client_request_switches_instrumentation_on_from_inside(tmp_path: Path, switch: str) -> None:
    """Run natively, a request answers 0 and does nothing; under callgrind started with
    instrumentation off, the process's own START_INSTRUMENTATION is what makes its
    collected region count (planted: without it, the dump holds no instruction)."""
    script = tmp_path / "req.py"
    script.write_text(REQUESTER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    native = subprocess.run([sys.executable, str(script), switch], capture_output=True, text=True, env=env)
    assert native.returncode == 0 and native.stdout.split() == ["0"], native.stderr
    got = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                          f"--callgrind-out-file={tmp_path / 'cg.%p'}", sys.executable, str(script), switch],
                         capture_output=True, text=True, env=env, timeout=300)
    assert got.returncode == 0 and got.stdout.split() == ["1"], got.stderr[-2000:]
    dumps = [callgrind.parse(p.read_text(), p.name) if "totals: 0" not in p.read_text() else None
             for p in tmp_path.glob("cg.*.1")]
    assert len(dumps) == 1
    if switch == "on":
        assert dumps[0] is not None and dumps[0].total > 1_000_000  # 20,000 Python iterations
    else:
        assert dumps[0] is None  # instrumentation never switched on: nothing counted


def test_a_machine_other_than_x86_64_is_one_line(monkeypatch) -> None:
    from harness import work

    monkeypatch.setattr(callgrind.platform, "machine", lambda: "aarch64")
    why = callgrind.supported()
    assert why == ("instructions not counted: the counting process switches callgrind on with an x86-64 client "
                   "request, and this machine is aarch64")
    monkeypatch.setattr(work.shutil, "which", lambda name: "/usr/bin/" + name)
    assert work.unavailable() == why
    with pytest.raises(OSError, match="aarch64"):
        callgrind.request(callgrind.START_INSTRUMENTATION)
