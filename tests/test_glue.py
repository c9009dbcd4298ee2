"""GLUE-folder loading: real files, strict about every malformed line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import DataUnavailable, UserError
from harness.tasks import TASKS
from harness.tasks.glue import read_tsv
from harness.tasks.sst2 import find_folder


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_real_dev_set(shared_sst2: Path) -> None:
    split = read_tsv(shared_sst2 / "validation.tsv")
    assert len(split) == 872
    assert set(split.labels.tolist()) == {0, 1}
    assert all(isinstance(t, str) and t for t in split.inputs)


def test_loader_accepts_parent_or_sst2_folder(sst2_slice: Path) -> None:
    assert find_folder(sst2_slice) == sst2_slice / "sst2"
    assert find_folder(sst2_slice / "sst2") == sst2_slice / "sst2"
    task = TASKS.get("sst2")(sst2_slice)
    assert (len(task.train), len(task.eval)) == (3000, 300)
    assert task.kind == "text" and task.num_labels == 2


def test_quotes_are_text_not_quoting(tmp_path: Path) -> None:
    f = write(tmp_path / "t.tsv", 'sentence\tlabel\n"it \'s a "good" film\t1\nbad\t0\n')
    split = read_tsv(f)
    assert split.inputs[0] == '"it \'s a "good" film'
    assert split.labels.tolist() == [1, 0]


@pytest.mark.parametrize("text, needle", [
    ("", "is empty"),
    ("sentence\tlabel\n", "no rows"),
    ("text\tlabel\nfine\t1\n", "lacks 'sentence'"),
    ("sentence\tlabel\ngood\t1\nbad film\t0\textra\n", "line 3: expected 2 tab-separated fields, got 3"),
    ("sentence\tlabel\ngood\t1\nno label here\n", "line 3: expected 2"),
    ("sentence\tlabel\ngood\t1\nweird\t2\n", "line 3: label '2' is not in the label set {0, 1}"),
    ("sentence\tlabel\ngood\tpositive\n", "line 2: label 'positive'"),
])
def test_malformed_tsv_is_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    f = write(tmp_path / "train.tsv", text)
    with pytest.raises(UserError) as err:
        read_tsv(f)
    assert needle in str(err.value)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_missing_folder_and_offline_hub(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(UserError, match="does not exist"):
        find_folder(tmp_path / "nowhere")
    with pytest.raises(UserError, match="no sst2/train.tsv"):
        find_folder(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataUnavailable, match="JOULEBENCH_DATA"):
        TASKS.get("sst2")(None)
