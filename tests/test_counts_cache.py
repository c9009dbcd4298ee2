"""FLOP counts kept beside their artifact in the cache: an unchanged rerun reads the
count instead of counting again, anything that changes the count is another key, and
an entry is numbers or nothing (never an artifact's hit or miss, never code)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch

from harness import counts
from harness.cache import ArtifactCache
from harness.models import Encoded


def made(key: str, labels: list[int]) -> SimpleNamespace:
    data = Encoded({"x": torch.arange(2 * len(labels)).reshape(len(labels), 2)}, torch.tensor(labels))
    return SimpleNamespace(spec=SimpleNamespace(train=SimpleNamespace(batch_size=4), seed=0), key=key,
                           eval_data=data, train_data=data)


def test_a_count_is_kept_beside_its_artifact(tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(counts, "forward_flops_per_example", lambda m, d, b: calls.append(b) or 100.0 * b)
    monkeypatch.setattr(counts, "training_flops_per_example", lambda m, d, b, s: 300.0)
    cache = ArtifactCache(tmp_path / "cache", log=lambda s: None)
    a = made("a" * 64, [0, 1, 0])
    assert counts.Counter(8, cache)._counted(a, False, None) == (800.0, 300.0)
    assert counts.Counter(8, cache)._counted(a, False, None) == (800.0, 300.0) and calls == [8]  # read back
    # another batch size, other data, another artifact, counted on the parent: each counted anew
    counts.Counter(16, cache)._counted(a, False, None)
    counts.Counter(8, cache)._counted(made("a" * 64, [1, 1, 0]), False, None)
    counts.Counter(8, cache)._counted(made("b" * 64, [0, 1, 0]), False, None)
    counts.Counter(8, cache)._counted(a, True, None)
    assert len(calls) == 5
    assert cache.hits == [] and cache.misses == []  # a count is not an artifact
    # without a cache, or for a module with no key, nothing is kept: counted every time
    counts.Counter(8)._counted(a, False, None)
    counts.Counter(8, cache)._counted(made("", [0, 1, 0]), False, None)
    assert len(calls) == 7


def test_a_planted_count_is_never_used(tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(counts, "forward_flops_per_example", lambda m, d, b: calls.append(b) or 1.0)
    monkeypatch.setattr(counts, "training_flops_per_example", lambda m, d, b, s: 2.0)
    cache = ArtifactCache(tmp_path / "cache", log=lambda s: None)
    a = made("c" * 64, [0, 1])
    counts.Counter(8, cache)._counted(a, False, None)
    entries = list((tmp_path / "cache").rglob("counts.json"))
    assert len(entries) == 1
    entries[0].write_text(json.dumps({"per_inference": 1e30, "per_train_example": 2.0}))  # edited: sha256 no longer matches
    assert counts.Counter(8, cache)._counted(a, False, None) == (1.0, 2.0) and len(calls) == 2  # counted again
