"""Benchmark (prints figures; not a test): what one energy reading costs per backend,
and that cost as a fraction of the shortest window each suite profile allows.

A window costs two readings (begin and end). Target: under 1% of a window.

Only the estimate runs on real hardware here. RAPL is timed against a fake powercap
tree on the local filesystem (sysfs reads of the real counters also go through the
kernel's MSR read, so expect a few microseconds more); NVML against a fake module, so
its figure is the Python overhead only (a real NVML call is typically 10-100 us).

    python benchmarks/scripts/meter_overhead.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import suite  # noqa: E402
from harness.meters.estimate import EstimateBackend  # noqa: E402
from harness.meters.nvml import NvmlBackend  # noqa: E402
from harness.meters.rapl import RaplBackend  # noqa: E402
from tests.test_nvml import FakeNvml  # noqa: E402
from tests.test_rapl import FakePowercap  # noqa: E402


def cost_per_reading(backend, n: int = 2000) -> float:
    for _ in range(50):
        backend.totals()
    start = time.perf_counter()
    for _ in range(n):
        backend.totals()
    return (time.perf_counter() - start) / n


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    fake = FakePowercap(tmp)
    fake.zone("intel-rapl:0", "package-0", 1000)
    fake.zone("intel-rapl:0:2", "dram", 1000)
    backends = {
        "estimate (real)": EstimateBackend(),
        "rapl (fake tree, 2 zones)": RaplBackend(tmp, poll_interval_s=0),
        "nvml (fake module, 1 GPU)": NvmlBackend(FakeNvml(energies_mj=[0]), env={}, update_period_s=0.1),
    }
    windows = {}
    for path in sorted((ROOT / "benchmarks").glob("*.yaml")):
        for profile in suite.PROFILES:
            windows[f"{path.stem}/{profile}"] = suite.load(path, profile).measure.min_window_s
    print(f"{'backend':28s} {'us/reading':>10s}  " + "  ".join(f"{k:>13s}" for k in windows))
    for name, backend in backends.items():
        per = cost_per_reading(backend)
        fractions = "  ".join(f"{2 * per / w:>12.4%} " for w in windows.values())
        print(f"{name:28s} {per * 1e6:10.1f}  {fractions}")
        backend.close()
    print("\ncolumns after us/reading: overhead of one window (2 readings) / the profile's min_window_s")


if __name__ == "__main__":
    main()
