"""Every registered runtime runs a small trained model for real, on real eval data
(looped over the registry: a new runtime fails here until it has an example below),
and the seams around runtimes: suite syntax, the measured loop's compile check, the
one-line skips, the rows of the quick digits run."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness import report, runtimes, suite
from harness.compress import VariantSkipped
from harness.config import MeasureConfig, TrainConfig
from harness.device import CPU, Device
from harness.errors import UserError
from harness.evaluate import predict_logits
from harness.measure import Target, measure_rounds
from harness.meters import EnergyMonitor
from harness.meters.estimate import EstimateBackend
from harness.models import MODELS
from harness.runtimes import DeployContext, Runnable
from harness.tasks import TASKS
from harness.train import train
from tests.conftest import cli

#: Eager and exported fp32 graphs may round differently (fused, reordered arithmetic):
#: a prediction may flip only where eager's two best logits are this close (a tie).
TIE_MARGIN = 1e-4
TINY_BERT = {"tokenizer": "bundled:minilm", "max_length": 32,
             "config": {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}}
#: runtime -> the models it is tried on, as each runtime declares (``Runtime.examples``)
EXAMPLES = {name: runtimes.RUNTIMES.get(name).examples for name in runtimes.RUNTIMES.names()}


@pytest.fixture(scope="module")
def trained(sst2_slice: Path):
    """(eval data, module) per model, trained briefly on real train splits."""
    out = {}
    for name, family, options, task, cfg in (
            ("cnn", "cnn", {"channels": [8, 16], "hidden": 32}, TASKS.get("digits")(None),
             TrainConfig(epochs=3, batch_size=32, lr=3e-3)),
            ("bert", "bert", TINY_BERT, TASKS.get("sst2")(sst2_slice),
             TrainConfig(epochs=1, batch_size=16, lr=1e-3, max_samples=256))):
        torch.manual_seed(0)
        bundle = MODELS.get(family)(task, **options)
        train(bundle.module, bundle.encode(task.train.subset(cfg.max_samples)), cfg, seed=0)
        out[name] = (bundle.encode(task.eval), bundle.module.eval())
    return out


def deploy(runtime: str, data, module, request: str | None = None, **options) -> runtimes.Deployment:
    samples = [data.batch(idx) for idx in data.buckets(64)]
    ctx = DeployContext("v", module, request, samples, data.lengths is not None, CPU, torch.get_num_threads(),
                        log=lambda s: None)
    return runtimes.RUNTIMES.get(runtime)(**options).deploy(ctx)


def assert_same_predictions(eager: torch.Tensor, other: torch.Tensor) -> None:
    """The predictions agree wherever eager's top two logits are not a tie."""
    top2 = eager.topk(2, dim=-1).values
    ties = (top2[:, 0] - top2[:, 1]) < TIE_MARGIN
    differ = eager.argmax(-1) != other.argmax(-1)
    assert not (differ & ~ties).any(), f"{int((differ & ~ties).sum())} predictions differ outside ties"


def test_every_runtime_has_an_example() -> None:
    assert set(runtimes.RUNTIMES.names()) == set(EXAMPLES)


@pytest.mark.parametrize("runtime, model", [(r, m) for r, ms in EXAMPLES.items() for m in ms])
def test_runtime_predicts_like_eager_on_the_eval_split(trained, runtime: str, model: str) -> None:
    data, module = trained[model]
    reference = predict_logits(module, data, 64)
    got = deploy(runtime, data, module)
    logits = predict_logits(got.runnable, data, 64)
    assert logits.shape == reference.shape
    assert_same_predictions(reference, logits)
    assert torch.allclose(logits, reference, atol=1e-3)  # the same function, up to rounding
    if runtime == "onnxruntime":  # the .onnx file is the artifact and the size on disk
        assert got.artifact is not None and got.size_bytes == len(got.artifact) > 0
        assert got.info["providers"] == ["CPUExecutionProvider"] and got.info["intra_op_threads"] >= 1
    if runtime == "compile":
        assert got.info["graphs_compiled"] >= 1 and got.info["graphs_on_second_pass"] == 0


def test_ort_int8_is_smaller_and_nearly_as_accurate(trained) -> None:
    data, module = trained["bert"]
    fp32 = deploy("onnxruntime", data, module)
    int8 = deploy("onnxruntime", data, module, request="int8_dynamic")
    assert "quantize_dynamic" in int8.info["quantization"]
    # int8 quantizes the encoder's matrix products; the fp32 embedding table stays as it is
    assert int8.size_bytes < fp32.size_bytes
    labels = data.labels.numpy()
    acc = [(predict_logits(d.runnable, data, 64).argmax(-1).numpy() == labels).mean() for d in (fp32, int8)]
    assert abs(acc[0] - acc[1]) < 0.05
    # the session rebuilt from the cached bytes gives the same logits
    again = deploy_from(int8.artifact, data, module)
    assert torch.equal(predict_logits(again.runnable, data, 64), predict_logits(int8.runnable, data, 64))


def deploy_from(artifact: bytes, data, module) -> runtimes.Deployment:
    ctx = DeployContext("v", module, "int8_dynamic", [data.batch(data.buckets(64)[0])], True, CPU, 1)
    return runtimes.RUNTIMES.get("onnxruntime")().deploy(ctx, artifact)


def test_a_file_onnxruntime_cannot_load_is_a_skip_not_a_crash(trained) -> None:
    data, module = trained["cnn"]
    ctx = DeployContext("v", module, None, [data.batch(data.buckets(64)[0])], False, CPU, 1)
    with pytest.raises(VariantSkipped, match="could not load"):
        runtimes.RUNTIMES.get("onnxruntime")().deploy(ctx, b"\x80\x04not an onnx file")


def test_missing_onnxruntime_is_a_one_line_skip_naming_the_extra(monkeypatch) -> None:
    from importlib import metadata

    from harness.runtimes import ort

    real = metadata.version

    def version(name: str) -> str:
        if name == "onnxruntime":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    assert ort.OnnxRuntime().unavailable(CPU) is None  # installed here
    monkeypatch.setattr(ort.metadata, "version", version)
    why = ort.OnnxRuntime().unavailable(CPU)
    assert why is not None and "pip install joulebench[onnx]" in why and "\n" not in why


def test_onnxruntime_on_a_gpu_is_a_one_line_skip() -> None:
    gpu = Device("cuda", 0, "NVIDIA H100", "GPU-1234", (9, 0))
    why = runtimes.RUNTIMES.get("onnxruntime")().unavailable(gpu)
    assert why and "--device cpu" in why and "\n" not in why
    assert runtimes.RUNTIMES.get("compile")().unavailable(gpu) is None


class CompilingRunnable(Runnable):
    """A runnable that 'compiles' a graph on its first ``cold`` calls (a planted
    recompile inside the windows when cold > the warm-up's calls)."""

    def __init__(self, cold: int) -> None:
        self.calls, self.cold, self.graphs = 0, cold, 0

    def stage(self, batch):
        return batch

    def __call__(self, staged):
        self.calls += 1
        if self.calls <= self.cold:
            self.graphs += 1
        return torch.zeros(1)

    def logits(self, out):
        return out

    def compilations(self) -> int:
        return self.graphs


def test_compiles_inside_windows_are_counted() -> None:
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    cfg = MeasureConfig(repetitions=6)
    warm, cold = CompilingRunnable(cold=0), CompilingRunnable(cold=3)
    eager = runtimes.eager(torch.nn.Linear(2, 2))
    targets = [Target("warm", warm, [1, 2], 2, 50, 0.0), Target("cold", cold, [1, 2], 2, 50, 0.0),
               Target("eager", eager, [{"input": torch.zeros(1, 2)}], 1, 50, 0.0)]
    results = measure_rounds(targets, cfg, monitor)
    assert [r.compiles_in_windows for r in results] == [0, 3, None]


def test_every_compile_is_cold_even_of_a_module_of_the_same_class(trained) -> None:
    """A second seed's module of the same class, compiled in the same process, compiles
    its own graphs (dynamo reused the first seed's before: 0.3 J against 174 J)."""
    data, module = trained["cnn"]
    first = deploy("compile", data, module)
    second = deploy("compile", data, copy.deepcopy(module))
    assert first.info["graphs_compiled"] >= 1 and second.info["graphs_compiled"] >= 1
    assert second.info["graphs_compiled"] == first.info["graphs_compiled"]


def test_a_compile_that_compiled_nothing_is_refused(trained, monkeypatch) -> None:
    """Plant the reuse (no fresh entry point): the second compile compiles 0 graphs and
    is refused with the reason, never recorded as a cold compile."""
    from harness.runtimes import compiled

    data, module = trained["cnn"]
    shared = compiled.Entry(copy.deepcopy(module))
    monkeypatch.setattr(compiled, "Entry", lambda m: shared)  # the same code object every time
    deploy("compile", data, module)
    with pytest.raises(VariantSkipped, match="compiled no graph"):
        deploy("compile", data, module)


def test_a_window_counts_the_modules_imported_inside_it(tmp_path: Path, monkeypatch) -> None:
    """The detector behind "no window pays an import": plant an import, and its absence."""
    (tmp_path / "joulebench_planted_module.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monitor = EnergyMonitor([EstimateBackend(memory_bytes=lambda: 0)])
    with monitor.window("import", checked=False) as out:
        import joulebench_planted_module  # noqa: F401
    with monitor.window("none", checked=False) as quiet:
        torch.ones(3).sum()
    assert out[0].imports == 1 and out[0].to_dict()["imports"] == 1
    assert quiet[0].imports == 0


def test_suite_runtime_syntax(tmp_path: Path) -> None:
    base = {"name": "t", "task": {"name": "digits"}, "models": {"cnn": {"family": "cnn", "runtime": "compile"}}}

    def parse(variants):
        return suite.parse({**base, "variants": variants}, "s.yaml")

    s = parse([{"id": "a", "parent": "cnn", "runtime": "onnxruntime"},
               {"id": "b", "parent": "cnn", "runtime": {"name": "onnxruntime", "opset": 17},
                "technique": "quantize", "params": {"dtype": "int8"}},
               {"id": "c", "parent": "a", "technique": "prune", "params": {"sparsity": 0.5}}])
    assert s.models[0].runtime.name == "compile"
    a, b, c = s.variants
    assert a.technique is None and a.runtime.name == "onnxruntime" and a.architecture == "cnn"
    assert b.runtime.options == {"opset": 17} and b.technique == "quantize"
    assert c.runtime.name == "eager"  # not inherited: every row says its own
    for variants, needle in (
            ([{"id": "x", "parent": "cnn"}], "changes nothing from its parent"),
            ([{"id": "x", "parent": "cnn", "runtime": "tensorrt"}], "unknown runtime 'tensorrt'"),
            ([{"id": "x", "parent": "cnn", "runtime": {"name": "compile", "modes": "x"}}], "unknown option 'modes'"),
            ([{"id": "x", "parent": "cnn", "runtime": {"name": "compile", "mode": "fast"}}], "compile mode must be"),
            ([{"id": "x", "parent": "cnn", "runtime": {"name": "onnxruntime", "opset": 9}}], "opset must be"),
            ([{"id": "x", "parent": "cnn", "runtime": ["compile"]}], "must be a runtime name"),
            ([{"id": "x", "parent": "cnn", "runtime": "compile", "params": {"sparsity": 0.5}}], "no technique")):
        with pytest.raises(UserError, match=needle):
            parse(variants)


def test_bad_runtime_in_a_suite_is_one_line_at_load(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ntask: {name: digits}\nmodels: {cnn: {family: cnn}}\n"
                    "variants: [{id: x, parent: cnn, runtime: tensorrt}]\n")
    proc = cli("run", str(path), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "unknown runtime 'tensorrt'" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_digits_quick_runtime_rows(digits_run: Path) -> None:
    """The quick digits run's runtime rows: each evaluated under its runtime, tested
    against its parent, its creation measured, its size and FLOPs labelled."""
    table = pd.read_csv(digits_run / "table.csv").set_index("variant_id")
    recs = {r["variant_id"]: r for r in map(json.loads, (digits_run / "records.jsonl").read_text().splitlines())}
    for vid, runtime in (("cnn", "eager"), ("cnn.ort", "onnxruntime"), ("cnn.ort_int8", "onnxruntime"),
                         ("cnn.compiled", "compile")):
        row, rec = table.loc[vid], recs[vid]
        assert row["runtime"] == runtime and rec["runtime"]["name"] == runtime
        assert len(rec["eval"]["predictions"]) == 450 and 0.5 < row["accuracy"] <= 1
        if vid != "cnn":
            assert row["parent"] == "cnn" and 0 < row["delta_p"] <= 1 and pd.notna(row["delta_test"])
            assert rec["train"]["window"]["energy_j"] > 0  # export / compile: creation work, measured
            assert rec["flops"]["source"].startswith("parent's")
            assert row["flops_per_inference"] == table.loc["cnn", "flops_per_inference"]
            assert rec["flops"]["train"] is None and pd.isna(row["train_flops"])  # nothing trained: no count, not 0
    # ORT fp32 is the same function: its predictions are eager's (the unit test above checks ties)
    assert np.mean(np.array(recs["cnn.ort"]["eval"]["predictions"]) ==
                   np.array(recs["cnn"]["eval"]["predictions"])) > 0.99
    assert table.loc["cnn.ort", "variant"] == "runtime" and table.loc["cnn.ort_int8", "variant"] == "quantize"
    assert recs["cnn.ort_int8"]["technique_info"]["performed_by"] == "onnxruntime"
    assert "quantize_dynamic" in recs["cnn.ort_int8"]["runtime"]["info"]["quantization"]
    assert table.loc["cnn.ort_int8", "size_bytes"] < table.loc["cnn.ort", "size_bytes"]  # the .onnx files
    compiled = recs["cnn.compiled"]
    assert compiled["inference"]["compiles_in_windows"] == 0 and table.loc["cnn.compiled", "compiles_in_windows"] == 0
    assert compiled["runtime"]["info"]["graphs_compiled"] >= 1
    # the first export, quantization and compile of the process paid no import inside a
    # window (preloaded before the first one): every window of every row says 0
    for rec in recs.values():
        if rec["status"] != "ok":
            continue
        windows = [rec["train"]["window"], *rec["train"]["extra_windows"].values(), *rec["inference"]["windows"]]
        assert all(w["imports"] == 0 for w in windows), (rec["variant_id"], [w["imports"] for w in windows])
    assert pd.isna(table.loc["cnn", "compiles_in_windows"])  # eager never compiles
    assert "runtime: how the row was evaluated and measured" in (digits_run / "table.md").read_text()


def test_a_window_that_compiled_is_flagged_in_the_report(digits_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("*.png", "table.*"))
    lines = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    for rec in lines:
        if rec["variant_id"] == "cnn.compiled":
            rec["inference"]["compiles_in_windows"] = 2  # planted: two graphs compiled mid-measurement
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    table, md, _ = report.write([run], plots=False)
    assert "WARNING: cnn.compiled (digits): 2 graph(s) were compiled inside measured windows" in md
    assert table.set_index("variant_id").loc["cnn.compiled", "compiles_in_windows"] == 2
    _, clean, _ = report.write([digits_run], tmp_path / "clean", plots=False)
    assert "compiled inside measured windows" not in clean


def _matmul_onnx() -> bytes:
    """A graph whose one MatMul is large enough for onnxruntime's thread pool to share."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).random((512, 512), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 512])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 512])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


@pytest.mark.parametrize("planted", [False, True])
def test_onnxruntime_leaves_no_work_behind_its_last_run(monkeypatch, planted: bool) -> None:
    """After a session's last run, its worker threads use no CPU (they would spin for
    tens of ms by default, and the next window, another variant's, would be charged it).
    Planted: onnxruntime's default config, whose spin this test sees."""
    import time

    import numpy as np

    from harness.runtimes import _onnx

    if planted:
        monkeypatch.setattr(_onnx, "CONFIG", {})
    sess = _onnx.session(_matmul_onnx(), 2, "all")
    x = np.ones((256, 512), dtype=np.float32)
    after = []
    for _ in range(3):
        for _ in range(20):
            sess.run(None, {"x": x})
        t0 = time.process_time()
        time.sleep(0.2)
        after.append(time.process_time() - t0)
    if planted:
        assert min(after) > 0.003, after
    else:
        assert max(after) < 0.003, after


def test_the_onnxruntime_footnote_says_whether_its_rows_stopped_spinning() -> None:
    """A record says how its session ran (``spinning``); the footnote says the windows
    after onnxruntime rows are free of their spin only where every row's record says
    so, and counts the rows recorded before the setting (the published references')."""
    from harness.runtimes._onnx import described
    from harness.runtimes.ort import OnnxRuntime

    class Session:
        def get_providers(self) -> list[str]:
            return ["CPUExecutionProvider"]

    now = described(Session(), 2, "all")
    before = {k: v for k, v in now.items() if k != "spinning"}
    assert "stop spinning after each run" in OnnxRuntime.noted([now, now])
    said = OnnxRuntime.noted([now, before])
    assert "1 of 2 such row(s) ran before" in said and "stop spinning after each run, so" not in said
