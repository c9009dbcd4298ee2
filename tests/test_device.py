"""The device axis on any machine: resolution against a fake torch.cuda, syncs at window
edges and in warm-up (a call log through the monitor's sync hook), precision checks,
2:4 masks, and the CLI's one line for a GPU this machine does not have."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn

from harness import device as device_mod
from harness.compress import TECHNIQUES
from harness.compress.prune import semi_structured_unsupported, sparse_backend, two_of_four_layers, two_of_four_mask
from harness.config import MeasureConfig, TrainConfig
from harness.errors import UserError
from harness.measure import measure_rounds, prepare
from harness.meters import EnergyMonitor
from harness.meters.base import Availability, Backend
from harness.models import Encoded
from harness.train import train, unsupported_precision
from tests.conftest import ROOT, cli, run_cli


class FakeCuda:
    """The slice of torch.cuda that device resolution and sync use."""

    def __init__(self, names: list[str], capability=(9, 0)) -> None:
        self.names, self.capability = names, capability
        self.calls: list[str] = []

    def is_available(self) -> bool:
        self.calls.append("is_available")
        return bool(self.names)

    def device_count(self) -> int:
        return len(self.names)

    def get_device_properties(self, i: int):
        return SimpleNamespace(name=self.names[i], major=self.capability[0], minor=self.capability[1],
                               uuid=f"0000000{i}-aaaa-bbbb-cccc-dddddddddddd")

    def synchronize(self, index: int) -> None:
        self.calls.append(f"synchronize({index})")


def test_resolution() -> None:
    none, two = FakeCuda([]), FakeCuda(["Fake H100", "Fake H100"])
    assert device_mod.resolve("auto", none).name == "cpu"
    assert device_mod.resolve("cpu", two).name == "cpu"
    d = device_mod.resolve("auto", two)
    assert (d.name, d.model, d.capability, d.uuid) == ("cuda:0", "Fake H100", (9, 0),
                                                      "GPU-00000000-aaaa-bbbb-cccc-dddddddddddd")
    assert device_mod.resolve("cuda:1", two).index == 1
    assert d.cache_tag == "cuda:Fake H100" and device_mod.resolve("cpu", two).cache_tag == "cpu"
    assert d.describe()["requested"] == "auto"
    with pytest.raises(UserError, match="asked for but .*--device cpu"):
        device_mod.resolve("cuda", none)
    with pytest.raises(UserError, match=r"sees 2 GPU\(s\) \(cuda:0..cuda:1\)"):
        device_mod.resolve("cuda:2", two)
    for bad in ("gpu", "cuda:x", "cpu:0", "", 3):
        with pytest.raises(UserError, match="auto, cpu, cuda or cuda:N"):
            device_mod.resolve(bad, two)


def test_sync_touches_only_the_runs_gpu_and_never_cuda_on_a_cpu_run() -> None:
    fake = FakeCuda(["Fake A", "Fake B"])
    device_mod.resolve("cuda:1", fake).sync()
    assert fake.calls[-1] == "synchronize(1)" and "synchronize(0)" not in fake.calls
    cpu_fake = FakeCuda(["Fake A"])
    cpu = device_mod.resolve("cpu", cpu_fake)
    cpu.sync()
    assert cpu_fake.calls == []  # a CPU run never asks CUDA anything: no context on an idle GPU


class LoggingBackend(Backend):
    method = "estimate"
    covers_kinds = frozenset({"cpu"})

    def __init__(self, log: list[str]) -> None:
        self.log, self.j = log, 0.0

    @classmethod
    def probe(cls, hw):
        return Availability(True, "test")

    def components(self):
        return ("cpu",)

    def totals(self):
        self.log.append("read")
        self.j += 1.0
        return {"cpu": self.j}

    def formula(self):
        return "test"


class LoggingModule(nn.Module):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.lin, self.log = nn.Linear(4, 2), log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append("forward")
        return self.lin(x)


def test_syncs_at_every_window_edge_and_around_the_warm_up() -> None:
    log: list[str] = []
    monitor = EnergyMonitor([LoggingBackend(log)], sync=lambda: log.append("sync"))
    data = Encoded({"x": torch.randn(10, 4)}, torch.zeros(10, dtype=torch.long))
    cfg = MeasureConfig(batch_size=5, warmup=2, repetitions=6, min_window_s=1e-6, idle_s=0)
    target = prepare("t", LoggingModule(log), data, cfg, monitor)
    # 2 warm-up passes of 2 batches, then one calibration pass (it fills the 1 us window: timed once): each
    # clock read synced
    assert log == ["sync"] + ["forward"] * 4 + ["sync"] + ["sync"] + ["forward"] * 2 + ["sync"]
    assert target.passes == 1 and target.batch_size == 5
    log.clear()
    measure_rounds([target], cfg, monitor)
    window = ["sync", "read", "forward", "forward", "sync", "read"]
    assert log == window * 6  # no forward pass outside a window, every edge synced before it reads


def test_batch_sizes_are_separate_targets_over_the_same_examples() -> None:
    log: list[str] = []
    monitor = EnergyMonitor([LoggingBackend(log)])
    data = Encoded({"x": torch.randn(10, 4)}, torch.zeros(10, dtype=torch.long))
    cfg = MeasureConfig(batch_size=5, batch_sizes=(1, 5, 10), warmup=1, repetitions=6, min_window_s=1e-6, idle_s=0)
    assert cfg.all_batch_sizes() == (5, 1, 10)  # the table's own first
    targets = [prepare(f"t@{b}", LoggingModule(log), data, cfg, monitor, batch_size=b) for b in cfg.all_batch_sizes()]
    assert [len(t.batches) for t in targets] == [2, 10, 1]
    results = measure_rounds(targets, cfg, monitor)
    assert [r.batch_size for r in results] == [5, 1, 10]
    assert all(r.inferences_per_window == 10 * r.passes for r in results)


def test_precision() -> None:
    cpu = torch.device("cpu")
    assert unsupported_precision("fp16", cpu) and "bf16" in unsupported_precision("fp16", cpu)
    assert unsupported_precision("bf16", cpu) is None and unsupported_precision("fp16", torch.device("cuda")) is None
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = module

        def forward(self, x):
            return self.m(x)

    x = torch.randn(64, 4)
    data = Encoded({"x": x}, (x[:, 0] > 0).long())
    stats = train(Wrap(), data, TrainConfig(epochs=30, batch_size=16, lr=0.05, precision="bf16"), seed=0)
    assert stats.final_loss < 0.5  # bf16 autocast really trained it
    assert all(p.dtype == torch.float32 for p in module.parameters())  # weights stay fp32


def test_two_of_four_keeps_the_two_largest_of_every_four() -> None:
    w = torch.tensor([[0.1, -3.0, 2.0, 0.0, 5.0, 4.0, -6.0, 1.0]])
    mask = two_of_four_mask(w)
    assert mask.tolist() == [[0, 1, 1, 0, 1, 0, 1, 0]]  # |-3|, |2|; then |5|, |-6|
    big = torch.randn(64, 128)
    m = two_of_four_mask(big).reshape(64, 32, 4)
    assert (m.sum(-1) == 2).all()
    layers = two_of_four_layers(nn.Sequential(nn.Linear(128, 64), nn.Linear(64, 2), nn.Linear(100, 64)))
    assert [(m.in_features, m.out_features) for m in layers] == [(128, 64)]  # shapes the kernels accept


def test_two_of_four_is_a_one_line_skip_off_ampere() -> None:
    cpu = device_mod.resolve("cpu", FakeCuda([]))
    assert "needs an NVIDIA GPU" in semi_structured_unsupported(cpu)
    old = device_mod.resolve("cuda", FakeCuda(["Fake V100"], capability=(7, 0)))
    assert "compute capability 8.0+" in semi_structured_unsupported(old)
    ampere = device_mod.resolve("cuda", FakeCuda(["Fake A100"], capability=(8, 0)))
    assert semi_structured_unsupported(ampere) is None  # fp32 through CUTLASS
    hopper = device_mod.resolve("cuda", FakeCuda(["Fake H100"], capability=(9, 0)))
    assert "give the variant dtype: bf16" in semi_structured_unsupported(hopper)  # what an H100 run refused
    assert semi_structured_unsupported(hopper, "bf16") is None and semi_structured_unsupported(hopper, "fp16") is None
    technique = TECHNIQUES.get("prune")()
    technique.validate({"pattern": "2:4"}, "test")
    technique.validate({"pattern": "2:4", "dtype": "bf16"}, "test")
    for bad in ({"pattern": "1:4"}, {"pattern": "2:4", "sparsity": 0.5}, {}, {"sparsity": 0.5, "dtype": "bf16"},
                {"pattern": "2:4", "dtype": "fp8"}):
        with pytest.raises(UserError):
            technique.validate(bad, "test")
    assert technique.counts_flops_on_parent({"pattern": "2:4"}) and not technique.counts_flops_on_parent({"sparsity": .5})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cli_device_cuda_without_a_gpu_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("run", "benchmarks/digits.yaml", "--quick", "--device", "cuda", "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("joulebench: error: device 'cuda' asked for but")
    assert "Traceback" not in proc.stderr and not out.exists()


def test_cli_fp16_training_on_the_cpu_is_one_line(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "benchmarks" / "digits.yaml").read_text())
    raw["train"]["precision"] = "fp16"
    suite = tmp_path / "fp16.yaml"
    suite.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    proc = cli("run", str(suite), "--quick", "--device", "cpu", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "precision fp16 needs a CUDA device" in errors[0]
    assert "Traceback" not in proc.stderr and not (out / "records.jsonl").exists()


def test_two_of_four_weights_go_to_the_kernels_that_take_their_dtype() -> None:
    # cuSPARSELt (torch's default) refuses fp32, which an H100 run showed: fp32 goes to CUTLASS
    from torch.sparse import SparseSemiStructuredTensorCUSPARSELT as Lt, SparseSemiStructuredTensorCUTLASS as Cutlass

    assert sparse_backend(torch.float32, cusparselt=True) is Cutlass
    assert sparse_backend(torch.bfloat16, cusparselt=True) is Lt and sparse_backend(torch.float16, True) is Lt
    assert sparse_backend(torch.bfloat16, cusparselt=False) is Cutlass  # a torch built without cuSPARSELt
    assert sparse_backend(torch.float64, cusparselt=True) is None  # no kernel: finalize skips in one line
