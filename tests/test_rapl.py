"""RAPL against a fake powercap tree laid out like /sys/class/powercap: package zones
with core/uncore/dram subzones nested inside, flat links beside them, and psys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import meters
from harness.errors import MeterError, UserError
from harness.meters import EnergyMonitor, Hardware
from harness.meters.rapl import RaplBackend

BIG = 262_143_328_850  # a typical max_energy_range_uj


class FakePowercap:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(exist_ok=True)
        (root / "intel-rapl").mkdir(exist_ok=True)  # the control type dir, not a zone

    def zone(self, zid: str, name: str, energy_uj: int = 0, max_range: int = BIG) -> Path:
        parts = zid.split(":")
        parent = self.root if len(parts) == 2 else self.root / ":".join(parts[:2])
        d = parent / zid
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
        self.set(d, energy_uj)
        if parent != self.root:  # sysfs lists every zone flat too
            (self.root / zid).symlink_to(d)
        return d

    @staticmethod
    def set(zone: Path, energy_uj: int) -> None:
        (zone / "energy_uj").write_text(f"{energy_uj}\n")


def window(backend: RaplBackend, action) -> dict[str, float]:
    monitor = EnergyMonitor([backend])
    monitor.begin_window("w")
    action()
    m = monitor.end_window("w")
    backend.close()
    return {c.component: c.energy_j for c in m.components}


def test_normal_delta(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    pkg = fake.zone("intel-rapl:0", "package-0", 1_000)
    dram = fake.zone("intel-rapl:0:2", "dram", 500)
    b = RaplBackend(tmp_path, poll_interval_s=0)
    got = window(b, lambda: (fake.set(pkg, 3_001_000), fake.set(dram, 1_000_500)))
    assert got == {"cpu:0": pytest.approx(3.0), "dram:0": pytest.approx(1.0)}
    assert b.method == "rapl" and "package + dram" in b.formula()


def test_single_wrap(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    pkg = fake.zone("intel-rapl:0", "package-0", 9_000_000, max_range=10_000_000)
    b = RaplBackend(tmp_path, poll_interval_s=0)
    got = window(b, lambda: fake.set(pkg, 1_000_000))
    assert got["cpu:0"] == pytest.approx(2.0)  # 9 J -> wrap at 10 J -> 1 J


def test_double_wrap_needs_the_poll(tmp_path: Path) -> None:
    """Two wraps in one long window: edge readings alone see 4 J; with a poll between
    the wraps the true 14 J is kept."""
    fake = FakePowercap(tmp_path)
    pkg = fake.zone("intel-rapl:0", "package-0", 9_000_000, max_range=10_000_000)
    b = RaplBackend(tmp_path, poll_interval_s=0)

    def two_wraps() -> None:
        fake.set(pkg, 5_000_000)  # +6 J, first wrap
        b.poll()
        fake.set(pkg, 3_000_000)  # +8 J, second wrap

    assert window(b, two_wraps)["cpu:0"] == pytest.approx(14.0)
    b2 = RaplBackend(tmp_path, poll_interval_s=0)  # what a poll-less reader would get
    fake.set(pkg, 9_000_000)
    assert window(b2, lambda: fake.set(pkg, 3_000_000))["cpu:0"] == pytest.approx(4.0)


def test_background_thread_catches_wraps(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    # a 10 J range wraps in 20 ms at 500 W, so the thread polls every 5 ms on its own
    pkg = fake.zone("intel-rapl:0", "package-0", 9_000_000, max_range=10_000_000)
    b = RaplBackend(tmp_path)
    assert b.poll_interval_s == pytest.approx(0.005)

    def two_wraps() -> None:
        fake.set(pkg, 5_000_000)
        time.sleep(0.2)
        fake.set(pkg, 3_000_000)

    assert window(b, two_wraps)["cpu:0"] == pytest.approx(14.0)


def test_missing_dram_zone_is_estimated_and_labelled(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    fake.zone("intel-rapl:0", "package-0", 0)
    fake.zone("intel-rapl:0:0", "core", 0)
    logs: list[str] = []
    hw = Hardware(powercap_root=tmp_path, nvml=_no_nvml())
    monitor = meters.build("auto", log=logs.append, hw=hw)
    try:
        assert [b.method for b in monitor.backends] == ["rapl", "estimate"]
        assert monitor.backends[0].components() == ("cpu:0",)
        assert monitor.backends[1].components() == ("dram",)  # the estimate covers only dram
        assert monitor.method == "estimate+rapl"
        assert any("no counter for dram" in line and "ESTIMATE" in line for line in logs)
    finally:
        monitor.close()


def test_nested_zones_are_not_double_counted(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    pkg = fake.zone("intel-rapl:0", "package-0")
    core = fake.zone("intel-rapl:0:0", "core")
    uncore = fake.zone("intel-rapl:0:1", "uncore")
    dram = fake.zone("intel-rapl:0:2", "dram")
    psys = fake.zone("intel-rapl:1", "psys")
    b = RaplBackend(tmp_path, poll_interval_s=0)
    assert b.components() == ("cpu:0", "dram:0")

    def work() -> None:
        fake.set(pkg, 10_000_000)
        fake.set(core, 7_000_000)
        fake.set(uncore, 2_000_000)
        fake.set(dram, 3_000_000)
        fake.set(psys, 20_000_000)

    got = window(b, work)
    assert sum(got.values()) == pytest.approx(13.0)  # package 10 + dram 3


def test_two_sockets_are_summed(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    zones = [fake.zone("intel-rapl:0", "package-0"), fake.zone("intel-rapl:0:0", "dram"),
             fake.zone("intel-rapl:1", "package-1"), fake.zone("intel-rapl:1:0", "dram")]
    b = RaplBackend(tmp_path, poll_interval_s=0)
    assert b.components() == ("cpu:0", "dram:0", "cpu:1", "dram:1")

    def work() -> None:
        for z, uj in zip(zones, (4_000_000, 1_000_000, 5_000_000, 2_000_000)):
            fake.set(z, uj)

    got = window(b, work)
    assert got == {"cpu:0": pytest.approx(4), "dram:0": pytest.approx(1),
                   "cpu:1": pytest.approx(5), "dram:1": pytest.approx(2)}


def test_permission_denied_names_the_file_and_the_fix(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    fake.zone("intel-rapl:0", "package-0")

    def root_only(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    hw = Hardware(powercap_root=tmp_path, read=root_only, nvml=_no_nvml())
    avail = RaplBackend.probe(hw)
    assert not avail.available and avail.blocked
    assert str(tmp_path / "intel-rapl:0" / "energy_uj") in avail.reason and "chmod" in avail.reason
    with pytest.raises(MeterError, match="permission denied"):
        RaplBackend(tmp_path, read=root_only)
    # auto stops with the fix rather than quietly estimating ...
    with pytest.raises(UserError, match="--allow-estimate"):
        meters.build("auto", hw=hw, log=lambda s: None)
    # ... unless the estimate is allowed, and then it says so
    logs: list[str] = []
    monitor = meters.build("auto", allow_estimate=True, hw=hw, log=logs.append)
    assert monitor.method == "estimate" and any("unreadable" in line for line in logs)


def test_absent_powercap(tmp_path: Path) -> None:
    avail = RaplBackend.probe(Hardware(powercap_root=tmp_path / "none"))
    assert not avail.available and not avail.blocked and "no " in avail.reason


def _no_nvml():
    from tests.test_nvml import FakeNvml

    return FakeNvml(powers_mw=[], broken_init=True)


def test_a_zone_is_held_to_its_own_power_limit(tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path)
    pkg = fake.zone("intel-rapl:0", "package-0", 1_000)
    fake.zone("intel-rapl:0:2", "dram", 500)  # no constraint files: no cap (absence)
    (pkg / "constraint_0_power_limit_uw").write_text("65000000\n")  # long term: 65 W
    (pkg / "constraint_1_power_limit_uw").write_text("81250000\n")  # short term: 81.25 W
    b = RaplBackend(tmp_path, poll_interval_s=0)
    assert b.max_power_w("cpu:0") == pytest.approx(81.25) and b.max_power_w("dram:0") is None
    b.close()
