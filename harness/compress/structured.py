"""Structured pruning: remove whole layers, attention heads or conv channels, so the
model really computes less (unlike unstructured zeros), then fine-tune.

- ``prune_layers`` (BERT-style encoders: BERT, RoBERTa, MiniLM): keep ``keep_layers`` bottom layers (dropping the top ones
  works best: Sajjad et al., "On the Effect of Dropping Layers of Pre-trained
  Transformer Models", 2023), or an explicit ``layers`` list.
- ``prune_heads`` (BERT-style encoders): keep the ``keep_heads`` heads per layer with the largest
  weight norm (query/key/value rows and output columns of the head). transformers 5
  removed ``prune_heads``; BERT's attention infers the head count from the projection
  width, so slicing the projections is enough.
- ``prune_channels`` (CNN): keep the ``keep_fraction`` conv filters with the largest
  L1 norm in every conv layer (Li et al., "Pruning Filters for Efficient ConvNets", 2017).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import Field

import torch
from torch import nn

from harness.compress import TECHNIQUES, CompressContext, CompressResult, NoParams, Technique, VariantSkipped
from harness.errors import UserError
from harness.registry import between
from harness.train import train


def _encoder(module: nn.Module, technique: str) -> tuple[nn.Module, nn.Module]:
    """(the transformers model, its encoder) for BERT-style encoders (BERT, RoBERTa,
    MiniLM: ``base_model.encoder.layer[i].attention.self.query``); any other architecture
    is a one-line skip naming the technique and the architecture."""
    hf = getattr(module, "hf", None)
    encoder = getattr(getattr(hf, "base_model", None), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not layers or not hasattr(getattr(layers[0], "attention", None), "self"):
        kind = getattr(getattr(hf, "config", None), "model_type", None) or type(module).__name__
        raise VariantSkipped(f"{technique} cannot handle a {kind} model: it edits BERT-style encoders "
                             "(base_model.encoder.layer[i].attention.self)")
    return hf, encoder


def _slice_linear(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    w = linear.weight.detach()
    b = linear.bias.detach() if linear.bias is not None else None
    if rows is not None:
        w, b = w[rows], (b[rows] if b is not None else None)
    if cols is not None:
        w = w[:, cols]
    out = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        out.weight.copy_(w)
        if b is not None:
            out.bias.copy_(b)
    return out


def _finetune(ctx: CompressContext, module: nn.Module, surgery) -> CompressResult:
    data = ctx.train_data
    before = sum(p.numel() for p in module.parameters())
    recorder = ctx.curve(f"{ctx.variant_id}:create", module)
    with recorder.window() as out:
        info = surgery(module)
        stats = train(module, data, ctx.train_cfg, ctx.seed, desc=f"finetune {ctx.variant_id}",
                      checkpoint=recorder.checkpoint)
    info["finetune_steps"] = stats.steps
    info["train_samples"] = stats.samples
    # For structured pruning, "sparsity" is the fraction of the parent's weights removed.
    info["sparsity"] = 1 - sum(p.numel() for p in module.parameters()) / before
    info["sparsity_scope"] = "weights removed from the parent (structured)"
    info["sparsity_exploited"] = "yes: smaller dense layers"
    return CompressResult(module, ctx.parent_bundle, {"create": out[0]}, info, recorder.curve())


@TECHNIQUES.register("prune_layers")
class DropLayers(Technique):
    example = ("bert", {"keep_layers": 1})  # the conformance checks' (harness.testing)

    class Params(NoParams):
        keep_layers: between(1, 1024, int) | None = None  # keep the first k
        layers: Annotated[list[between(0, 1023, int)], Field(min_length=1, max_length=1024)] | None = None

    def check(self, params: Mapping[str, Any], where: str, models: set[str]) -> None:
        if ("keep_layers" in params) == ("layers" in params):
            raise UserError(f"{where} needs exactly one of keep_layers (a count) or layers (a list of indices)")
        if "layers" in params and len(set(params["layers"])) != len(params["layers"]):
            raise UserError(f"layers in {where} names a layer twice ({params['layers']}); list each once")

    def apply(self, ctx: CompressContext) -> CompressResult:
        n = len(_encoder(ctx.parent, "prune_layers")[1].layer)
        keep = list(ctx.params.get("layers") or range(ctx.params["keep_layers"]))
        if not keep or max(keep) >= n or len(set(keep)) != len(keep):
            raise UserError(f"{ctx.variant_id}: layers {keep} do not fit a {n}-layer parent; keep fewer layers")
        return _finetune(ctx, ctx.parent, lambda module: {**keep_layers(module, keep), "layers_before": n})

    def rebuild(self, parent, fresh, params, info):
        keep_layers(parent, info["layers_kept"])
        return parent


def keep_layers(module: nn.Module, keep: list[int]) -> dict[str, Any]:
    """Keep these encoder layers, in this order (replayable from the record)."""
    hf, encoder = _encoder(module, "prune_layers")
    encoder.layer = nn.ModuleList(encoder.layer[i] for i in keep)
    hf.config.num_hidden_layers = len(keep)
    return {"layers_kept": list(keep)}


@TECHNIQUES.register("prune_heads")
class PruneHeads(Technique):
    example = ("bert", {"keep_heads": 2})  # the conformance checks' (harness.testing)

    class Params(NoParams):
        keep_heads: between(1, 1024, int)  # per layer, below the parent's head count

    def apply(self, ctx: CompressContext) -> CompressResult:
        hf, encoder = _encoder(ctx.parent, "prune_heads")
        heads, keep = hf.config.num_attention_heads, ctx.params["keep_heads"]
        if keep >= heads:
            raise UserError(f"{ctx.variant_id}: keep_heads={keep} must be below the parent's {heads} heads")
        size = hf.config.hidden_size // heads

        def surgery(module: nn.Module) -> dict[str, Any]:
            kept_per_layer = []
            for layer in encoder.layer:  # score each head by its weights' norm
                att, out = layer.attention.self, layer.attention.output
                w = torch.stack([p.weight.detach().view(heads, size, -1).pow(2).sum(dim=(1, 2))
                                 for p in (att.query, att.key, att.value)]).sum(0)
                w += out.dense.weight.detach().view(-1, heads, size).pow(2).sum(dim=(0, 2))
                kept_per_layer.append(torch.sort(torch.topk(w, keep).indices).values.tolist())
            return {**keep_heads(module, kept_per_layer), "heads_before": heads}

        return _finetune(ctx, ctx.parent, surgery)

    def rebuild(self, parent, fresh, params, info):
        keep_heads(parent, info["heads_kept"])
        return parent


def keep_heads(module: nn.Module, kept_per_layer: list[list[int]]) -> dict[str, Any]:
    """Keep these heads in each layer: slice q/k/v rows and the output's columns
    (replayable from the record)."""
    hf, encoder = _encoder(module, "prune_heads")
    size = hf.config.hidden_size // hf.config.num_attention_heads
    for layer, kept in zip(encoder.layer, kept_per_layer):
        att, out = layer.attention.self, layer.attention.output
        rows = torch.cat([torch.arange(h * size, (h + 1) * size) for h in kept])
        att.query, att.key, att.value = (_slice_linear(p, rows=rows) for p in (att.query, att.key, att.value))
        out.dense = _slice_linear(out.dense, cols=rows)
        att.num_attention_heads, att.all_head_size = len(kept), len(kept) * size
    return {"heads_kept": [list(k) for k in kept_per_layer]}


@TECHNIQUES.register("prune_channels")
class PruneChannels(Technique):
    example = ("cnn", {"keep_fraction": 0.5})  # the conformance checks' (harness.testing)

    class Params(NoParams):
        keep_fraction: between(0, 1, open_low=True, open_high=True)  # of each conv's filters

    def apply(self, ctx: CompressContext) -> CompressResult:
        body = _cnn_body(ctx.parent, ctx.variant_id)

        def surgery(module: nn.Module) -> dict[str, Any]:
            kept_in: torch.Tensor | None = None
            kept_per_conv = []
            for m in body:  # rank each conv's filters by L1 norm over the inputs still kept
                if isinstance(m, nn.Conv2d):
                    w = m.weight.detach() if kept_in is None else m.weight.detach()[:, kept_in]
                    n_keep = max(1, round(m.out_channels * ctx.params["keep_fraction"]))
                    kept_in = torch.sort(torch.topk(w.abs().sum(dim=(1, 2, 3)), n_keep).indices).values
                    kept_per_conv.append(kept_in.tolist())
            return keep_channels(module, kept_per_conv)

        return _finetune(ctx, ctx.parent, surgery)

    def rebuild(self, parent, fresh, params, info):
        keep_channels(parent, info["channels_kept"])
        return parent


def _cnn_body(module: nn.Module, where: str) -> nn.Sequential:
    body = getattr(module, "body", None)
    if not isinstance(body, nn.Sequential) or not any(isinstance(m, nn.Conv2d) for m in body):
        raise VariantSkipped(f"prune_channels cannot handle a {type(module).__name__} model: it edits the conv "
                             "layers of a cnn-family body")
    return body


def keep_channels(module: nn.Module, kept_per_conv: list[list[int]]) -> dict[str, Any]:
    """Keep these filters of each conv, and the matching inputs of what follows it
    (replayable from the record)."""
    layers = list(_cnn_body(module, "prune_channels"))
    kept_in: torch.Tensor | None = None
    channels, convs = [], iter(kept_per_conv)
    for i, m in enumerate(layers):
        if isinstance(m, nn.Conv2d):
            kept = torch.as_tensor(next(convs), dtype=torch.long)
            w = m.weight.detach() if kept_in is None else m.weight.detach()[:, kept_in]
            conv = nn.Conv2d(w.shape[1], len(kept), m.kernel_size, m.stride, m.padding, bias=m.bias is not None,
                             device=w.device, dtype=w.dtype)
            with torch.no_grad():
                conv.weight.copy_(w[kept])
                if m.bias is not None:
                    conv.bias.copy_(m.bias.detach()[kept])
            layers[i], kept_in = conv, kept
            channels.append([m.out_channels, len(kept)])
        elif isinstance(m, nn.Linear) and kept_in is not None:
            spatial = m.in_features // channels[-1][0]  # flatten order is (C, H, W)
            cols = torch.cat([torch.arange(c * spatial, (c + 1) * spatial) for c in kept_in.tolist()])
            layers[i], kept_in = _slice_linear(m, cols=cols), None
    module.body = nn.Sequential(*layers)
    return {"channels": channels, "channels_kept": [list(k) for k in kept_per_conv]}
