"""A variant made elsewhere: weights from a file, into the parent's architecture.

``technique: checkpoint`` with ``params: {path: ...}`` (and optionally ``creation_J``,
the energy its maker reports spending on it) takes

- a **safetensors state dict** for the parent's architecture (as saved by
  ``safetensors.torch.save_file(model.state_dict(), path)`` from plain PyTorch): every
  key and shape must match the parent's state dict (a common prefix, such as the
  ``hf.`` joulebench's transformers wrapper adds, is matched); or
- a **Hugging Face folder** (``config.json`` + ``model.safetensors``, as written by
  ``save_pretrained``) for a transformers parent: loaded with ``from_pretrained``
  (``use_safetensors=True``, ``trust_remote_code=False``, local files only) in place of
  the parent's transformers model, which may have another size (a pruned model), but
  the same labels and vocabulary (the parent's tokenizer feeds it).

Nothing is executed: pickles (``torch.save`` files, ``pytorch_model.bin``) and configs
that need remote code are refused at suite load, in one line. Keys and shapes against
a trained baseline are checked before the run folder exists (``preflight``); against a
parent that is itself a variant (its shapes exist only once it is made), when it is
made, as a one-line skip. The file's digest is in the artifact key (a changed file is
another variant) and identifies the variant across seeds: the same file under three
seeds is one model, counted once.

Its creation energy is unknown, or the reported ``creation_J``, labelled as reported
(outside.py); accuracy, the delta against the parent, J/inference, FLOPs and size are
measured as for every row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from harness import outside
from harness.compress import TECHNIQUES, CompressContext, CompressResult, NoParams, Technique, VariantSkipped
from harness.errors import UserError
from harness.registry import between

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
#: A config.json is a page of JSON; a far larger file is no config.
MAX_CONFIG_BYTES = 1 << 20


def _header(path: Path, where: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """{key: (shape, dtype)} from a safetensors file's header (no tensor is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            out = {}
            for key in f.keys():
                piece = f.get_slice(key)
                out[key] = (tuple(piece.get_shape()), piece.get_dtype())
            return out
    except Exception as exc:  # SafetensorError and OSError: not a safetensors file we can read
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"{where}: {path} is not a readable safetensors file ({first}); save it with "
                        "safetensors.torch.save_file") from None


def _config(folder: Path, where: str) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise UserError(f"{where}: the folder {folder} has no config.json; give a Hugging Face folder written by "
                        "save_pretrained, or a .safetensors file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{where}: {path} is {path.stat().st_size:,} bytes, not a model config")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{where}: {path} is not valid JSON; give a folder written by save_pretrained") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise UserError(f"{where}: {path} names no model_type; give a folder written by save_pretrained")
    if "auto_map" in config:
        raise UserError(f"{where}: {path} asks for custom model code (auto_map), which would need "
                        "trust_remote_code; joulebench runs no code from a checkpoint: use a transformers architecture")
    return config


def _folder_weights(folder: Path, where: str) -> list[Path]:
    if (folder / WEIGHTS).is_file():
        return [folder / WEIGHTS]
    if (folder / INDEX).is_file():
        try:
            index = json.loads((folder / INDEX).read_text())
            names = sorted(set(index["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise UserError(f"{where}: {folder / INDEX} is not a safetensors index (weight_map)") from None
        files = [folder / n for n in names]
        bad = [n for n, f in zip(names, files) if Path(n).name != n or not n.endswith(".safetensors")
               or not f.is_file()]
        if bad:
            raise UserError(f"{where}: {folder / INDEX} names {bad[0]!r}, not a .safetensors file in the folder")
        return files
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in outside.PICKLE_SUFFIXES)
    if pickles:
        raise UserError(f"{where}: the folder {folder} holds its weights as a pickle ({pickles[0]}); "
                        f"{outside.PICKLE_FIX}")
    raise UserError(f"{where}: the folder {folder} has no {WEIGHTS}; give a folder written by save_pretrained "
                    "(safe_serialization=True)")


def _not_finite(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The first floating-point tensor holding NaN or infinity, by name; else None."""
    return next((k for k, v in sorted(tensors.items())
                 if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)


def _load_hf(path: Path, where: str) -> nn.Module:
    """A Hugging Face folder's model, every weight from the file: a head left at random
    (missing keys), weights the architecture does not use (unexpected) and weights of
    another shape (mismatched) are one line each, as is a NaN or infinite weight;
    transformers would only log them."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf, info = AutoModelForSequenceClassification.from_pretrained(
        str(path), use_safetensors=True, trust_remote_code=False, local_files_only=True, output_loading_info=True)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k) for k in info.get(kind) or ())
        if keys:
            raise UserError(f"{where}: {path} has {len(keys)} {kind.replace('_', ' ')} for "
                            f"{type(hf).__name__} (e.g. {keys[0]!r}): a missing classifier would be scored at random; "
                            "give a folder saved by save_pretrained from the fine-tuned model")
    bad = _not_finite(hf.state_dict())
    if bad:
        raise UserError(f"{where}: {path} holds NaN or infinite weights ({bad!r}); its accuracy would be meaningless")
    return hf


def _mapping(theirs: set[str], ours: set[str]) -> str | None:
    """The prefix that turns the checkpoint's keys into the parent's (often "", or the
    ``hf.`` of joulebench's transformers wrapper), or None when none does."""
    for prefix in sorted({o[: len(o) - len(t)] for t in theirs for o in ours if o.endswith(t)}, key=len):
        if {prefix + t for t in theirs} == ours:
            return prefix
    return None


def _strict(header: dict[str, tuple[tuple[int, ...], str]], parent: nn.Module, path: Path, where: str) -> str:
    """The key prefix, after checking every key and shape against the parent; else one line."""
    ours = {k: tuple(v.shape) for k, v in parent.state_dict().items()}
    prefix = _mapping(set(header), set(ours))
    if prefix is None:
        missing = sorted(set(ours) - set(header))
        extra = sorted(set(header) - set(ours))
        raise UserError(f"{where}: {path} does not hold the parent's state dict: {len(missing)} key(s) missing"
                        + (f" (e.g. {missing[0]!r})" if missing else "") + f", {len(extra)} unexpected"
                        + (f" (e.g. {extra[0]!r})" if extra else "")
                        + "; save the state_dict of a module of the parent's architecture")
    state = parent.state_dict()
    numbers = {k: "F" if v.is_floating_point() else "I" for k, v in state.items()}
    kinds = [(k, d) for k, (_, d) in sorted(header.items())
             if (numbers[prefix + k] == "F") != (d.startswith("F") or d.startswith("BF"))]
    if kinds:
        k, d = kinds[0]
        raise UserError(f"{where}: {path} stores {k!r} as {d} where the parent's tensor is "
                        f"{state[prefix + k].dtype}; save the floating-point state dict of the parent's architecture")
    wrong = [(k, shape, ours[prefix + k]) for k, (shape, _) in sorted(header.items()) if ours[prefix + k] != shape]
    if wrong:
        k, theirs, mine = wrong[0]
        raise UserError(f"{where}: {path} does not fit the parent's architecture: {len(wrong)} tensor(s) of another "
                        f"shape, e.g. {k!r} is {list(theirs)} where the parent has {list(mine)}; save a checkpoint "
                        "of the parent's architecture")
    return prefix


@TECHNIQUES.register("checkpoint")
class Checkpoint(Technique):
    #: a safetensors file of the trained parent (harness.testing writes it)
    example = ("cnn", {"path": "{checkpoint_file}"})  # the conformance checks' (harness.testing)
    #: Loading the file is the whole recipe (and its digest keys it): nothing to cache.
    cacheable = False

    class Params(NoParams):
        path: str  # a .safetensors file or a Hugging Face folder (relative to where joulebench runs)
        creation_J: between(0, 1e15, open_low=True) | None = None  # energy its maker reports; not measured

    def trains(self, params: Mapping[str, Any]) -> bool:
        return False

    def same_under_every_seed(self, params: Mapping[str, Any], parent_is: bool) -> bool:
        return True  # the file is the model, whichever seed its parent was trained with

    def check(self, params: Mapping[str, Any], where: str, models: set[str]) -> None:
        path = outside.existing(params["path"], where, "checkpoint")
        if path.is_dir():
            _config(path, where)
            for f in _folder_weights(path, where):
                outside.refuse_pickle(f, where, outside.is_safetensors)
                _header(f, where)
            return
        outside.refuse_pickle(path, where, outside.is_safetensors)
        if path.suffix.lower() != ".safetensors":
            raise UserError(f"{where}: checkpoint {path} is not a .safetensors file; give a safetensors state dict "
                            "or a Hugging Face folder")
        _header(path, where)

    def preflight(self, params: Mapping[str, Any], parent: nn.Module, where: str, load: bool = True) -> None:
        """Keys, shapes, kinds and finiteness of a file's tensors; a folder's labels and
        vocabulary against the parent's, and (``load``) its weights loaded and checked."""
        path = Path(params["path"]).expanduser()
        if path.is_file():
            _strict(_header(path, where), parent, path, where)
            from safetensors.torch import load_file

            bad = _not_finite(load_file(str(path)))
            if bad:
                raise UserError(f"{where}: {path} holds NaN or infinite weights ({bad!r}); its accuracy would be "
                                "meaningless: give the checkpoint of a model that trained")
            return
        hf = getattr(parent, "hf", None)
        if hf is None or not hasattr(hf, "config"):
            raise UserError(f"{where}: a Hugging Face folder replaces a transformers parent's model; this parent is "
                            f"{type(parent).__name__}: give a .safetensors state dict instead")
        _config(path, where)
        from transformers import AutoConfig

        # as transformers reads it: a config without id2label has 2 labels (transformers 5 writes none for 2)
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
        for key, theirs, mine in (("labels", config.num_labels, hf.config.num_labels),
                                  ("vocab_size", getattr(config, "vocab_size", None),
                                   getattr(hf.config, "vocab_size", None))):
            if theirs is not None and mine is not None and theirs != mine:
                raise UserError(f"{where}: {path} has {key} {theirs} where the parent has {mine}; the parent's "
                                "tokenizer and task feed it: give a checkpoint made for them")
        if load:
            _load_hf(path, where)

    def key_fields(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"sha256": _digest(params["path"])}

    def apply(self, ctx: CompressContext) -> CompressResult:
        path = Path(ctx.params["path"]).expanduser()
        where = f"checkpoint of {ctx.variant_id}"
        module = ctx.parent
        info: dict[str, Any] = {"checkpoint": str(ctx.params["path"]), "train_samples": 0}
        try:
            if path.is_file():
                from safetensors.torch import load_file

                header = _header(path, where)
                prefix = _strict(header, module, path, where)
                tensors = load_file(str(path), device=str(ctx.device.torch))
                module.load_state_dict({prefix + k: v for k, v in tensors.items()}, strict=True)
                info["format"] = "safetensors state dict"
                info["stored_dtypes"] = sorted({d for _, d in header.values()})
            else:
                self.preflight(ctx.params, module, where, load=False)  # the load below checks the weights
                from harness.models.bert import describe

                hf = _load_hf(path, where)
                module.hf = hf.to(ctx.device.torch)
                info["format"] = "Hugging Face folder (from_pretrained, safetensors)"
                info["hf_architecture"] = f"{type(hf).__name__} ({describe(hf.config)})"
        except UserError as exc:  # a variant parent's shapes, known only now
            raise VariantSkipped(str(exc)) from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise VariantSkipped(f"{where}: could not load {path}: {str(exc).splitlines()[0][:160]}") from None
        made = outside.MadeElsewhere(str(ctx.params["path"]), _digest(ctx.params["path"]),
                                     outside.reported(ctx.params.get("creation_J")))
        info["creation"] = made.note()
        return CompressResult(module.eval(), ctx.parent_bundle, {}, info, elsewhere=made)


def _digest(path: str) -> str:
    """The file's (or folder's) digest; a folder's: its config and weights (what
    from_pretrained reads for the model)."""
    p = Path(path).expanduser()
    return outside.sha256(p, None if p.is_file() else [p / "config.json", *_folder_weights(p, str(p))])
