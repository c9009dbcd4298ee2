"""Every registered model family builds and trains a step on real data (looped over the
registry, so a new family file is tested without a new test); the tokenizer is real."""

from __future__ import annotations

import contextlib

from pathlib import Path

import pytest
import torch

from harness.models import MODELS, count_params
from harness.models.bert import BUNDLED, load_tokenizer
from harness.suite import TrainConfig
from harness.tasks import TASKS
from harness.train import train

TEXT_FAMILIES = {
    "transformers": {"tokenizer": BUNDLED, "max_length": 32,
                     "config": {"model_type": "distilbert", "n_layers": 1, "dim": 32, "n_heads": 2, "hidden_dim": 64}},
    "bert": {"tokenizer": BUNDLED, "max_length": 32,
             "config": {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}},
}


def test_tokenizer_maps_a_known_sentence_to_bert_base_uncased_ids() -> None:
    tok = load_tokenizer(BUNDLED)
    assert len(tok) == 30522  # not the 5-token vocabulary of the transformers 5 pitfall
    assert tok("hello world")["input_ids"] == [101, 7592, 2088, 102]
    assert tok("The movie was great!")["input_ids"] == [101, 1996, 3185, 2001, 2307, 999, 102]


@pytest.mark.parametrize("family", MODELS.names())
def test_every_family_builds_and_trains(family: str, sst2_slice: Path) -> None:
    if family in TEXT_FAMILIES:
        task = TASKS.get("sst2")(sst2_slice)
        options = TEXT_FAMILIES[family]
    else:
        task = TASKS.get("digits")(None)
        options = {}
    torch.manual_seed(0)
    builder = MODELS.get(family)
    example = getattr(builder, "example", None)  # a family that builds from something held (api.bench's)
    with example(task) if example else contextlib.nullcontext({}) as held:
        bundle = builder(task, **options, **held)
    data = bundle.encode(task.train.subset(64))
    logits = bundle.module(**data.batch(torch.arange(8)))
    assert logits.shape == (8, task.num_labels)
    before = [p.detach().clone() for p in bundle.module.parameters()]
    stats = train(bundle.module, data, TrainConfig(epochs=1, batch_size=16, lr=1e-3), seed=0)
    assert stats.steps == 4 and stats.samples == 64
    changed = any(not torch.equal(a, b) for a, b in zip(before, bundle.module.parameters()))
    assert changed
    total, nonzero = count_params(bundle.module)
    assert 0 < nonzero <= total


def test_length_buckets_trim_padding(sst2_slice: Path) -> None:
    task = TASKS.get("sst2")(sst2_slice)
    bundle = MODELS.get("bert")(task, **TEXT_FAMILIES["bert"])
    data = bundle.encode(task.eval)
    buckets = data.buckets(50)
    assert sorted(torch.cat(buckets).tolist()) == list(range(len(data)))
    widths = [data.batch(b)["input_ids"].shape[1] for b in buckets]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    assert widths[-1] == int(data.lengths.max())


def test_training_flops_are_counted_on_the_batches_training_runs(sst2_slice: Path) -> None:
    """The forward FLOPs per training example are those of the batches train() feeds the
    model (the seed's shuffle, padded to each batch's longest), not of length-sorted
    batches at the measurement batch size, which leave the padding out."""
    from torch.utils.flop_counter import FlopCounterMode

    from harness.inspection import forward_flops_per_example, training_flops_per_example

    task = TASKS.get("sst2")(sst2_slice)
    torch.manual_seed(0)
    bundle = MODELS.get("bert")(task, **TEXT_FAMILIES["bert"])
    data = bundle.encode(task.train.subset(256))
    cfg = TrainConfig(epochs=1, batch_size=32, lr=1e-3)
    seen: list[dict[str, torch.Tensor]] = []
    hook = bundle.module.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append({k: v.clone() for k, v in kwargs.items()}), with_kwargs=True)
    train(bundle.module, data, cfg, seed=3)
    hook.remove()
    bundle.module.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        for batch in seen:  # exactly what training ran forward
            bundle.module(**batch)
    expected = counter.get_total_flops() / len(data)
    got = training_flops_per_example(bundle.module, data, cfg.batch_size, seed=3, max_examples=len(data))
    assert got == pytest.approx(expected, rel=1e-9)
    sorted_count = forward_flops_per_example(bundle.module, data, 128)
    assert got > 1.3 * sorted_count  # the padding the sorted count missed
    sampled = training_flops_per_example(bundle.module, data, cfg.batch_size, seed=3, max_examples=96)
    assert sampled == pytest.approx(expected, rel=0.25)  # a sample of the same batches estimates it
