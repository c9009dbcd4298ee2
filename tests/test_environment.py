"""The machine as the kernels see it: two VMs that both call themselves "AMD EPYC" on
host "vm", one with AVX-512 and bf16 and one with AVX2 only, are two machines."""

from __future__ import annotations

from harness.environment import fingerprint, machine
from harness.history.imports import machine as history_machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma {extra}

processor\t: 1
vendor_id\t: AuthenticAMD
"""
MEMINFO = "MemTotal:       24567890 kB\n"


def test_isa_flags_and_cpu_identity_are_recorded() -> None:
    m = machine(CPUINFO.format(extra="avx512f avx512bw avx512vl avx512_vnni avx512_bf16"), MEMINFO)
    assert (m["vendor"], m["family"], m["model"], m["stepping"]) == ("AuthenticAMD", "25", "17", "1")
    assert {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"} <= set(m["isa"]) and "fpu" not in m["isa"]
    assert m["memory_gib"] == 23 and m["logical_cpus"] >= 1 and "torch_cpu_capability" in m


def test_two_vms_with_one_name_are_two_machines_in_the_history() -> None:
    env = {"host": "vm", "cpu_model": "AMD EPYC", "logical_cpus": 2}
    avx512 = fingerprint({**env, "machine": machine(CPUINFO.format(extra="avx512f avx512_bf16"), MEMINFO)})
    avx2 = fingerprint({**env, "machine": machine(CPUINFO.format(extra=""), MEMINFO)})
    twin = fingerprint({**env, "machine": machine(CPUINFO.format(extra="avx512f avx512_bf16"), MEMINFO)})
    assert history_machine(avx512)[0] != history_machine(avx2)[0]
    assert history_machine(avx512)[0] == history_machine(twin)[0]  # absence: the same machine, one key
    old = {k: v for k, v in avx512.items() if k != "machine"}  # a run that predates the description
    assert history_machine({**old, "machine": None})[0] == history_machine(old)[0]
