"""Suite parsing and validation: every benchmark parses; every mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import plan, suite
from harness.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
# the GPU suites too: they parse anywhere; not the example plugin's, which needs the plugin
# installed (tests/test_plugins.py runs it in a virtual environment that has it)
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").rglob("*.yaml") if "plugin" not in p.parts)

MINIMAL = {
    "name": "t",
    "task": {"name": "digits"},
    "models": {"cnn": {"family": "cnn"}},
}


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("profile", suite.PROFILES)
def test_every_benchmark_parses(path: Path, profile: str) -> None:
    s = suite.load(path, profile)
    # gpu/sst2.yaml is sst2_gpu, sweeps/sst2.yaml is sst2_sweep
    expected = {"gpu": f"{path.stem}_gpu", "sweeps": f"{path.stem}_sweep"}.get(path.parent.name, path.stem)
    assert s.name == expected
    assert s.models and s.seeds
    assert s.measure.repetitions >= 6
    specs = plan.expand(s)
    trials = len(s.sweep.trials) if s.sweep else 0
    assert len(specs) == (len(s.models) + len(s.variants) + trials) * len(s.seeds)


def test_quick_profile_overrides_deeply() -> None:
    full = suite.load(ROOT / "benchmarks/sst2.yaml", "full")
    quick = suite.load(ROOT / "benchmarks/sst2.yaml", "quick")
    assert full.models[0].train.max_samples is None
    assert quick.models[0].train.max_samples == 4000
    # untouched keys survive the merge
    assert quick.models[0].train.lr == full.models[0].train.lr
    assert quick.models[0].options == full.models[0].options
    assert full.config_hash() != quick.config_hash()


def test_model_train_overrides_suite_default() -> None:
    raw = dict(MINIMAL, train={"epochs": 3, "lr": "3e-4"},
               models={"cnn": {"family": "cnn", "train": {"epochs": 5}}})
    s = suite.parse(raw, "x.yaml")
    assert s.models[0].train.epochs == 5
    assert s.models[0].train.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string


@pytest.mark.parametrize("patch, needle", [
    ({"bogus": 1}, "unknown suite key 'bogus'"),
    ({"task": {"name": "nope"}}, "unknown task 'nope'"),
    ({"task": {"name": "digits", "options": {"eval_frac": 0.2}}}, "unknown option 'eval_frac'"),
    ({"models": {"cnn": {"family": "transformer9000"}}}, "unknown model family"),
    ({"models": {"cnn": {"family": "cnn", "options": {"chanels": [8]}}}}, "unknown option 'chanels'"),
    ({"models": {}}, "lists no models"),
    ({"seeds": []}, "'seeds'"),
    ({"seeds": [1, 1]}, "repeats a seed"),
    ({"measure": {"repetitions": 5}}, "at least 6"),
    ({"measure": {"warmup": 0}}, "warmup"),
    ({"train": {"epochs": 0}}, "epochs"),
    ({"train": {"lr": "fast"}}, "lr must be float"),
    ({"train": {"schedule": "cosine"}}, "schedule"),
    ({"meter": "wattmeter"}, "unknown meter 'wattmeter'"),
    ({"meter": {"name": "auto", "gpu_idle": "maybe"}}, "gpu_idle"),
    ({"meter": {"name": "auto", "crosscheck": True}}, "unknown suite key 'crosscheck'"),
    ({"device": "gpu"}, "auto, cpu, cuda or cuda:N"),
    ({"device": "cuda:first"}, "auto, cpu, cuda or cuda:N"),
    ({"train": {"precision": "fp8"}}, "precision must be one of fp32, bf16, fp16"),
    ({"measure": {"batch_sizes": [0, 8]}}, "batch_sizes"),
    ({"measure": {"batch_sizes": 8}}, "batch_sizes"),
    ({"measure": {"include_transfer": "yes"}}, "include_transfer must be bool"),
    ({"variants": [{"id": "cnn.x", "parent": "ghost", "technique": "prune"}]}, "names parent 'ghost'"),
    ({"variants": [{"id": "cnn.x", "parent": "cnn", "technique": "origami"}]}, "unknown technique 'origami'"),
    ({"quick": {"name": "other"}}, "unknown suite key 'name'"),
])
def test_bad_suite_is_one_clear_line(patch: dict, needle: str) -> None:
    raw = {**MINIMAL, **patch}
    with pytest.raises(UserError) as err:
        suite.parse(raw, "bad.yaml")
    message = str(err.value)
    assert needle in message
    assert "\n" not in message


def test_device_meter_and_precision_keys() -> None:
    raw = dict(MINIMAL, device="cuda:1", meter={"name": "auto", "gpu_idle": "include", "cross_check": True},
               train={"precision": "bf16"}, measure={"batch_size": 8, "batch_sizes": [1, 8, 64]})
    s = suite.parse(raw, "x.yaml")
    assert s.device == "cuda:1" and s.meter.gpu_idle == "include" and s.meter.cross_check
    assert s.models[0].train.precision == "bf16"
    assert s.measure.all_batch_sizes() == (8, 1, 64)
    plain = suite.parse(dict(MINIMAL), "x.yaml")
    assert plain.device == "auto" and plain.meter.name == "auto" and plain.meter.gpu_idle == "exclude"
    assert plain.measure.all_batch_sizes() == (64,)


def test_missing_required_key() -> None:
    with pytest.raises(UserError, match="missing required key 'task'"):
        suite.parse({"name": "t", "models": {"cnn": {"family": "cnn"}}}, "bad.yaml")


def test_not_yaml_and_not_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n  task: {")
    with pytest.raises(UserError, match="not valid YAML at line"):
        suite.load(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="must hold a YAML mapping"):
        suite.load(bad)
    with pytest.raises(UserError, match="not found"):
        suite.load(tmp_path / "missing.yaml")
