"""The GPU check's NVML probe (gpu_check.py runs ``probe`` in a spawned child process):
the energy counter's and the power reading's update periods, idle power (polled, and by
the counter), the board's power limit, and one long loaded window read by the counter at
its edges and by polled power integrated over it. See docs/gpu.md."""

from __future__ import annotations

import threading
import time


def log(line: str) -> None:
    print(f"gpu_check: {line}", flush=True)


class Poller:
    """Polls board power every ``interval_s`` and integrates it (trapezoid)."""

    def __init__(self, nvml, handle, interval_s: float = 0.01) -> None:
        self.nvml, self.h, self.interval = nvml, handle, interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.nvml.nvmlDeviceGetPowerUsage(self.h) / 1000.0))
            self._stop.wait(self.interval)

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def joules(self) -> float:
        s = self.samples
        return sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(s, s[1:]))

    def mean_w(self) -> float:
        s = self.samples
        return self.joules() / (s[-1][0] - s[0][0]) if len(s) > 1 else float("nan")


def load(device, seconds: float) -> int:
    """Matrix products on ``device`` for about ``seconds``; the number of products."""
    import torch

    n = 8192 if device.type == "cuda" else 256
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(8):
            a = (a @ b).clamp_(-1, 1)
        count += 8
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return count


def probe(dry: bool, idle_s: float, load_s: float) -> dict:
    import pynvml
    import torch

    from harness.meters.nvml import measure_update_period

    device = torch.device("cpu" if dry else "cuda:0")
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    if device.type == "cuda":
        torch.empty(1, device=device)  # the context, as the runner creates it before its idle baseline
        torch.cuda.synchronize(device)
    counter = lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h)  # noqa: E731
    power = lambda: pynvml.nvmlDeviceGetPowerUsage(h)  # noqa: E731
    out: dict = {"dry_run": dry, "name": str(pynvml.nvmlDeviceGetName(h)),
                 "driver": str(pynvml.nvmlSystemGetDriverVersion()), "uuid": str(pynvml.nvmlDeviceGetUUID(h))}
    for key, fn in (("power_limit_w", "nvmlDeviceGetPowerManagementLimit"),
                    ("enforced_power_limit_w", "nvmlDeviceGetEnforcedPowerLimit")):
        try:
            out[key] = getattr(pynvml, fn)(h) / 1000.0
        except Exception as exc:  # an older board or driver: say so, go on
            out[key] = f"unreadable: {exc}"
    period = [measure_update_period(counter, time.perf_counter, max_s=3.0, changes=20) for _ in range(3)]
    out["counter_update_period_s"] = period
    out["power_update_period_s"] = measure_update_period(power, time.perf_counter, max_s=3.0, changes=20)
    log(f"counter update period (3 probes) {period} s; power reading {out['power_update_period_s']} s")
    # idle: the counter over idle_s, and polled power over the same span
    t0, e0 = time.monotonic(), counter()
    with Poller(pynvml, h) as idle:
        time.sleep(idle_s)
    t1, e1 = time.monotonic(), counter()
    out["idle"] = {"seconds": t1 - t0, "counter_w": (e1 - e0) / 1000.0 / (t1 - t0), "polled_w": idle.mean_w(),
                   "polled_samples": len(idle.samples)}
    log(f"idle {out['idle']['counter_w']:.1f} W by the counter, {out['idle']['polled_w']:.1f} W polled over "
        f"{t1 - t0:.1f} s")
    # one long loaded window: the counter at its edges against polled power integrated over it
    load(device, 1.0)  # warm-up: kernels chosen, clocks up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    with Poller(pynvml, h) as busy:
        t0, e0 = time.monotonic(), counter()
        products = load(device, load_s)
        t1, e1 = time.monotonic(), counter()
    counter_j, polled_j = (e1 - e0) / 1000.0, busy.joules()
    out["loaded_window"] = {"seconds": t1 - t0, "products": products, "counter_j": counter_j, "polled_j": polled_j,
                            "counter_w": counter_j / (t1 - t0), "polled_w": busy.mean_w(),
                            "polled_over_counter": polled_j / counter_j if counter_j else None,
                            "polled_samples": len(busy.samples),
                            "max_polled_w": max((p for _, p in busy.samples), default=None)}
    lw = out["loaded_window"]
    log(f"loaded window {lw['seconds']:.1f} s: counter {counter_j:.1f} J ({lw['counter_w']:.1f} W), polled "
        f"{polled_j:.1f} J ({lw['polled_w']:.1f} W), polled/counter {lw['polled_over_counter']}")
    pynvml.nvmlShutdown()
    return out
