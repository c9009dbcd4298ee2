"""``python -m pytest --pyargs harness.testing``: every registry entry, plugins included,
held to the contract joulebench relies on (see the package's docstring)."""

from __future__ import annotations

import copy

import pytest
import torch

from harness import registry, runtimes
from harness.compress import TECHNIQUES
from harness.device import CPU
from harness.evaluate import evaluate, predict_logits
from harness.meters import METERS
from harness.models import MODELS
from harness.runtimes import DeployContext
from harness.tasks import TASKS
from harness.testing import DIGITS_MODELS, context, example_params
from harness.train import train


@pytest.fixture(scope="module")
def parents():
    task = TASKS.get("digits")(None)
    out = {}
    for name, cfg in DIGITS_MODELS.items():
        torch.manual_seed(0)
        bundle = MODELS.get(cfg.family)(task, **cfg.options)
        train(bundle.module, bundle.encode(task.train), cfg.train, seed=0)
        out[name] = (task, bundle)
    return out


REGISTRIES = {r.kind: r for r in (TECHNIQUES, runtimes.RUNTIMES, TASKS, MODELS, METERS)}


@pytest.mark.parametrize("kind", sorted(registry.GROUPS))
def test_every_entry_point_loads(kind: str) -> None:
    failed = [p for p in REGISTRIES[kind].plugins() if p.error]
    assert not failed, "; ".join(f"{p.name} ({p.distribution}): {p.error}" for p in failed)


@pytest.mark.parametrize("name", TECHNIQUES.names())
def test_technique(name: str, parents, tmp_path) -> None:
    tech = TECHNIQUES.get(name)()
    example = tech.example
    assert example, f"technique {name!r} declares no example: set Technique.example = (model, params)"
    model, params = example
    if model not in DIGITS_MODELS:
        pytest.skip(f"{name}'s example needs the {model!r} model; these checks train digits models only")
    task, parent = parents[model]
    params = example_params(params, parent.module, tmp_path)
    tech.validate(params, f"technique {name!r}", set(DIGITS_MODELS))
    tech.preflight(params, copy.deepcopy(parent.module), f"technique {name!r}")
    result = tech.apply(context(parents, model, params, DIGITS_MODELS, technique=tech))
    if result.elsewhere is not None:  # made outside joulebench: no window, never a 0 J one
        assert result.windows == {}
    else:
        assert "create" in result.windows and result.windows["create"].energy_j > 0
    data = result.bundle.encode(task.eval)
    assert evaluate(result.module, data, 128).accuracy > 1.5 / task.num_labels  # well above chance
    if tech.cacheable:  # the artifact cache: weights only, the structure rebuilt from the recipe
        from safetensors.torch import load_model, save_model

        path = tmp_path / "weights.safetensors"
        save_model(result.module, str(path))
        arch = DIGITS_MODELS[tech.architecture(params, model)]
        fresh = MODELS.get(arch.family)(task, **arch.options).module
        skeleton = tech.rebuild(copy.deepcopy(parent.module), fresh, params, result.info)
        load_model(skeleton, str(path), strict=True)
        assert torch.equal(predict_logits(skeleton.eval(), data, 128), predict_logits(result.module, data, 128))


@pytest.mark.parametrize("name", runtimes.RUNTIMES.names())
def test_runtime(name: str, parents) -> None:
    runtime = runtimes.RUNTIMES.get(name)()
    why = runtime.unavailable(CPU)
    if why:
        pytest.skip(why)
    runtime.preload(CPU)
    task, parent = parents["cnn"]
    data = parent.encode(task.eval)
    samples = [data.batch(idx) for idx in data.buckets(128)]
    ctx = DeployContext(f"cnn.{name}", parent.module.eval(), None, samples[:2], False, CPU, 1, lambda s: None)
    runnable = runtime.deploy(ctx).runnable
    expected = predict_logits(parent.module, data, 128)
    got = torch.cat([runnable.logits(runnable(runnable.stage(b))) for b in samples])
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-3), f"{name} computes other logits than eager PyTorch"
