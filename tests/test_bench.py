"""Your model through the ladder (``api.bench``): a module and data that exist only in
this test, trained by the test's own loop inside ``api.track``, benchmarked with int8,
50% pruning and ONNX Runtime; the table's accuracies are the test's own evaluation, the
baseline's creation is the tracked window (or unknown, or reported), and every bad input
is one line before anything is written."""

from __future__ import annotations

import copy
import warnings
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from harness import api
from harness.errors import UserError
from tests.conftest import cli

MEASURE = {"batch_size": 64, "warmup": 1, "repetitions": 6, "min_window_s": 0.05, "idle_s": 0.1}
LADDER = [{"id": "int8", "technique": "quantize", "params": {"dtype": "int8"}},
          {"id": "p50", "technique": "prune", "params": {"sparsity": 0.5}, "train": {"epochs": 2, "lr": 0.001}},
          {"id": "ort", "runtime": "onnxruntime"}]


def wine() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    return tuple(train_test_split(x, y, test_size=0.3, random_state=0, stratify=y))


def images() -> tuple[np.ndarray, ...]:
    """Random 1x16x16 images whose class is the brighter half (left, right, or neither)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 3, 240)
    x[y == 0, :, :, :8] += 1.0
    x[y == 1, :, :, 8:] += 1.0
    return x[:180], x[180:], y[:180], y[180:]


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(nn.functional.max_pool2d(torch.relu(self.conv(x)), 2), 1))


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int = 60) -> nn.Module:
    """The test's own training loop (full batch, Adam)."""
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    return model.eval()


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).argmax(dim=1).numpy()


def records(run_dir: Path) -> dict[str, dict]:
    return {r["variant_id"]: r for r in map(json.loads, (run_dir / "records.jsonl").read_text().splitlines())}


@pytest.mark.parametrize("case", ["wine_mlp", "image_cnn"])
def test_a_given_module_goes_down_the_ladder(tmp_path: Path, case: str) -> None:
    torch.manual_seed(0)
    x_tr, x_ev, y_tr, y_ev = wine() if case == "wine_mlp" else images()
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3)) if case == "wine_mlp" else TinyCNN()
    with api.track("fine-tune", idle_s=0.1) as w:
        fit(model, x_tr, y_tr)
    before = copy.deepcopy(model.state_dict())
    mine = predict(model, x_ev)
    out = tmp_path / "run"
    result = api.bench(model, eval_data=(x_ev, y_ev), train_data=(torch.from_numpy(x_tr), torch.from_numpy(y_tr)),
                       variants=LADDER, creation=w, out=out, measure=MEASURE, plots=False)
    table = result.table.set_index("variant_id")
    assert list(table.index) == ["model", "int8", "p50", "ort"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the given module is not touched
    recs = records(out)
    # the baseline is the test's own module, evaluated on the test's own eval split
    assert recs["model"]["eval"]["predictions"] == mine.tolist()
    assert table.loc["model", "accuracy"] == pytest.approx(float(np.mean(mine == y_ev)))
    assert table.loc["model", "n_eval"] == len(y_ev)
    # int8 is dynamic quantization of the same module: the test's own quantization agrees
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao's own, about its future
        int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    assert table.loc["int8", "accuracy"] == pytest.approx(float(np.mean(predict(int8, x_ev) == y_ev)))
    # onnxruntime runs the same weights: the same classes up to float rounding
    assert np.mean(np.array(recs["ort"]["eval"]["predictions"]) == mine) >= 0.98
    assert (table["J_per_inference"] > 0).all()
    assert table.loc["model", "train_J_source"] == "measured"
    assert table.loc["model", "train_J"] == pytest.approx(w.energy_J)
    assert recs["model"]["train"]["window"]["host"] == w.host and recs["model"]["train"]["window"]["method"] == w.method
    assert 0.4 < table.loc["p50", "sparsity"] <= 0.5  # of all parameters: the biases are not pruned
    assert "api.track('fine-tune')" in recs["model"]["technique_info"]["creation"]
    # the lineage carries the tracked window into the pruned child
    assert table.loc["p50", "lineage_train_J"] == pytest.approx(w.energy_J + table.loc["p50", "train_J"], rel=1e-6)
    assert cli("report", str(out), "--no-plots").returncode == 0
    proc = cli("compare", str(out), str(out))
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]


@pytest.mark.parametrize("creation", [None, 1234.5])
def test_an_unmeasured_creation_is_unknown_or_reported(tmp_path: Path, creation: float | None) -> None:
    torch.manual_seed(0)
    x_tr, x_ev, y_tr, y_ev = wine()
    model = fit(nn.Sequential(nn.Linear(13, 16), nn.ReLU(), nn.Linear(16, 3)), x_tr, y_tr, steps=30)
    result = api.bench(model, eval_data=(x_ev, y_ev), variants=LADDER[:1], creation=creation, out=tmp_path / "r",
                       measure=MEASURE)
    base = result.table.set_index("variant_id").loc["model"]
    if creation is None:
        assert base["train_J_source"] == "unknown" and pd.isna(base["train_J"])  # never 0 J
        assert pd.isna(base["break_even_inferences"]) and pd.isna(base["lineage_train_J"])
        assert "unknown" in result.markdown
    else:
        assert base["train_J_source"] == "reported" and base["train_J"] == pytest.approx(1234.5)
        assert "(reported)" in result.markdown
    assert (tmp_path / "r" / "lifecycle_energy.png").stat().st_size > 0  # drawn with no known lineage (no 0 J line)


def _bad(case: str, tmp_path: Path) -> dict:
    x_tr, x_ev, y_tr, y_ev = wine()
    model = nn.Sequential(nn.Linear(13, 3))
    kw = {"model": model, "eval_data": (x_ev, y_ev), "train_data": (x_tr, y_tr), "variants": LADDER[:1]}
    if case == "wrong_shape":
        kw["model"] = nn.Sequential(nn.Linear(13, 3), nn.Flatten(0))  # (N*3,), not [N, classes]
    elif case == "one_logit":
        kw["model"] = nn.Linear(13, 1)
    elif case == "labels_out_of_range":
        kw["eval_data"] = (x_ev, np.where(y_ev == 2, 5, y_ev))
    elif case == "train_labels_out_of_range":
        kw["train_data"] = (x_tr, y_tr + 3)
    elif case == "empty_eval":
        kw["eval_data"] = (x_ev[:0], y_ev[:0])
    elif case == "trains_without_data":
        kw.update(train_data=None, variants=LADDER[1:2])
    elif case == "eval_is_train":
        kw["eval_data"] = (x_tr, y_tr)
    elif case == "wrong_features":
        kw["eval_data"] = (np.zeros((10, 7), np.float32), np.zeros(10, np.int64))
    elif case == "not_a_module":
        kw["model"] = lambda x: x
    elif case == "bad_creation":
        kw["creation"] = 0
    elif case == "open_window":
        kw["creation"] = api.track("never closed")
    elif case == "unknown_technique":
        kw["variants"] = [{"id": "x", "technique": "sharpen"}]
    elif case == "work_pass":
        kw["measure"] = {"work": "instructions"}
    elif case == "model_named_twice":
        kw["models"] = {"model": {"family": "mlp"}}
    elif case == "empty_loader":
        from torch.utils.data import DataLoader, TensorDataset

        kw["eval_data"] = DataLoader(TensorDataset(torch.zeros(0, 13), torch.zeros(0, dtype=torch.long)))
    return kw


@pytest.mark.parametrize("case", ["wrong_shape", "one_logit", "labels_out_of_range", "train_labels_out_of_range",
                                  "empty_eval", "trains_without_data", "eval_is_train", "wrong_features",
                                  "not_a_module", "bad_creation", "open_window", "unknown_technique", "work_pass",
                                  "model_named_twice", "empty_loader"])
def test_bad_input_is_one_line_before_anything_is_written(tmp_path: Path, case: str) -> None:
    out = tmp_path / "run"
    kw = _bad(case, tmp_path)
    with pytest.raises(UserError) as err:
        api.bench(kw.pop("model"), kw.pop("eval_data"), out=out, **kw)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400, str(err.value)
    assert not out.exists()


def test_a_suite_file_cannot_name_the_given_family_or_task(tmp_path: Path) -> None:
    for block in ("task: {name: given, options: {sha256: " + "a" * 64 + "}}\nmodels: {m: {family: mlp}}",
                  "task: {name: digits}\nmodels: {m: {family: given, options: {weights: " + "a" * 64 + "}}}"):
        (tmp_path / "s.yaml").write_text(f"name: s\n{block}\nvariants: []\n")
        proc = cli("run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "run"))
        assert proc.returncode == 2 and "api.bench" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "run").exists()


def test_a_hugging_face_model_on_token_ids_from_a_dataloader(tmp_path: Path) -> None:
    """A transformers model built from a config (no Hub), fed integer token ids through a
    DataLoader: int64 features reach it as such, its ``.logits`` are the output."""
    from torch.utils.data import DataLoader, TensorDataset
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(cfg).eval()
    ids = torch.randint(1, 50, (48, 8))
    labels = (ids[:, 0] > 25).long()
    result = api.bench(model, eval_data=DataLoader(TensorDataset(ids, labels), batch_size=16), creation=None,
                       variants=LADDER[:1], out=tmp_path / "r", measure=MEASURE,
                       plots=False)
    with torch.no_grad():
        mine = model(ids).logits.argmax(dim=1)
    table = result.table.set_index("variant_id")
    assert table.loc["model", "accuracy"] == pytest.approx(float((mine == labels).float().mean()))
    assert records(tmp_path / "r")["model"]["eval"]["predictions"] == mine.tolist()
