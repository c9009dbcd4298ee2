"""Every registered technique runs for real on a small trained parent (looped over the
registry: a new technique fails here until it has an example below)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from safetensors.torch import load_model, save_model
from torch import nn

from harness import stats, suite, testing
from harness.compress import TECHNIQUES, CompressContext, VariantSkipped
from harness.config import ModelConfig, TrainConfig
from harness.errors import UserError
from harness.evaluate import evaluate, predict_logits
from harness.inspection import state_size
from harness.models import MODELS
from harness.tasks import TASKS

TINY_BERT = {"tokenizer": "bundled:minilm", "max_length": 32,
             "config": {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}}
MODELS_IN_SUITE = {
    "cnn": ModelConfig("cnn", "cnn", {"channels": [8, 16], "hidden": 32}, TrainConfig(epochs=3, batch_size=32, lr=3e-3)),
    "mlp": ModelConfig("mlp", "mlp", {"hidden": [16]}, TrainConfig(epochs=3, batch_size=32, lr=3e-3)),
    "bert": ModelConfig("bert", "bert", TINY_BERT, TrainConfig(epochs=1, batch_size=16, lr=1e-3, max_samples=128)),
}


@pytest.fixture(scope="module")
def parents(sst2_slice: Path):
    tasks = {"image": TASKS.get("digits")(None), "text": TASKS.get("sst2")(sst2_slice)}
    out = {}
    for name, cfg in MODELS_IN_SUITE.items():
        task = tasks["text" if cfg.family == "bert" else "image"]
        torch.manual_seed(0)
        bundle = MODELS.get(cfg.family)(task, **cfg.options)
        data = bundle.encode(task.train.subset(cfg.train.max_samples))
        from harness.train import train
        train(bundle.module, data, cfg.train, seed=0)
        out[name] = (task, bundle)
    return out


def context(parents, model: str, params: dict, train_cfg: TrainConfig | None = None,
            technique: str | None = None) -> CompressContext:
    return testing.context(parents, model, params, MODELS_IN_SUITE, train_cfg,
                           TECHNIQUES.get(technique)() if technique else None)


@pytest.mark.parametrize("technique", TECHNIQUES.names())
def test_every_technique_builds_a_working_variant(technique: str, parents, tmp_path: Path) -> None:
    tech = TECHNIQUES.get(technique)()
    example = tech.example  # every technique declares one, a plugin's too
    assert example, f"technique {technique!r} declares no example: set Technique.example = (model, params)"
    model, params = example
    params = testing.example_params(params, parents[model][1].module, tmp_path)
    tech.validate(params, "test", set(MODELS_IN_SUITE))
    task, parent_bundle = parents[model]
    tech.preflight(params, copy.deepcopy(parent_bundle.module), "test")
    result = tech.apply(context(parents, model, params, technique=technique))
    if result.elsewhere is not None:  # made outside joulebench: no window at all, never a 0 J one
        assert result.windows == {} and len(result.elsewhere.sha256) == 64
    else:
        assert result.windows["create"].energy_j > 0
    eval_data = result.bundle.encode(task.eval.subset(200))
    acc = evaluate(result.module, eval_data, 64).accuracy
    parent_acc = evaluate(parent_bundle.module, parent_bundle.encode(task.eval.subset(200)), 64).accuracy
    if task.kind == "image":  # the digits parents are well trained; the tiny text parent is not
        assert acc > 1.5 / task.num_labels  # well above chance (0.1)
    assert acc >= parent_acc - 0.25
    if tech.cacheable:  # what the artifact cache does: weights only, structure rebuilt from the recipe
        path = tmp_path / "weights.safetensors"
        save_model(result.module, str(path))
        arch = MODELS_IN_SUITE[tech.architecture(params, model)]
        fresh = MODELS.get(arch.family)(task, **arch.options).module
        skeleton = tech.rebuild(copy.deepcopy(parent_bundle.module), fresh, params, result.info)
        load_model(skeleton, str(path), strict=True)
        skeleton.eval()
        assert torch.equal(predict_logits(skeleton, eval_data, 64), predict_logits(result.module, eval_data, 64))


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_unstructured_sparsity_within_one_percent(parents, sparsity: float) -> None:
    _, bundle = parents["cnn"]

    def zeros(module: nn.Module) -> tuple[int, int]:  # counted here, not by the code under test
        ws = [m.weight for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        return sum(int((w == 0).sum()) for w in ws), sum(w.numel() for w in ws)

    assert zeros(bundle.module)[0] == 0  # the zeros below come from pruning
    result = TECHNIQUES.get("prune")().apply(context(parents, "cnn", {"sparsity": sparsity}))
    z, n = zeros(result.module)
    assert abs(z / n - sparsity) < 0.01  # the fine-tuning kept the pruned weights at zero
    assert not any(hasattr(m, "weight_mask") for m in result.module.modules())  # masks made permanent


def test_int8_is_smaller_on_disk_than_fp32(parents) -> None:
    task, bundle = parents["bert"]
    result = TECHNIQUES.get("quantize")().apply(context(parents, "bert", {"dtype": "int8"}))
    fp32_bytes, fp32_weights, _ = state_size(bundle.module)
    int8_bytes, int8_weights, _ = state_size(result.module)
    linear = sum(m.weight.numel() for m in bundle.module.modules() if isinstance(m, nn.Linear))
    assert fp32_bytes - int8_bytes > 2 * linear  # most of each Linear weight's 4 bytes saved (packing costs some)
    assert int8_weights == pytest.approx(fp32_weights, rel=0.01)  # same weights, fewer bytes each
    assert not any(type(m) is nn.Linear for m in result.module.modules())  # no float Linear left
    data = bundle.encode(task.eval.subset(200))
    before, after = predict_logits(bundle.module, data, 64), predict_logits(result.module, data, 64)
    assert not torch.equal(before, after)  # int8 arithmetic really ran ...
    assert (before.argmax(1) == after.argmax(1)).float().mean() > 0.9  # ... and mostly agrees


def test_structured_pruning_really_shrinks(parents) -> None:
    _, bundle = parents["bert"]
    before = sum(p.numel() for p in bundle.module.parameters())
    heads = TECHNIQUES.get("prune_heads")().apply(context(parents, "bert", {"keep_heads": 1}))
    layer0 = heads.module.hf.bert.encoder.layer[0].attention.self
    assert layer0.query.out_features == 32 // 4  # one head of size 8 left
    assert sum(p.numel() for p in heads.module.parameters()) < before
    layers = TECHNIQUES.get("prune_layers")().apply(context(parents, "bert", {"keep_layers": 1}))
    assert len(layers.module.hf.bert.encoder.layer) == 1
    assert sum(p.numel() for p in layers.module.parameters()) < before


def test_fp16_on_cpu_is_a_skip_with_its_reason(parents) -> None:
    with pytest.raises(VariantSkipped, match="needs a CUDA GPU"):
        TECHNIQUES.get("quantize")().apply(context(parents, "cnn", {"dtype": "fp16"}))


@pytest.mark.parametrize("variant, needle", [
    ({"id": "cnn.p", "parent": "cnn", "technique": "prune", "params": {"sparsity": 1.0}}, "less than 1"),
    ({"id": "cnn.p", "parent": "cnn", "technique": "prune", "params": {"sparsity": -0.1}}, "greater than or equal to 0"),
    ({"id": "cnn.p", "parent": "cnn", "technique": "prune", "params": {"amount": 0.5}}, "unknown option 'amount'"),
    ({"id": "cnn.q", "parent": "cnn", "technique": "quantize", "params": {"dtype": "int4"}}, "should be 'int8', 'bf16' or 'fp16'"),
    ({"id": "cnn.d", "parent": "cnn", "technique": "distill", "params": {"student": "ghost"}}, "needs student"),
    ({"id": "cnn.x", "parent": "cnn", "technique": "sharpen"}, "unknown technique 'sharpen'"),
    ({"id": "cnn.x", "parent": "nobody", "technique": "prune", "params": {"sparsity": 0.5}}, "names parent 'nobody'"),
])
def test_bad_variant_is_one_clear_line(variant: dict, needle: str) -> None:
    raw = {"name": "t", "task": {"name": "digits"}, "models": {"cnn": {"family": "cnn"}}, "variants": [variant]}
    with pytest.raises(UserError) as err:
        suite.parse(raw, "bad.yaml")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_mcnemar_exact_and_chi_square() -> None:
    # 1 discordant pair each way: exact p = 1
    assert stats.mcnemar([True, False, True], [False, True, True]) == (1, 1, 1.0)
    # b=0, c=6: exact two-sided p = 2 / 2^6
    parent = [False] * 6 + [True] * 10
    variant = [True] * 16
    assert stats.mcnemar(parent, variant) == (0, 6, pytest.approx(2 / 64))
    # b=10, c=30 (n=40): chi2 = (20-1)^2/40 = 9.025 -> p = 0.00266
    parent = [True] * 10 + [False] * 30
    variant = [False] * 10 + [True] * 30
    assert stats.mcnemar(parent, variant)[2] == pytest.approx(0.002663, rel=1e-3)
