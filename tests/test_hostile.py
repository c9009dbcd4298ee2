"""The four security holes a hostile-input corpus found, each reproduced and closed:
another user's cache entry, an ONNX file that reads other files, and writes through a
planted symbolic link (resume, lock, merge, report, history)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from harness import merge as merge_mod
from harness import recordfile
from harness.cache import ArtifactCache
from harness.errors import UserError, VariantSkipped
from harness.files import write_atomic
from harness.runtimes._onnx import session as onnx_session
from harness.runtimes.ort import external_data
from tests.conftest import ROOT, cli, module_meta, window_meta

REF = ROOT / "results" / "reference" / "digits"
KEY = "ab" * 32
ROOT_USER = os.geteuid() == 0  # only root can hand a file to another user


def one_line(proc, needle: str) -> None:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("joulebench: error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr


# -- 1. the cache ---------------------------------------------------------------------
def test_a_world_writable_cache_root_is_refused_unless_sticky(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    os.chmod(root, 0o777)  # yours, but anyone may swap your entries
    with pytest.raises(UserError, match="not sticky"):
        ArtifactCache(root)
    os.chmod(root, 0o1777)
    ArtifactCache(root)  # sticky: entries are checked one by one
    os.chmod(root, 0o755)
    ArtifactCache(root)


def test_an_entry_signed_by_no_one_is_rebuilt(tmp_path: Path) -> None:
    """Someone who can write the folder plants a tensor and a meta whose sha256 vouches
    for it (the old check): it carries no valid MAC, so it is rebuilt, never used."""
    logs: list[str] = []
    cache = ArtifactCache(tmp_path, log=logs.append)
    cache.put_tensor(KEY, torch.ones(3), {"window": window_meta()})
    assert torch.equal(cache.get_tensor(KEY)[0], torch.ones(3))  # absence: our own entry is used
    d = tmp_path / KEY[:2] / KEY
    from safetensors.torch import save_file

    save_file({"t": torch.full((3,), 7.0)}, str(d / "tensor.safetensors"))
    meta = json.loads((d / "meta.json").read_text())
    import hashlib

    meta["sha256"] = hashlib.sha256((d / "tensor.safetensors").read_bytes()).hexdigest()
    (d / "meta.json").write_text(json.dumps(meta))
    assert cache.get_tensor(KEY) is None and "not signed" in logs[-1]
    # a planted creation energy in an otherwise genuine entry: the MAC covers the meta too
    cache.put_tensor(KEY, torch.ones(3), {"window": window_meta(1.0)})
    meta = json.loads((d / "meta.json").read_text())
    meta["window"]["components"][0]["energy_j"] = 0.001
    (d / "meta.json").write_text(json.dumps(meta))
    assert cache.get_tensor(KEY) is None and "not signed" in logs[-1]


@pytest.mark.skipif(not ROOT_USER, reason="handing a file to another user needs root")
def test_another_users_entry_in_a_sticky_cache_is_not_loaded(tmp_path: Path) -> None:
    logs: list[str] = []
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o1777)
    cache = ArtifactCache(root, log=logs.append)
    cache.put_tensor(KEY, torch.ones(3), {"window": window_meta()})
    d = root / KEY[:2] / KEY
    for path in (d / "tensor.safetensors", d / "meta.json", d):
        os.chown(path, 12345, 12345)
    assert cache.get_tensor(KEY) is None and "owned by uid 12345" in logs[-1] and "rebuilding" in logs[-1]
    os.chown(d, os.geteuid(), os.getegid())
    for path in (d / "tensor.safetensors", d / "meta.json"):
        os.chown(path, os.geteuid(), os.getegid())
    os.chmod(d / "meta.json", 0o666)  # yours, but anyone may rewrite it
    assert cache.get_tensor(KEY) is None and "writable by others" in logs[-1]
    os.chmod(d / "meta.json", 0o644)
    assert cache.get_tensor(KEY) is not None  # absence


@pytest.mark.parametrize("damage", ["no info", "no windows", "a window without components", "a 0 J window",
                                    "a string for windows"])
def test_a_signed_entry_whose_meta_lacks_a_field_is_rebuilt(tmp_path: Path, damage: str) -> None:
    """Our own writer's meta, signed, but short of what a hit needs (an older or a
    broken writer): rebuilt with a line, never a KeyError in the run."""
    logs: list[str] = []
    cache = ArtifactCache(tmp_path, log=logs.append)
    meta = module_meta()
    if damage == "no info":
        del meta["info"]
    elif damage == "no windows":
        del meta["windows"]
    elif damage == "a window without components":
        del meta["windows"]["create"]["components"]
    elif damage == "a 0 J window":
        meta["windows"]["create"]["components"][0]["energy_j"] = 0.0
    else:
        meta["windows"] = "create"
    cache.put_module(KEY, torch.nn.Linear(3, 2), meta)
    assert cache.get_module(KEY, lambda m: torch.nn.Linear(3, 2)) is None
    assert "corrupt" in logs[-1] and "rebuilding" in logs[-1]
    cache.put_module(KEY, torch.nn.Linear(3, 2), module_meta())
    assert cache.get_module(KEY, lambda m: torch.nn.Linear(3, 2)) is not None  # absence


def test_a_symlinked_entry_is_not_followed(tmp_path: Path) -> None:
    logs: list[str] = []
    cache = ArtifactCache(tmp_path / "c", log=logs.append)
    cache.put_tensor(KEY, torch.ones(3), {"window": window_meta()})
    d = tmp_path / "c" / KEY[:2] / KEY
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(d), elsewhere)
    d.symlink_to(elsewhere)
    assert cache.get_tensor(KEY) is None and "symbolic link" in logs[-1]


# -- 2. ONNX external data ------------------------------------------------------------
def onnx_with_external(location: str) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2, 2])
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=location)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["logits"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def self_contained() -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    weight = numpy_helper.from_array(np.eye(2, dtype=np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["logits"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def test_an_onnx_file_with_external_data_is_refused_before_onnxruntime_opens_it(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 16)
    planted = onnx_with_external("../secret.bin")
    assert "stored outside the file ('../secret.bin')" in external_data(planted)
    with pytest.raises(VariantSkipped, match="not self-contained"):
        onnx_session(planted, 1, "all")
    assert external_data(self_contained()) is None  # absence: a normal file loads
    assert onnx_session(self_contained(), 1, "all") is not None
    assert "not an ONNX model" in external_data(b"garbage")


# -- 3 and 4. symbolic links ----------------------------------------------------------
def test_resume_does_not_truncate_a_records_symlink_target(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(REF / "environment.json", run)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\nhalf a line")  # a torn tail, which resume would cut
    (run / "records.jsonl").symlink_to(victim)
    one_line(cli("run", "benchmarks/digits.yaml", "--no-cache", "--resume", str(run)),
             "symbolic link where its records.jsonl")
    assert victim.read_text() == "precious\nhalf a line"
    (run / "records.jsonl").unlink()
    lock_target = tmp_path / "lock-target"
    (run / ".lock").symlink_to(lock_target)
    one_line(cli("run", "benchmarks/digits.yaml", "--no-cache", "--resume", str(run)), "symbolic link where its .lock")
    assert not lock_target.exists()


def test_merge_does_not_write_through_a_dangling_records_link(tmp_path: Path) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    outside = tmp_path / "outside.jsonl"  # does not exist: exists() is False for the link
    (out / "records.jsonl").symlink_to(outside)
    with pytest.raises(UserError, match="symbolic link where its records.jsonl"):
        merge_mod.merge([REF], out)
    assert not outside.exists()
    merge_mod.merge([REF], tmp_path / "clean")  # absence: a clean folder merges
    assert (tmp_path / "clean" / "records.jsonl").is_file()


def test_no_writer_follows_a_link(tmp_path: Path) -> None:
    """The siblings: the atomic writer, records' append, the report folder, the history
    database: each refuses a link at its last component, dangling or not."""
    target = tmp_path / "target"
    for make in (lambda p: p.symlink_to(target), lambda p: p.symlink_to(tmp_path / "nowhere")):
        link = tmp_path / "link"
        make(link)
        with pytest.raises(UserError, match="symbolic link"):
            write_atomic(link, lambda p: p.write_text("x"))
        rec = recordfile.load(REF / "records.jsonl")[0][0]
        with pytest.raises(UserError, match="symbolic link"):
            recordfile.append(link, rec)
        assert not target.exists() and not (tmp_path / "nowhere").exists()
        link.unlink()
    report_dir = tmp_path / "rep"
    shutil.copytree(REF, report_dir, ignore=shutil.ignore_patterns("table.*", "*.png"))
    (report_dir / "table.md").symlink_to(target)
    one_line(cli("report", str(report_dir)), "symbolic link where its table.md")
    assert not (report_dir / "table.csv").exists() and not target.exists()
    db = tmp_path / "h.sqlite"
    db.symlink_to(target)
    one_line(cli("history", "add", str(REF), "--db", str(db)), "symbolic link")
    assert not target.exists()


# -- classes of careless input: one mechanism each, several members planted ----------
BASE_SUITE = """name: t
task: {name: digits}
models: {cnn: {family: cnn}}
"""


@pytest.mark.parametrize("extra, needle", [
    ("train: {lr: .nan}\n", "must be finite"),
    ("train: {lr: .inf}\n", "must be finite"),
    ("models: {cnn: {family: cnn, options: {dropout: .nan}}}\n", "must be finite"),  # a model option too
    ("seeds: [-1]\n", "'seeds'"),
    ("seeds: [4294967296]\n", "'seeds'"),
    ("measure: {idle_s: 1.0e+300}\n", "idle_s is"),
    ("train: {epochs: 100000000}\n", "epochs is"),
    ("train: {batch_size: 0}\n", "batch_size must be >= 1"),
    ("train: {weight_decay: -1.0}\n", "weight_decay is"),
    ("sweep: {model: cnn, random: {n: 100000000, lr: {log_uniform: [1.0e-4, 1.0e-2]}}}\n", "a positive integer up to 10,000"),
    ("sweep: {model: cnn, grid: {lr: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], epochs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "
     "batch_size: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], weight_decay: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}\n",
     "configurations, over"),
])
def test_values_are_checked_for_range_and_finiteness_at_load(tmp_path: Path, extra: str, needle: str) -> None:
    from harness import suite

    path = tmp_path / "s.yaml"
    text = BASE_SUITE + extra
    if extra.startswith("models:"):
        text = BASE_SUITE.replace("models: {cnn: {family: cnn}}\n", extra)
    path.write_text(text)
    with pytest.raises(UserError, match=needle):
        suite.load(path)


@pytest.mark.parametrize("text, needle", [
    (BASE_SUITE + "train: {epochs: 2}\ntrain: {epochs: 3}\n", "given twice"),
    (BASE_SUITE.replace("name: t", "name: ../../outside"), "must be an identifier"),
    (BASE_SUITE.replace("name: t", "name: /etc"), "must be an identifier"),
    (BASE_SUITE + "x: " + "[" * 40 + "]" * 40 + "\n", "nested"),
])
def test_suite_files_that_would_mislead(tmp_path: Path, text: str, needle: str) -> None:
    from harness import suite

    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=needle):
        suite.load(path)
    path.write_text(BASE_SUITE)
    assert suite.load(path).name == "t"  # absence


def test_cli_numbers_are_checked_at_parse_time(tmp_path: Path) -> None:
    for args, needle in ((["compare", str(REF), str(REF), "--alpha", "0"]), "--alpha"), \
                        ((["report", str(REF), "--pue", "nan"]), "--pue"), \
                        ((["report", str(REF), "--grid-g-per-kwh", "-1"]), "--grid-g-per-kwh"):
        proc = cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"argument {needle}" in proc.stderr
    proc = cli("compare", "", "")  # an unset CI variable must not pass as "0 regressions"
    one_line(proc, "BASE names no run directory")


def test_a_history_database_that_runs_what_it_holds_is_refused(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "h.sqlite"
    assert cli("history", "add", str(REF), "--db", str(db)).returncode == 0
    before = db.read_bytes()
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER planted AFTER INSERT ON records BEGIN UPDATE records SET accuracy = 1.0; END")
    con.commit()
    con.close()
    one_line(cli("history", "show", "--db", str(db)), "trigger 'planted'")
    one_line(cli("history", "add", str(REF), "--db", str(db)), "trigger 'planted'")
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER planted")
    con.execute("CREATE VIEW slow AS SELECT 1")
    con.commit()
    con.close()
    one_line(cli("history", "show", "--db", str(db)), "view 'slow'")
    assert len(before) > 0


def test_an_empty_shard_is_a_clean_no_op_that_merge_skips(tmp_path: Path) -> None:
    suite = tmp_path / "one.yaml"
    suite.write_text(BASE_SUITE + "seeds: [0]\ntrain: {epochs: 1}\nmeasure: {repetitions: 6, min_window_s: 0.05, "
                     "idle_s: 0}\n")
    proc = cli("run", str(suite), "--shard", "2/2", "--out", str(tmp_path / "s2"))
    assert proc.returncode == 0 and "nothing to do" in proc.stderr, proc.stderr
    assert (tmp_path / "s2" / "records.jsonl").read_text() == ""
    messages = merge_mod.merge([REF, tmp_path / "s2"], tmp_path / "merged")
    assert any("empty shard" in m for m in messages)
    with pytest.raises(UserError, match="none of the 1 shard"):
        merge_mod.merge([tmp_path / "s2"], tmp_path / "merged2")


# -- files we wrote, read back with limits ---------------------------------------------
def bad_lines() -> list[tuple[str, str]]:
    first = next(r for r in map(json.loads, (REF / "records.jsonl").read_text().splitlines()) if r["status"] == "ok")
    nan = json.loads(json.dumps(first))
    nan["inference"]["windows"][0]["energy_j"] = float("nan")
    zero = json.loads(json.dumps(first))
    zero["inference"]["inferences_per_window"] = 0
    no_eval = json.loads(json.dumps(first))
    no_eval.pop("eval")
    short = json.loads(json.dumps(first))
    short["eval"]["predictions"] = short["eval"]["predictions"][:3]
    deep = '{"schema": 7, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return [(json.dumps(nan), "not a valid record"), (json.dumps(zero), "inferences_per_window"),
            (json.dumps(no_eval), "needs train, eval and inference"), (json.dumps(short), "predictions"),
            (deep, "nested too deeply")]


def test_damaged_records_are_named_and_skipped_and_the_rest_reported(tmp_path: Path) -> None:
    from harness.comparable import load_run_dirs
    from harness.table import build_table

    run = tmp_path / "run"
    shutil.copytree(REF, run, ignore=shutil.ignore_patterns("*.png", "table.*"))
    lines = (run / "records.jsonl").read_text().splitlines()
    planted = bad_lines()
    (run / "records.jsonl").write_text("\n".join(lines + [text for text, _ in planted]) + "\n")
    recs, warnings = load_run_dirs([run])
    for k, (_, needle) in enumerate(planted):
        line = len(lines) + 1 + k
        assert any(f"line {line} " in w and needle in w for w in warnings), (needle, warnings)
    assert len(recs) == len(lines) and len(build_table(recs)) > 0


def test_a_deeply_nested_environment_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(REF, run, ignore=shutil.ignore_patterns("*.png", "table.*"))
    (run / "environment.json").write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    one_line(cli("report", str(run)), "nested too deeply")


# -- every registry option: its type and range declared once, checked at load --------
@pytest.mark.parametrize("where, patch, needle", [
    ("model", {"models": {"cnn": {"family": "cnn", "options": {"dropout": 2.0}}}}, "option 'dropout'"),
    ("model", {"models": {"cnn": {"family": "cnn", "options": {"hidden": 10**13}}}}, "option 'hidden'"),
    ("model", {"models": {"cnn": {"family": "cnn", "options": {"channels": []}}}}, "option 'channels'"),
    ("model", {"models": {"cnn": {"family": "mlp", "options": {"hidden": [64, 0]}}}}, "option 'hidden.1'"),
    ("model", {"models": {"cnn": {"family": "cnn", "options": {"hidden": "64"}}}}, "valid integer"),
    ("model", {"models": {"cnn": {"family": "bert", "options": {"tokenizer": "t", "config": {"hidden_size": 10**13}}}}},
     "config.hidden_size must be an integer from 1 to 8,192"),
    ("model", {"models": {"cnn": {"family": "bert", "options": {"tokenizer": "t",
                                                                "config": {"attention_probs_dropout_prob": 2}}}}},
     "is a probability"),
    ("model", {"models": {"cnn": {"family": "bert", "options": {"tokenizer": "t", "max_length": 0}}}}, "'max_length'"),
    ("task", {"task": {"name": "digits", "options": {"eval_fraction": 1.5}}}, "option 'eval_fraction'"),
    ("task", {"task": {"name": "digits", "options": {"split_seed": -1}}}, "option 'split_seed'"),
    ("task", {"task": {"name": "sst2", "options": {"labels": ["only"]}}}, "option 'labels'"),
    ("task", {"task": {"name": "sst2", "options": {"header": "yes"}}}, "option 'header'"),
    ("technique", {"variants": [{"id": "cnn.d", "parent": "cnn", "technique": "distill",
                                 "params": {"student": "cnn", "temperature": 1.0e300}}]}, "option 'temperature'"),
    ("technique", {"variants": [{"id": "cnn.c", "parent": "cnn", "technique": "prune_channels",
                                 "params": {"keep_fraction": 1}}]}, "option 'keep_fraction'"),
    ("technique", {"variants": [{"id": "cnn.l", "parent": "cnn", "technique": "prune_layers",
                                 "params": {"layers": [0, "a"]}}]}, "option 'layers.1'"),
    ("technique", {"variants": [{"id": "cnn.h", "parent": "cnn", "technique": "prune_heads",
                                 "params": {"keep_heads": True}}]}, "option 'keep_heads'"),
    ("runtime", {"models": {"cnn": {"family": "cnn", "runtime": {"name": "onnxruntime", "opset": 99}}}}, "opset"),
    ("runtime", {"models": {"cnn": {"family": "cnn", "runtime": {"name": "compile", "mode": "fast"}}}}, "compile mode"),
])
def test_every_registry_option_is_checked_for_type_and_range(where: str, patch: dict, needle: str) -> None:
    from harness import suite

    raw = {"name": "t", "task": {"name": "digits"}, "models": {"cnn": {"family": "cnn"}}, **patch}
    with pytest.raises(UserError) as err:
        suite.parse(raw, "s.yaml")
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_the_same_options_in_range_load() -> None:  # the absence of the above
    from harness import suite

    raw = {"name": "t", "task": {"name": "digits", "options": {"eval_fraction": 0.2, "split_seed": 3}},
           "models": {"cnn": {"family": "cnn", "options": {"dropout": 0.5, "hidden": 32, "channels": [8]}},
                      "mlp": {"family": "mlp", "options": {"hidden": [16, 8]}}},
           "variants": [{"id": "cnn.d", "parent": "cnn", "technique": "distill",
                         "params": {"student": "mlp", "temperature": 4.0, "alpha": 1}},
                        {"id": "cnn.c", "parent": "cnn", "technique": "prune_channels", "params": {"keep_fraction": 0.5}}]}
    assert suite.parse(raw, "s.yaml").models[0].options["dropout"] == 0.5


def test_every_registered_option_declares_its_type() -> None:
    """A new task, model or runtime (a plugin's too) is held to the same rule without a
    new test: every option it takes has a type annotation the registry checks."""
    from typing import Any

    from harness import models, runtimes, tasks
    from harness.registry import options_model

    for registry, skip in ((tasks.TASKS, 1), (models.MODELS, 1), (runtimes.RUNTIMES, 0)):
        for name in registry:
            for field, info in options_model(registry.get(name), skip).model_fields.items():
                assert info.annotation is not Any, f"{registry.kind} {name!r} option {field!r} declares no type"


# -- data rows: every reader hands on checked rows, and every error names the file ----
def _rows(path: Path, fmt: str):
    from harness.tasks._rows import read_rows

    return list(read_rows(path, fmt, "sentence", None, "label"))


@pytest.mark.parametrize("name, content, needle", [
    ("a.jsonl", '{"sentence": "good", "label": 1}\n{"sentence": "bad", "label": null}\n', "line 2: the label is missing"),
    ("b.jsonl", '{"sentence": "good", "label": [1]}\n', "line 1: the label is list"),
    ("c.jsonl", '{"sentence": 5, "label": 1}\n', "line 1: the text is int"),
    ("d.tsv", "sentence\tlabel\ngood\t1\nbad\t\n", "line 3: the label is missing"),
    ("e.tsv", "sentence\tlabel\ngood\t1\n" + "x" * 1_000_001 + "\t0\n", "1,000,000-character limit"),
    ("f.csv", "sentence,label\ngood,1\n" + "y" * 1_000_001 + ",0\n", "1,000,000-character limit"),
])
def test_bad_data_rows_are_one_line_naming_file_and_line(tmp_path: Path, name: str, content: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError) as err:
        _rows(path, name.rsplit(".", 1)[1])
    assert str(path) in str(err.value) and needle in str(err.value), str(err.value)


def test_parquet_rows_damage_and_missing_labels_name_the_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"sentence": ["a"] * 500, "label": [1.0] * 499 + [None]}), good)
    with pytest.raises(UserError, match=r"good.parquet line 500: the label is missing"):
        _rows(good, "parquet")
    damaged = tmp_path / "damaged.parquet"
    data = bytearray(good.read_bytes())
    data[4:len(data) // 2] = bytes(len(data) // 2 - 4)  # the pages, not the footer
    damaged.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        _rows(damaged, "parquet")
    assert "damaged.parquet" in str(err.value) and "write" in str(err.value) and "format:" not in str(err.value)
    fine = tmp_path / "fine.parquet"
    pq.write_table(pa.table({"sentence": ["a", "b"], "label": [1.0, 0.0]}), fine)
    assert [r[3] for r in _rows(fine, "parquet")] == [1, 0]  # integer labels stored as floats are integers


def test_a_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    for name in ("bom.tsv", "bom.csv"):
        sep = "\t" if name.endswith("tsv") else ","
        path = tmp_path / name
        path.write_text(f"\ufeffsentence{sep}label\ngood{sep}1\nbad{sep}0\n", encoding="utf-8")
        assert [r[1] for r in _rows(path, name[-3:])] == ["good", "bad"]
    path = tmp_path / "bom.jsonl"
    path.write_text('\ufeff{"sentence": "good", "label": 1}\n', encoding="utf-8")
    assert _rows(path, "jsonl")[0][1] == "good"


def test_a_kill_during_the_idle_baseline_resumes(tmp_path: Path) -> None:
    """The environment is on disk before the first measurement, so a kill inside the idle
    baseline leaves a folder that --resume accepts and finishes (idle measured again)."""
    import signal
    import subprocess
    import sys
    import time

    suite = tmp_path / "idle.yaml"
    suite.write_text(BASE_SUITE.replace("models: {cnn: {family: cnn}}", "models: {mlp: {family: mlp}}")
                     + "train: {epochs: 1}\nseeds: [0]\nmeasure: {idle_s: 2.0, repetitions: 6, min_window_s: 0.1}\n")
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("JOULEBENCH_DATA", None)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(suite), "--out", str(out), "--no-cache",
                             "--no-plots"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "environment.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # inside the 2 s baseline
    assert proc.poll() is None, "the run ended before the planned kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    env_file = json.loads((out / "environment.json").read_text())
    records_file = out / "records.jsonl"
    assert env_file["idle_w"] is None  # killed inside the baseline
    assert not records_file.exists() or not records_file.read_text().strip()
    resumed = cli("run", str(suite), "--resume", str(out), "--no-cache", "--no-plots")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "environment.json").read_text())["idle_w"]  # measured on the resume
    assert (out / "table.csv").is_file()
