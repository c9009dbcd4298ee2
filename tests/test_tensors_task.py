"""Arrays as a task from YAML (``task: tensors``): .npz, .pt, .parquet and .npy read as
data, the same examples whatever the format, every bad file one line before a run
folder exists; a suite on scikit-learn's wine features runs from the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.errors import UserError
from harness.tasks import TASKS
from tests.conftest import cli


def wine(folder: Path, fmt: str = "npz") -> Path:
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    x, y = load_wine(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    parts = dict(zip(("x_train", "x_eval", "y_train", "y_eval"),
                     train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0, stratify=y)))
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "eval"):
        xs, ys = parts[f"x_{split}"], parts[f"y_{split}"]
        if fmt == "npz":
            np.savez(folder / f"{split}.npz", x=xs, y=ys)
        elif fmt == "npy":
            np.save(folder / f"{split}_x.npy", xs)
            np.save(folder / f"{split}_y.npy", ys)
        elif fmt == "pt":
            import torch

            torch.save({"x": torch.from_numpy(xs), "y": torch.from_numpy(ys)}, folder / f"{split}.pt")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {f"f{i}": xs[:, i] for i in range(xs.shape[1])}
            pq.write_table(pa.table({**cols, "label": ys}), folder / f"{split}.parquet")
    return folder


def load(folder: Path, **options):
    return TASKS.get("tensors")(None, data=str(folder), **options)


def test_every_format_gives_the_same_examples(tmp_path: Path) -> None:
    tasks = {fmt: load(wine(tmp_path / fmt, fmt)) for fmt in ("npz", "npy", "pt", "parquet")}
    ref = tasks["npz"]
    assert ref.num_labels == 3 and ref.train.inputs.shape == (124, 13) and ref.kind == "features"
    for fmt, t in tasks.items():
        assert np.array_equal(t.train.inputs, ref.train.inputs) and np.array_equal(t.eval.labels, ref.eval.labels), fmt


SUITE = """
name: wine
task: {name: tensors, options: {data: wine}}
meter: estimate
seeds: [0]
train: {epochs: 30, batch_size: 32, lr: 0.01}
models:
  mlp: {family: mlp, options: {hidden: [32]}}
variants:
  - {id: mlp.int8, parent: mlp, technique: quantize, params: {dtype: int8}}
measure: {batch_size: 64, warmup: 1, repetitions: 6, min_window_s: 0.05, idle_s: 0.2}
"""


def test_a_tensors_suite_runs_from_the_command_line(tmp_path: Path) -> None:
    wine(tmp_path / "data" / "wine")
    (tmp_path / "wine.yaml").write_text(SUITE)
    out = tmp_path / "run"
    proc = cli("run", str(tmp_path / "wine.yaml"), "--data-dir", str(tmp_path / "data"), "--out", str(out),
               "--no-cache", "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[1/2]" not in proc.stderr and "eval accuracy" not in proc.stderr  # -q: warnings only
    recs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {r["variant_id"] for r in recs if r["status"] == "ok"} == {"mlp", "mlp.int8"}
    base = next(r for r in recs if r["variant_id"] == "mlp")
    assert base["eval"]["n"] == 54 and base["eval"]["accuracy"] > 0.8  # wine is easy; 54 held-out examples
    assert base["inference"]["windows"] and all(w["energy_j"] > 0 for w in base["inference"]["windows"])


def test_the_same_arrays_through_api_bench_give_the_same_predictions(tmp_path: Path) -> None:
    """The suite's baseline, trained as the run trains it (seeded, built, trained: one
    epoch, so the predictions depend on the initial weights), handed to api.bench as a
    user's own module: the same eval split in the same order, the same predictions."""
    wine(tmp_path / "data" / "wine")
    (tmp_path / "wine.yaml").write_text(SUITE.replace("epochs: 30, batch_size: 32, lr: 0.01",
                                                      "epochs: 1, batch_size: 32, lr: 0.003"))
    proc = cli("run", str(tmp_path / "wine.yaml"), "--data-dir", str(tmp_path / "data"), "--out",
               str(tmp_path / "run"), "--no-cache", "--no-plots")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # progress over the whole run: the count, the time spent and, from the second step, what is left
    assert "[1/2] wine: mlp@seed0 (" in proc.stderr and re.search(r"\[2/2\] .* elapsed, about \S+ left\)", proc.stderr)
    recs = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    import torch

    from harness import api
    from harness.models import MODELS
    from harness.runner import load_task
    from harness.train import train

    suite = api.load_suite(tmp_path / "wine.yaml")
    task = load_task(suite, tmp_path / "data")
    torch.manual_seed(0)
    bundle = MODELS.get("mlp")(task, hidden=[32])
    train(bundle.module, bundle.encode(task.train), suite.models[0].train, 0)
    mine = api.bench(bundle.module, eval_data=(task.eval.inputs, task.eval.labels), out=tmp_path / "bench",
                     variants=[{"id": "int8", "technique": "quantize", "params": {"dtype": "int8"}}],
                     measure={"repetitions": 6, "min_window_s": 0.05, "idle_s": 0.1}, plots=False).table.set_index("variant_id")
    ran = {r["variant_id"]: r["eval"] for r in recs if r["status"] == "ok"}
    assert (mine.loc["model", "accuracy"], mine.loc["int8", "accuracy"]) == (ran["mlp"]["accuracy"],
                                                                             ran["mlp.int8"]["accuracy"])
    benched = {r["variant_id"]: r["eval"] for r in map(json.loads, (tmp_path / "bench" / "records.jsonl").open())}
    assert benched["model"]["predictions"] == ran["mlp"]["predictions"]
    assert benched["int8"]["labels"] == ran["mlp.int8"]["labels"]  # the same eval split, in the same order


@pytest.mark.parametrize("case", ["pickled_npy", "pt_not_tensors", "nan", "label_range", "float_labels", "empty",
                                  "eval_is_train", "shapes", "twice", "missing"])
def test_a_bad_file_is_one_line(tmp_path: Path, case: str) -> None:
    folder = wine(tmp_path / "d")
    train = np.load(folder / "train.npz")
    x, y = train["x"], train["y"]
    if case == "pickled_npy":
        (folder / "train.npz").unlink()
        np.save(folder / "train_x.npy", np.array([object(), 1], dtype=object), allow_pickle=True)
        np.save(folder / "train_y.npy", y[:2])
    elif case == "pt_not_tensors":
        import torch

        (folder / "train.npz").unlink()
        import datetime

        # an object the restricted loader will not build (a pickle could hold any)
        torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y), "when": datetime.datetime(2026, 1, 1)},
                   folder / "train.pt")
    elif case == "nan":
        x = x.copy()
        x[5, 2] = np.nan
        np.savez(folder / "train.npz", x=x, y=y)
    elif case == "label_range":
        np.savez(folder / "train.npz", x=x, y=np.where(y == 2, -1, y))
    elif case == "float_labels":
        np.savez(folder / "train.npz", x=x, y=y + 0.5)
    elif case == "empty":
        np.savez(folder / "train.npz", x=x[:0], y=y[:0])
    elif case == "eval_is_train":
        np.savez(folder / "eval.npz", x=x, y=y)
    elif case == "shapes":
        np.savez(folder / "eval.npz", x=np.zeros((5, 7), np.float32), y=np.zeros(5, np.int64))
    elif case == "twice":
        np.save(folder / "train_x.npy", x)
        np.save(folder / "train_y.npy", y)
    else:
        (folder / "eval.npz").unlink()
    with pytest.raises(UserError) as err:
        load(folder)
    assert "\n" not in str(err.value) and str(folder) in str(err.value)


def test_the_cnn_on_feature_vectors_is_one_line(tmp_path: Path) -> None:
    wine(tmp_path / "data" / "wine")
    (tmp_path / "wine.yaml").write_text(SUITE.replace("mlp: {family: mlp, options: {hidden: [32]}}",
                                                      "mlp: {family: cnn}"))
    out = tmp_path / "run"
    proc = cli("run", str(tmp_path / "wine.yaml"), "--data-dir", str(tmp_path / "data"), "--out", str(out))
    assert proc.returncode == 2 and "use the mlp family" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
