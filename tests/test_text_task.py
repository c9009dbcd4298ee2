"""Bring your own text data by YAML alone: every file format, string labels, sentence
pairs, the GLUE presets, and one clear line for every kind of bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.errors import DataUnavailable, UserError
from harness.tasks import TASKS
from tests.conftest import ROOT, cli, run_cli

TOPICS = {
    "sports": ["match", "goal", "team", "coach", "league"],
    "business": ["market", "shares", "profit", "bank", "trade"],
    "science": ["study", "cells", "physics", "lab", "species"],
    "world": ["election", "minister", "border", "summit", "treaty"],
}


def news(n: int, seed: int) -> list[tuple[str, str]]:
    """(text, label) rows of a 4-topic news set: each headline carries its topic's words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(TOPICS)[i % 4]
        words = rng.sample(TOPICS[label], 3) + rng.sample(["today", "new", "report", "says", "after"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_split(folder: Path, stem: str, rows: list[tuple], fmt: str, header: bool = True,
                columns: tuple[str, ...] = ("text", "label")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt in ("tsv", "csv"):
        sep = "\t" if fmt == "tsv" else ","
        lines = ([sep.join(columns)] if header else []) + [sep.join(r) for r in rows]
        (folder / f"{stem}.{fmt}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "jsonl":
        (folder / f"{stem}.jsonl").write_text("".join(json.dumps(dict(zip(columns, r))) + "\n" for r in rows))
    else:
        pd.DataFrame(rows, columns=list(columns)).to_parquet(folder / f"{stem}.parquet")


def dataset(root: Path, fmt: str, header: bool = True) -> Path:
    folder = root / f"news_{fmt}{'' if header else '_nohead'}"
    write_split(folder, "train", news(160, 0), fmt, header)
    write_split(folder, "test", news(48, 1), fmt, header)
    return folder


def suite_file(tmp_path: Path, options: dict, variants: list | None = None) -> Path:
    raw = yaml.safe_load((ROOT / "benchmarks" / "examples" / "byo_news.yaml").read_text())
    raw["task"]["options"].update(options)
    if variants is not None:
        raw["variants"] = variants
        if not variants:
            raw["models"] = {"bert_tiny": raw["models"]["bert_tiny"]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_one_model(tmp_path: Path, options: dict, name: str, config: dict):
    """The example suite with its task options updated by ``options``, and one from-config ``transformers`` model
    plus its ``prune_heads`` (keep 1) variant, run quick through the CLI; returns
    (run dir, the process, records by variant id)."""
    raw = yaml.safe_load(suite_file(tmp_path, options).read_text())  # the example's options, updated
    raw["models"] = {name: {"family": "transformers",
                            "options": {"tokenizer": "bundled:minilm", "max_length": 32, "config": config}}}
    raw["variants"] = [{"id": f"{name}.heads1", "parent": name, "technique": "prune_heads", "params": {"keep_heads": 1}}]
    suite = tmp_path / f"{name}.yaml"
    suite.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    proc = run_cli("run", str(suite), "--quick", "--out", str(out), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    recs = {r["variant_id"]: r for r in map(json.loads, (out / "records.jsonl").read_text().splitlines())}
    return out, proc, recs


def test_the_readme_example_runs_on_a_4_class_news_folder(tmp_path: Path) -> None:
    """The README's bring-your-own-data suite, unchanged: BERT-tiny, int8 and a distilled
    student, on text<TAB>label with string labels, train.tsv and test.tsv."""
    data = tmp_path / "data"
    dataset(data, "tsv").rename(data / "news")
    out = tmp_path / "run"
    proc = run_cli("run", "benchmarks/examples/byo_news.yaml", "--quick", "--data-dir", str(data), "--out", str(out),
                   "--no-plots")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "table.csv").set_index("variant_id")
    assert {"bert_tiny", "bert_tiny.int8", "bert_tiny.distill"} <= set(table.index)
    assert (table["n_eval"] == 48).all() and table["macro_f1"].between(0, 1).all()
    env = json.loads((out / "environment.json").read_text())
    assert env["data"]["labels"] == ["business", "science", "sports", "world"]  # sorted from train
    assert len(env["data"]["train_file_sha256"]) == 64 and env["data"]["eval_rows"] == 48


@pytest.mark.parametrize("fmt, header", [("tsv", False), ("csv", True), ("jsonl", True), ("parquet", True)])
def test_every_format_by_yaml_alone(tmp_path: Path, fmt: str, header: bool) -> None:
    folder = dataset(tmp_path, fmt, header)
    columns = {} if header else {"text_column": 0, "label_column": 1, "header": False}
    suite = suite_file(tmp_path, {"data": str(folder), **columns}, variants=[])
    out = tmp_path / "run"
    proc = run_cli("run", str(suite), "--quick", "--out", str(out), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "table.csv")
    assert list(table["variant_id"]) == ["bert_tiny"] and table["n_eval"].iloc[0] == 48


def test_sentence_pairs_with_a_roberta_shaped_model(tmp_path: Path) -> None:
    rng = random.Random(0)
    words = [w for ws in TOPICS.values() for w in ws]
    rows = []
    for i in range(160):
        a = " ".join(rng.sample(words, 4))
        same = i % 2 == 0
        b = a if same else " ".join(rng.sample(words, 4))
        rows.append((a, b, "paraphrase" if same else "different"))
    folder = tmp_path / "pairs"
    write_split(folder, "train", rows[:120], "jsonl", columns=("s1", "s2", "y"))
    write_split(folder, "validation", rows[120:], "jsonl", columns=("s1", "s2", "y"))
    task = TASKS.get("text_classification")(None, data=str(folder), text_column="s1", text_pair_column="s2",
                                            label_column="y")
    assert task.train.inputs[0] == rows[0][:2] and task.info["labels"] == ["different", "paraphrase"]
    options = {"data": str(folder), "text_column": "s1", "text_pair_column": "s2", "label_column": "y",
               "eval_split": "validation"}
    config = {"model_type": "roberta", "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
              "intermediate_size": 64}
    out, proc, recs = run_one_model(tmp_path, options, "roberta_tiny", config)
    table = pd.read_csv(out / "table.csv").set_index("variant_id")
    assert table.loc["roberta_tiny", "model"] == "roberta_tiny"
    assert recs["roberta_tiny"]["model_info"]["architecture"] == "roberta L1 H32 A2 I64"
    # a BERT-style encoder: structured pruning handles RoBERTa too
    assert table.loc["roberta_tiny.heads1", "params"] < table.loc["roberta_tiny", "params"]


def test_distilbert_trains_and_structured_pruning_skips_it_in_one_line(tmp_path: Path) -> None:
    folder = dataset(tmp_path, "tsv")
    config = {"model_type": "distilbert", "n_layers": 1, "dim": 32, "n_heads": 2, "hidden_dim": 64}
    out, proc, recs = run_one_model(tmp_path, {"data": str(folder)}, "distil", config)
    md = (out / "table.md").read_text()
    assert "skipped distil.heads1 (seed 0): prune_heads cannot handle a distilbert model" in md
    assert recs["distil"]["model_info"]["architecture"] == "distilbert L1 H32 A2"
    assert "Traceback" not in proc.stderr


def test_sst2_preset_reads_the_glue_folder(sst2_slice: Path) -> None:
    task = TASKS.get("sst2")(sst2_slice)
    assert (len(task.train), len(task.eval)) == (3000, 300)
    assert task.name == "sst2" and task.num_labels == 2 and task.source == str(sst2_slice / "sst2")
    assert TASKS.get("sst2")(sst2_slice / "sst2").source == str(sst2_slice / "sst2")  # the folder itself
    for preset in ("mrpc", "rte", "qnli", "cola", "qqp", "mnli"):
        assert preset in TASKS


def test_quotes_are_text_not_quoting(tmp_path: Path) -> None:
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "train.tsv").write_text('sentence\tlabel\n"it \'s a "good" film\t1\nbad\t0\n')
    (folder / "validation.tsv").write_text("sentence\tlabel\nfine\t1\n")
    task = TASKS.get("text_classification")(None, data=str(folder))
    assert task.train.inputs[0] == '"it \'s a "good" film' and task.train.labels.tolist() == [1, 0]


def bad(tmp_path: Path, train: str, evals: str = "sentence\tlabel\nok\t0\nfine\t1\n", **options):
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    (folder / "train.tsv").write_text(train)
    (folder / "validation.tsv").write_text(evals)
    return lambda: TASKS.get("text_classification")(None, data=str(folder), **options)


@pytest.mark.parametrize("train, evals, options, needle", [
    ("text\tlabel\nfine\t1\nbad\t0\n", None, {}, "no column 'sentence' (text_column)"),
    ("sentence\tlabel\ngood\t1\nbad\t0\n", "sentence\tlabel\nok\t7\n", {}, "line 2: label '7' never appears in train"),
    ("sentence\tlabel\ngood\t1\nbad\t0\n", None, {"eval_split": "train"}, "both 'train'"),
    ("sentence\tlabel\n", None, {}, "has no rows"),
    ("", None, {}, "is empty"),
    ("sentence\tlabel\ngood\t1\nbad\t0\n", None, {"format": "xlsx"}, "format 'xlsx'"),
    ("sentence\tlabel\ngood\t1\nbad\t0\n", None, {"labels": [0, 1, 0]}, "distinct"),
    ("sentence\tlabel\ngood\t1\nbad film\t0\textra\n", None, {}, "line 3: expected 2 tab-separated fields, got 3"),
    ("sentence\tlabel\ngood\t1\nweird\t2\n", None, {"labels": [0, 1]}, "line 3: label '2' is not in labels"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, train: str, evals, options: dict, needle: str) -> None:
    load = bad(tmp_path, train, evals or "sentence\tlabel\nok\t0\nfine\t1\n", **options)
    with pytest.raises(UserError) as err:
        load()
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_folder_and_offline_hub(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(UserError, match="does not exist"):
        TASKS.get("text_classification")(None, data=str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataUnavailable, match="JOULEBENCH_DATA"):
        TASKS.get("sst2")(None)
    with pytest.raises(DataUnavailable, match="Hub is unreachable"):
        TASKS.get("text_classification")(None, data="hub:someone/news")


def test_cli_bad_data_is_one_line(tmp_path: Path) -> None:
    folder = dataset(tmp_path, "csv")
    suite = suite_file(tmp_path, {"data": str(folder), "label_column": "topic"})
    proc = cli("run", str(suite), "--quick", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "no column 'topic' (label_column)" in errors[0]
    assert not (tmp_path / "run").exists()
