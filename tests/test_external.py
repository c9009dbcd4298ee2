"""Variants made outside joulebench: a safetensors state dict saved by plain PyTorch, a
Hugging Face folder, and an .onnx file exported by plain torch.onnx.export each become a
row measured like every other (accuracy, delta and p against the parent, J/inference,
size), with a creation energy that is unknown (null, never 0 J) or reported. Unsafe or
mismatched files are refused in one line before the run folder exists."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import cli, run_cli

CNN = {"channels": [8, 16], "hidden": 32, "dropout": 0.0}


def _cnn(channels=CNN["channels"]):
    from harness.models import MODELS
    from harness.tasks import TASKS

    task = TASKS.get("digits")(None)
    return task, MODELS.get("cnn")(task, **{**CNN, "channels": channels}).module


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """What a user brings: a CNN of the suite's architecture trained by plain PyTorch (not
    joulebench), saved with safetensors and exported with torch.onnx.export; and the
    files that must be refused."""
    import onnx
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("user")
    task, m = _cnn()
    torch.manual_seed(1)
    x, y = torch.as_tensor(task.train.inputs).float(), torch.as_tensor(task.train.labels)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(3):
        for i in range(0, len(x), 32):
            loss = torch.nn.functional.cross_entropy(m(x[i:i + 32]), y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    with torch.no_grad():
        predictions = m(torch.as_tensor(task.eval.inputs).float()).argmax(1).numpy()
    out = {"accuracy": float((predictions == task.eval.labels).mean())}
    out["safetensors"] = root / "mine.safetensors"
    save_file(m.state_dict(), str(out["safetensors"]))
    out["onnx"] = root / "mine.onnx"
    torch.onnx.export(m, (x[:8],), str(out["onnx"]), input_names=["x"], output_names=["logits"],
                      dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}},
                      external_data=False)  # its default writes the weights beside the graph: refused
    out["onnx_inputs"] = root / "other_inputs.onnx"  # its input is not the one the digits encoder gives ("x")
    torch.onnx.export(m, (x[:8],), str(out["onnx_inputs"]), input_names=["pixels"], output_names=["logits"],
                      dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}}, external_data=False)
    out["pickle"] = root / "mine.pt"
    torch.save(m.state_dict(), out["pickle"])
    out["disguised"] = root / "renamed.safetensors"  # a pickle under a safetensors name
    torch.save(m.state_dict(), out["disguised"])
    out["garbage"] = root / "garbage.safetensors"
    out["garbage"].write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    out["shapes"] = root / "other_width.safetensors"
    save_file(_cnn(channels=[4, 8])[1].state_dict(), str(out["shapes"]))
    out["integers"] = root / "integers.safetensors"  # the right keys and shapes, but not numbers a layer holds
    save_file({k: v.to(torch.int32) for k, v in m.state_dict().items()}, str(out["integers"]))
    out["fifo"] = root / "fifo.safetensors"  # reading it would block
    os.mkfifo(out["fifo"])
    out["external"] = root / "external.onnx"
    onnx.save_model(onnx.load(str(out["onnx"])), str(out["external"]), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="external.data", size_threshold=0)
    out["bin_folder"] = root / "bin_folder"
    out["bin_folder"].mkdir()
    (out["bin_folder"] / "config.json").write_text(json.dumps({"model_type": "bert"}))
    torch.save({}, out["bin_folder"] / "pytorch_model.bin")
    out["remote_code"] = root / "remote_code"
    out["remote_code"].mkdir()
    (out["remote_code"] / "config.json").write_text(json.dumps({"model_type": "bert", "auto_map": {"x": "m.X"}}))
    save_file({"w": torch.zeros(1)}, str(out["remote_code"] / "model.safetensors"))
    return out


def suite(tmp_path: Path, variants: list[dict], seeds=(0,)) -> Path:
    raw = {"name": "outside", "task": {"name": "digits"}, "seeds": list(seeds),
           "train": {"epochs": 2, "batch_size": 32, "lr": 0.003},
           "models": {"cnn": {"family": "cnn", "options": CNN}}, "variants": variants,
           "measure": {"batch_size": 128, "repetitions": 6, "min_window_s": 0.05, "warmup": 1, "idle_s": 0.2}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_checkpoint_and_an_onnx_file_made_elsewhere_are_measured_rows(files, tmp_path: Path) -> None:
    variants = [
        {"id": "cnn.mine", "parent": "cnn", "technique": "checkpoint", "params": {"path": str(files["safetensors"])}},
        {"id": "cnn.mine_reported", "parent": "cnn", "technique": "checkpoint",
         "params": {"path": str(files["safetensors"]), "creation_J": 120.0}},
        {"id": "cnn.mine_onnx", "parent": "cnn", "runtime": {"name": "onnxruntime", "path": str(files["onnx"])}},
        {"id": "cnn.mine_int8", "parent": "cnn.mine", "technique": "quantize", "params": {"dtype": "int8"}},
        {"id": "cnn.mine_prune50", "parent": "cnn.mine", "technique": "prune", "params": {"sparsity": 0.5},
         "train": {"epochs": 1, "max_samples": 300}},
    ]
    out = tmp_path / "run"
    proc = run_cli("run", str(suite(tmp_path, variants, seeds=(0, 1))), "--out", str(out), "--allow-estimate",
                   "--no-plots")
    assert proc.returncode == 0, proc.stderr
    t = pd.read_parquet(out / "table.parquet").set_index("variant_id")
    # the files' own model, not the parent: the accuracy the user's model has on the eval split
    for vid in ("cnn.mine", "cnn.mine_reported", "cnn.mine_onnx"):
        assert t.loc[vid, "accuracy"] == pytest.approx(files["accuracy"], abs=1.5 / t.loc[vid, "n_eval"]), vid
        assert t.loc[vid, "seeds"] == 1  # one file is one model, whatever the suite's seeds
        assert pd.notna(t.loc[vid, "accuracy_delta_vs_parent"]) and pd.notna(t.loc[vid, "delta_p"])
        assert t.loc[vid, "J_per_inference"] > 0 and t.loc[vid, "energy_method"] == "estimate"
    assert t.loc["cnn", "seeds"] == 2
    # what is made from the file: its int8 is one model whatever the seed (nothing seeded), while
    # a fine-tuned child is one model per seed (each seed fine-tunes it anew)
    assert t.loc["cnn.mine_int8", "seeds"] == 1
    assert t.loc["cnn.mine_prune50", "seeds"] == 2
    # unknown creation: null, never 0 J, and everything built on it is unknown too
    for vid in ("cnn.mine", "cnn.mine_onnx"):
        assert t.loc[vid, "train_J_source"] == "unknown"
        for col in ("train_J", "lineage_train_J", "J_at_1e6_queries", "train_gCO2e", "break_even_inferences"):
            assert pd.isna(t.loc[vid, col]), (vid, col)
    assert t.loc["cnn.mine_reported", "train_J_source"] == "reported"
    assert t.loc["cnn.mine_reported", "train_J"] == 120.0
    assert t.loc["cnn.mine_reported", "lineage_train_J"] == 120.0  # its parent is a comparison, not its origin
    assert t.loc["cnn.mine_int8", "train_J_source"] == "measured" and t.loc["cnn.mine_int8", "train_J"] > 0
    assert pd.isna(t.loc["cnn.mine_int8", "lineage_train_J"])  # an unknown ancestor: no sum that counts it as 0
    # the ONNX row is the file: its size and parameters, no FLOPs from a PyTorch module it is not
    _, m = _cnn()
    assert t.loc["cnn.mine_onnx", "size_bytes"] == files["onnx"].stat().st_size
    assert t.loc["cnn.mine_onnx", "params"] == sum(p.numel() for p in m.parameters())
    assert pd.isna(t.loc["cnn.mine_onnx", "flops_per_inference"])
    assert t.loc["cnn.mine", "flops_per_inference"] == t.loc["cnn", "flops_per_inference"]
    recs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    mine = [r for r in recs if r["variant_id"] == "cnn.mine"]
    assert len(mine) == 2 and all(r["train"]["window"] is None and r["train"]["source"] == "unknown" for r in mine)
    assert {r["train"]["origin_sha256"] for r in mine} == {r["train"]["origin_sha256"] for r in recs
                                                         if r["variant_id"] == "cnn.mine_reported"}
    md = (out / "table.md").read_text()
    assert "made outside joulebench" in md and "| unknown / - |" in md and "120 (reported)" in md
    assert "unknown" in (out / "table.tex").read_text()


@pytest.mark.parametrize("case", ["shapes", "pickle", "disguised", "garbage", "integers", "fifo", "external",
                                  "bin_folder", "remote_code", "missing", "onnx_on_technique", "onnx_pickle",
                                  "onnx_inputs"])
def test_unsafe_or_mismatched_files_are_refused_in_one_line(files, tmp_path: Path, case: str) -> None:
    variant = {"id": "cnn.x", "parent": "cnn", "technique": "checkpoint"}
    named = {"missing": tmp_path / "nowhere.safetensors"}
    if case in ("external", "onnx_pickle", "onnx_inputs"):
        variant = {"id": "cnn.x", "parent": "cnn", "runtime": {"name": "onnxruntime", "path": str(
            files[{"external": "external", "onnx_pickle": "pickle", "onnx_inputs": "onnx_inputs"}[case]])}}
    elif case == "onnx_on_technique":
        variant = {**variant, "technique": "quantize", "params": {"dtype": "int8"},
                   "runtime": {"name": "onnxruntime", "path": str(files["onnx"])}}
    else:
        variant["params"] = {"path": str(named.get(case) or files[case])}
    out = tmp_path / "run"
    proc = cli("run", str(suite(tmp_path, [variant])), "--out", str(out), "--allow-estimate")
    lines = [line for line in proc.stderr.splitlines() if line.startswith("joulebench: error")]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    expect = {"shapes": "another shape", "integers": "as I32", "fifo": "not a regular file", "pickle": "pickle", "disguised": "pickle", "garbage": "not a readable safetensors",
              "external": "stored outside the file", "bin_folder": "pickle", "remote_code": "trust_remote_code",
              "missing": "not found", "onnx_on_technique": "whole model", "onnx_pickle": "pickle",
              "onnx_inputs": "takes input 'pixels'"}[case]
    assert expect in lines[0], lines[0]
    assert not out.exists()  # refused before the run folder exists


def test_a_hugging_face_folder_and_a_plain_transformers_state_dict(tmp_path: Path, sst2_slice: Path) -> None:
    """A transformers parent takes a save_pretrained folder (another size: a pruned model)
    and a state dict saved from the bare transformers model (keys without joulebench's
    wrapper prefix); the variant computes what the saved model computes."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertForSequenceClassification

    from harness.compress import TECHNIQUES
    from harness.errors import UserError
    from harness.models import MODELS
    from harness.tasks import TASKS
    from tests.test_compress import MODELS_IN_SUITE, context

    task = TASKS.get("sst2")(sst2_slice)
    options = MODELS_IN_SUITE["bert"].options
    parent = MODELS.get("bert")(task, **options)
    vocab = parent.module.hf.config.vocab_size
    torch.manual_seed(3)
    small = BertForSequenceClassification(BertConfig(vocab_size=vocab, num_labels=2, num_hidden_layers=1,
                                                     hidden_size=32, num_attention_heads=2, intermediate_size=48)).eval()
    small.save_pretrained(tmp_path / "folder", safe_serialization=True)
    same = BertForSequenceClassification(parent.module.hf.config).eval()
    save_file({k: v.contiguous() for k, v in same.state_dict().items()}, str(tmp_path / "bare.safetensors"))
    batch = parent.encode(task.eval.subset(16)).batch(torch.arange(16))
    tech = TECHNIQUES.get("checkpoint")()
    parents = {"bert": (task, parent)}
    for path, reference in ((tmp_path / "folder", small), (tmp_path / "bare.safetensors", same)):
        params = {"path": str(path)}
        tech.validate(params, "test")
        tech.preflight(params, parent.module, "test")
        result = tech.apply(context(parents, "bert", params))
        with torch.no_grad():
            assert torch.allclose(result.module(**batch), reference(**batch).logits, atol=1e-5), path
        assert result.windows == {} and result.elsewhere.source == "unknown"
    other = BertForSequenceClassification(BertConfig(vocab_size=vocab, num_labels=5, num_hidden_layers=1,
                                                     hidden_size=32, num_attention_heads=2, intermediate_size=48))
    other.save_pretrained(tmp_path / "five_labels", safe_serialization=True)
    with pytest.raises(UserError, match="labels 5 where the parent has 2"):
        tech.preflight({"path": str(tmp_path / "five_labels")}, parent.module, "test")
