"""Hostile input on the doors opened for work made elsewhere: ONNX files, safetensors
files, plugins, the Python API, old records and databases. Each class of problem is
planted in several members, beside its absence."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from harness import outside
from harness.errors import UserError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from harness.runtimes.ort import external_data  # noqa: E402


# -- 1. one walker over every tensor of an ONNX model, and formats parsed, not sniffed --
def _tensor(name: str, external: bool) -> "onnx.TensorProto":
    t = numpy_helper.from_array(np.zeros(3, np.float32), name)
    if external:
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", "notes/secret.bin"
    return t


def _model(place: str | None, rng: random.Random) -> "onnx.ModelProto":
    """A valid small model; with ``place``, one tensor stored outside the file sits there."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    ext = lambda where: place == where  # noqa: E731
    then_g = helper.make_graph([helper.make_node("Constant", [], ["t"], value=_tensor("then_c", ext("subgraph")))],
                               "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [3])])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["e"], value=_tensor("else_c", False))],
                               "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3])])
    nested = helper.make_graph([helper.make_node("If", ["cond"], ["t2"], then_branch=then_g, else_branch=else_g)],
                               "nested", [], [helper.make_tensor_value_info("t2", TensorProto.FLOAT, [3])],
                               [numpy_helper.from_array(np.array(True), "cond")])
    nodes = [helper.make_node("Constant", [], ["c"], value=_tensor("attr_c", ext("attribute"))),
             helper.make_node("If", ["flag"], ["b"], then_branch=nested, else_branch=else_g),
             helper.make_node("Add", ["x", "c"], ["s"]), helper.make_node("Add", ["s", "b"], ["u"]),
             helper.make_node("F", ["u"], ["y"], domain="local")]
    inits = [_tensor("w", ext("initializer")), numpy_helper.from_array(np.array(False), "flag")]
    sparse = [helper.make_sparse_tensor(_tensor("sv", ext("sparse")), numpy_helper.from_array(
        np.array([0], np.int64), "si"), [3])]
    graph = helper.make_graph(nodes, "g", [x], [y], inits, sparse_initializer=sparse)
    fn_nodes = [helper.make_node("Constant", [], ["k"], value=_tensor("fn_c", ext("function"))),
                helper.make_node("Add", ["a", "k"], ["z"])]
    fn = helper.make_function("local", "F", ["a"], ["z"], fn_nodes, [helper.make_opsetid("", 18)])
    model = helper.make_model(graph, functions=[fn],
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("local", 1)])
    if rng.random() < 0.5:
        model.metadata_props.add(key="note", value="shuffled")
    return model


PLACES = ["initializer", "sparse", "attribute", "subgraph", "function"]


@pytest.mark.parametrize("seed", range(12))
def test_an_external_tensor_anywhere_is_found(seed: int) -> None:
    rng = random.Random(seed)
    assert external_data(_model(None, rng).SerializeToString()) is None  # absence: nothing flagged
    place = rng.choice(PLACES)
    why = external_data(_model(place, rng).SerializeToString())
    assert why is not None and "notes/secret.bin" in why, place


def test_a_runtime_context_node_is_refused() -> None:
    model = _model(None, random.Random(0))
    model.graph.node.append(helper.make_node("EPContext", [], [], domain="com.microsoft",
                                             ep_cache_context="../elsewhere.bin", embed_mode=0))
    assert "EPContext" in external_data(model.SerializeToString())


def _safetensors(path: Path, header_len: int) -> None:
    """A valid safetensors file whose header is padded (with spaces, as the format allows)
    to ``header_len`` bytes."""
    import json
    import struct

    body = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    assert header_len >= len(body)
    body += b" " * (header_len - len(body))
    path.write_bytes(struct.pack("<Q", header_len) + body + np.zeros(2, np.float32).tobytes())


@pytest.mark.parametrize("seed", range(8))
def test_valid_safetensors_headers_of_any_size_are_not_taken_for_pickles(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    # low byte 0x80 (a pickle's first byte) in half the cases, any other size in the rest
    size = rng.randrange(1, 40) * 256 + (0x80 if seed % 2 == 0 else rng.randrange(80, 256))
    path = tmp_path / "w.safetensors"
    _safetensors(path, size)
    assert path.read_bytes()[:1] == (b"\x80" if seed % 2 == 0 else path.read_bytes()[:1])
    assert outside.is_safetensors(path)
    outside.refuse_pickle(path, "here", outside.is_safetensors)  # no error
    from safetensors.numpy import load_file

    assert load_file(str(path))["w"].shape == (2,)  # the library agrees it is valid


def test_a_pickle_is_still_refused_by_content(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "w.safetensors"
    path.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4))
    assert not outside.is_safetensors(path)
    with pytest.raises(UserError, match="holds a pickle"):
        outside.refuse_pickle(path, "here", outside.is_safetensors)


# -- 7. plugins that escape -------------------------------------------------------------
@pytest.fixture
def planted_plugins(tmp_path: Path, monkeypatch):
    """Entry points in the technique group: one whose import calls sys.exit(0), one that
    gives a number, one that gives a class of another kind, and one good plugin."""
    import sys
    from importlib.metadata import EntryPoint

    from harness import registry
    from harness.compress import TECHNIQUES

    (tmp_path / "jb_exit.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "jb_number.py").write_text("X = 42\n")
    (tmp_path / "jb_good.py").write_text(
        "from harness.compress.quantize import Quantize\n\nclass Mine(Quantize):\n    name = 'mine'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [EntryPoint("exits", "jb_exit:X", "joulebench.techniques"),
           EntryPoint("number", "jb_number:X", "joulebench.techniques"),
           EntryPoint("wrong_kind", "harness.meters.estimate:EstimateBackend", "joulebench.techniques"),
           EntryPoint("mine", "jb_good:Mine", "joulebench.techniques")]
    monkeypatch.setattr(registry, "entry_points", lambda group: [e for e in eps if e.group == group])
    monkeypatch.setattr(TECHNIQUES, "_plugins", None)
    monkeypatch.setattr(TECHNIQUES, "_entries", dict(TECHNIQUES._entries))
    yield TECHNIQUES
    for mod in ("jb_exit", "jb_number", "jb_good"):
        sys.modules.pop(mod, None)


def test_a_plugin_that_exits_or_gives_the_wrong_kind_is_one_line(planted_plugins) -> None:
    techniques = planted_plugins
    status = {p.name: p.error for p in techniques.plugins()}  # no SystemExit escapes
    assert "SystemExit" in status["exits"]
    assert "not a subclass" in status["number"] and "not a subclass" in status["wrong_kind"]
    assert status["mine"] is None and "mine" in techniques.names()  # absence: a good plugin loads
    for name in ("exits", "number", "wrong_kind"):
        assert name not in techniques.names()
        with pytest.raises(UserError, match="comes from the plugin"):
            techniques.get(name)


def test_plugins_command_lists_a_plugin_that_exits(planted_plugins) -> None:
    from tests.conftest import cli

    proc = cli("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "exits" in proc.stdout and "SystemExit" in proc.stdout and "FAILED" in proc.stdout


# -- 2, 4, 5. a given ONNX file that is not what the task needs: refused before the run folder --
def _digits_onnx(path: Path, *, batch: int | str = "N", classes: int = 10, weight: float = 0.0,
                 loop: int = 0) -> Path:
    """A graph over the digits encoder's input ``x`` [N, 1, 8, 8]: flatten, matmul to
    ``classes`` logits; ``loop`` adds a Loop of that many trips to the output."""
    W = numpy_helper.from_array(np.full((64, classes), weight, np.float32), "W")
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "W"], ["logits0"])]
    inits = [W]
    if loop:
        body = helper.make_graph(
            [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Add", ["v", "one"], ["v_out"])], "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("c", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v", TensorProto.FLOAT, [])],
            [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])],
            [numpy_helper.from_array(np.array(1.0, np.float32), "one")])
        nodes += [helper.make_node("Loop", ["M", "cond", "v0"], ["vf"], body=body),
                  helper.make_node("Add", ["logits0", "vf"], ["logits"])]
        inits += [numpy_helper.from_array(np.array(loop, np.int64), "M"),
                  numpy_helper.from_array(np.array(True), "cond"), numpy_helper.from_array(np.array(0.0, np.float32), "v0")]
    else:
        nodes.append(helper.make_node("Identity", ["logits0"], ["logits"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def _digits_suite(tmp_path: Path, variant: dict, measure: dict | None = None) -> Path:
    import yaml

    raw = {"name": "doors", "task": {"name": "digits"}, "seeds": [0],
           "models": {"cnn": {"family": "cnn", "options": {"channels": [4, 8], "hidden": 16}}},
           "variants": [variant],
           "measure": {"batch_size": 128, "batch_sizes": [1, 128], "repetitions": 6, "min_window_s": 0.05,
                       "idle_s": 0.2, **(measure or {})}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("case, needle", [
    ("static_batch", "fixes axis 0"), ("three_classes", "3 logits per example where the task has 10"),
    ("nan_weights", "NaN or infinite logits"), ("endless_loop", "was stopped"),
])
def test_a_given_onnx_file_that_cannot_serve_the_task_is_one_line_before_the_folder(
        tmp_path: Path, monkeypatch, case: str, needle: str) -> None:
    pytest.importorskip("onnxruntime")
    from harness.runtimes import ort
    from tests.conftest import cli

    monkeypatch.setattr(ort, "FOREIGN_TIMEOUT_S", 1.0)
    made = {"static_batch": dict(batch=128), "three_classes": dict(classes=3), "nan_weights": dict(weight=float("nan")),
            "endless_loop": dict(loop=2**62)}[case]
    file = _digits_onnx(tmp_path / f"{case}.onnx", **made)
    variant = {"id": "cnn.x", "parent": "cnn", "runtime": {"name": "onnxruntime", "path": str(file)}}
    out = tmp_path / "run"
    proc = cli("run", str(_digits_suite(tmp_path, variant)), "--out", str(out), "--allow-estimate", "--no-plots")
    errors = [x for x in proc.stderr.splitlines() if x.startswith("joulebench: error")]
    assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr
    assert not out.exists()


def test_a_well_formed_onnx_file_passes_the_same_checks(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import torch

    from harness.runtimes.ort import OnnxRuntime

    file = _digits_onnx(tmp_path / "fine.onnx", weight=0.01)
    samples = [{"x": torch.zeros(n, 1, 8, 8)} for n in (1, 128, 66)]
    OnnxRuntime(path=str(file)).preflight(["x"], "here", samples, 10)  # no error
    with pytest.raises(UserError, match="fixes axis 0"):  # the same file with a fixed batch: refused
        OnnxRuntime(path=str(_digits_onnx(tmp_path / "fixed.onnx", batch=128))).preflight(["x"], "here", samples, 10)


# -- 2. checkpoints that are not what the task needs ------------------------------------
def _tiny_bert(labels: int, head: bool = True):
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    cfg = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, num_labels=labels)
    return BertForSequenceClassification(cfg) if head else BertModel(cfg)


def _parent(labels: int):
    from harness.models.bert import SequenceClassifier

    return SequenceClassifier(_tiny_bert(labels))


def test_hugging_face_folders_whose_head_does_not_fit_are_refused(tmp_path: Path) -> None:
    from harness.compress.checkpoint import Checkpoint

    fine, two, headless, nan = (tmp_path / n for n in ("fine", "two", "headless", "nan"))
    _tiny_bert(4).save_pretrained(fine)
    _tiny_bert(2).save_pretrained(two)  # transformers writes no id2label for 2 labels
    _tiny_bert(4, head=False).save_pretrained(headless)  # no classifier: from_pretrained would draw one at random
    broken = _tiny_bert(4)
    with __import__("torch").no_grad():
        broken.classifier.weight.fill_(float("nan"))
    broken.save_pretrained(nan)
    tech = Checkpoint()
    tech.preflight({"path": str(fine)}, _parent(4), "here")  # absence: the fitting folder passes
    with pytest.raises(UserError, match="labels 2 where the parent has 4"):
        tech.preflight({"path": str(two)}, _parent(4), "here")
    with pytest.raises(UserError, match="missing keys"):
        tech.preflight({"path": str(headless)}, _parent(4), "here")
    with pytest.raises(UserError, match="NaN or infinite"):
        tech.preflight({"path": str(nan)}, _parent(4), "here")


def test_a_safetensors_state_dict_with_nan_weights_is_refused(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from harness.compress.checkpoint import Checkpoint
    from harness.models import MODELS
    from harness.tasks import TASKS

    task = TASKS.get("digits")(None)
    parent = MODELS.get("cnn")(task, channels=[4, 8], hidden=16).module
    good, bad = tmp_path / "good.safetensors", tmp_path / "bad.safetensors"
    save_file(parent.state_dict(), str(good))
    state = {k: v.clone() for k, v in parent.state_dict().items()}
    next(v for v in state.values() if v.is_floating_point())[0] = float("inf")
    save_file(state, str(bad))
    Checkpoint().preflight({"path": str(good)}, parent, "here")
    with pytest.raises(UserError, match="NaN or infinite weights"):
        Checkpoint().preflight({"path": str(bad)}, parent, "here")


# -- 4. what can be known from the suite is known before the run folder ------------------
def test_transformer_configs_that_would_fail_in_training_are_refused_at_load() -> None:
    from types import SimpleNamespace

    from harness.models.bert import build_transformers
    from harness.registry import check_options

    task = SimpleNamespace(num_labels=2)
    small = {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32}
    opts = {"tokenizer": "bundled:minilm", "max_length": 64}
    check_options(build_transformers, {**opts, "config": small}, "here", skip=1)  # absence
    build_transformers(task, **opts, config={**small, "max_position_embeddings": 64})
    for reserved in ("vocab_size", "num_labels", "pad_token_id"):
        with pytest.raises(UserError, match=f"config.{reserved} is set by joulebench"):
            check_options(build_transformers, {**opts, "config": {**small, reserved: 8}}, "here", skip=1)
    with pytest.raises(UserError, match="max_position_embeddings 32 is below options.max_length 64"):
        build_transformers(task, **opts, config={**small, "max_position_embeddings": 32})


def test_a_model_too_large_for_the_machine_is_refused_before_the_folder(tmp_path: Path, monkeypatch) -> None:
    import yaml

    from harness import fits
    from tests.conftest import cli

    raw = yaml.safe_load((Path(__file__).parent.parent / "benchmarks" / "digits.yaml").read_text())
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(fits, "free_bytes", lambda device: 2**20)  # a machine with 1 MiB free
    out = tmp_path / "run"
    proc = cli("run", str(path), "--quick", "--out", str(out))
    assert proc.returncode == 2 and "need about" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()
    monkeypatch.setattr(fits, "free_bytes", lambda device: 2**40)  # absence: the same suite fits 1 TiB
    from harness.config import Suite  # noqa: F401  (the check itself, without the run)
    from harness import suite as suite_mod
    from harness.device import CPU
    from harness.models import MODELS
    from harness.runner import load_task

    s = suite_mod.load(path, "quick")
    task = load_task(s, None)
    fits.check(s, task, CPU, lambda m: MODELS.get(m.family)(task, **m.options))


# -- 8. old records and data that lie --------------------------------------------------
def _text_suite(tmp_path: Path, data: str) -> Path:
    import yaml

    raw = {"name": "lies", "task": {"name": "text_classification", "options": {"data": data}}, "seeds": [0],
           "models": {"tiny": {"family": "bert", "options": {"tokenizer": "bundled:minilm", "max_length": 16,
                                                              "config": {"num_hidden_layers": 1, "hidden_size": 16,
                                                                         "num_attention_heads": 2,
                                                                         "intermediate_size": 32}}}},
           "variants": [], "measure": {"repetitions": 6, "min_window_s": 0.05, "idle_s": 0.2}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("case", ["symlink", "copy", "contained", "hub_empty", "hub_escape", "fine"])
def test_an_eval_split_that_is_the_training_data_or_a_bad_hub_id_is_bad_input(tmp_path: Path, case: str) -> None:
    from tests.conftest import cli

    folder = tmp_path / "data"
    folder.mkdir()
    rows = [f"a sentence number {i} that is {'good' if i % 2 else 'bad'}\t{i % 2}" for i in range(40)]
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    held_out = [f"another sentence {i}\t{i % 2}" for i in range(10)]
    if case == "symlink":
        (folder / "validation.tsv").symlink_to(folder / "train.tsv")
    elif case == "copy":
        (folder / "validation.tsv").write_bytes((folder / "train.tsv").read_bytes())
    elif case == "contained":  # the eval rows are training rows, in another order and file
        (folder / "validation.tsv").write_text("sentence\tlabel\n" + "\n".join(rows[::-3]) + "\n")
    else:
        (folder / "validation.tsv").write_text("sentence\tlabel\n" + "\n".join(held_out) + "\n")
    data = {"hub_empty": "hub:", "hub_escape": "hub:../../etc"}.get(case, str(folder))
    out = tmp_path / "run"
    proc = cli("run", str(_text_suite(tmp_path, data)), "--out", str(out), "--skip-if-no-data", "--no-plots")
    if case == "fine":  # absence: a held-out split gets past the data checks (the run itself is not needed)
        assert "training data" not in proc.stderr and "dataset id" not in proc.stderr
        return
    errors = [x for x in proc.stderr.splitlines() if x.startswith("joulebench: error")]
    needle = "dataset id" if case.startswith("hub") else "training data"
    assert proc.returncode == 2 and len(errors) == 1 and needle in errors[0], proc.stderr
    assert not out.exists()


def test_old_records_with_odd_fields_are_skipped_with_a_line_not_a_traceback(tmp_path: Path) -> None:
    import json

    from harness import recordfile
    from tests.conftest import cli

    ref = Path(__file__).parent.parent / "results" / "reference" / "digits" / "records.jsonl"
    good = [json.loads(x) for x in ref.read_text().splitlines()]
    ok = next(r for r in good if r.get("status") == "ok")
    odd = []
    for change in ({"schema": 6, "sweep": {"tuning_J": 5.0, "trials": ["not a trial"]}},
                   {"schema": 6, "sweep": {"tuning_J": 10**400, "trials": []}},
                   {"device": "cuda"}, {"device": {"type": 7}}, {"flops": {"per_inference": "many"}},
                   {"data": {"n_eval": 10**30}}, {"runtime": {"name": "eager", "options": "none"}}):
        odd.append({**ok, **change})
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text("\n".join(json.dumps(r) for r in [ok, *odd]) + "\n")
    loaded, warnings = recordfile.load(run / "records.jsonl")
    assert len(loaded) == 1 and len(warnings) == len(odd)  # absence: the good record loads
    (run / "environment.json").write_text((ref.parent / "environment.json").read_text())
    proc = cli("report", str(run), "--out", str(tmp_path / "rep"), "--no-plots")
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 2), proc.stderr


# -- 6. a database that acts while it is being read --------------------------------------
def _v1_history(path: Path, extra_sql: str = "", version: str = "1") -> Path:
    import sqlite3

    from harness.history import schema as schema_mod

    con = sqlite3.connect(path)
    con.executescript(schema_mod.ddl_v1())
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (version,))
    con.execute("INSERT INTO meta VALUES ('planted', 'untouched')")
    if extra_sql:
        con.executescript(extra_sql)
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("case, needle", [
    ("trigger", "trigger"),
    ("replace", "table 'runs'"),
    ("view", "view 'points'"),
    ("version0", "schema '0'"),
    ("damaged", "damaged"),
])
def test_a_history_file_that_would_act_or_is_broken_is_refused_untouched(tmp_path: Path, case: str,
                                                                         needle: str) -> None:
    import hashlib

    from harness.history import db as db_mod

    path = tmp_path / "h.sqlite"
    extra = {"trigger": "CREATE TRIGGER t AFTER UPDATE ON meta BEGIN "
                        "UPDATE meta SET value='rewritten' WHERE key='planted'; END;",
             "replace": "DROP TABLE runs; CREATE TABLE runs (run_id TEXT PRIMARY KEY ON CONFLICT REPLACE, "
                        "content_sha256 TEXT NOT NULL, source TEXT NOT NULL, suite TEXT NOT NULL, profile TEXT NOT "
                        "NULL, started_at TEXT, finished_at TEXT, git_commit TEXT, git_dirty INTEGER, host TEXT, "
                        "machine TEXT NOT NULL, machine_label TEXT NOT NULL, meter TEXT, joulebench TEXT, environment "
                        "TEXT NOT NULL, fingerprint TEXT NOT NULL, imported_at TEXT NOT NULL);",
             "view": "DROP VIEW points; CREATE VIEW points AS SELECT * FROM results;"}.get(case, "")
    _v1_history(path, extra, "0" if case == "version0" else "1")
    if case == "damaged":
        data = bytearray(path.read_bytes())
        page = 4096
        for k in range(1, len(data) // page):  # scribble over every b-tree page's header
            data[k * page: k * page + 12] = b"\x0d\xff\xff\x7f\xff\x00\x00\xff\xff\xff\xff\xff"
        path.write_bytes(bytes(data))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(UserError, match=needle):
        db_mod.connect(path).close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # nothing written, nothing ran


def test_a_plain_schema_1_history_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    from harness.history import db as db_mod, schema as schema_mod

    path = _v1_history(tmp_path / "h.sqlite")  # absence: a genuine old file
    db_mod.connect(path).close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(schema_mod.SCHEMA)
    assert con.execute("SELECT value FROM meta WHERE key='planted'").fetchone()[0] == "untouched"


# -- first corpus: a damaged cache entry says why, and counting never rebuilds in silence --
def test_a_damaged_cache_entry_is_named_and_a_counting_cache_refuses_to_rebuild(tmp_path: Path) -> None:
    import torch

    from harness.cache import ArtifactCache
    from harness.errors import VariantSkipped

    key = "cd" * 32
    logs: list[str] = []
    cache = ArtifactCache(tmp_path, log=logs.append)
    from tests.conftest import module_meta

    cache.put_module(key, torch.nn.Linear(3, 2), module_meta())
    assert cache.get_module(key, lambda meta: torch.nn.Linear(3, 2)) is not None and not logs  # absence
    payload = tmp_path / key[:2] / key / "module.safetensors"
    data = bytearray(payload.read_bytes())
    data[0:8] = (10**9).to_bytes(8, "little")  # a header length past the file: a damaged header
    payload.write_bytes(bytes(data))

    def refuse(k: str, why: str) -> None:
        raise VariantSkipped(f"{k[:12]}: {why}")

    counting = ArtifactCache(tmp_path, log=logs.append, on_miss=refuse)
    with pytest.raises(VariantSkipped, match="corrupt"):
        counting.get_module(key, lambda meta: torch.nn.Linear(3, 2))
    assert any("corrupt" in line and "rebuilding" in line for line in logs)


def _mlp_suite(tmp_path: Path) -> Path:
    import yaml

    raw = {"name": "tiny", "task": {"name": "digits"}, "seeds": [0], "train": {"epochs": 1},
           "models": {"mlp": {"family": "mlp", "options": {"hidden": [16]}}}, "variants": [],
           "measure": {"repetitions": 6, "min_window_s": 0.05, "idle_s": 0.1, "warmup": 1}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_run_killed_before_its_environment_resumes_and_odd_environments_are_one_line(tmp_path: Path) -> None:
    import json

    from tests.conftest import cli

    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text("")  # what a kill -9 between the folder and environment.json leaves
    proc = cli("run", str(_mlp_suite(tmp_path)), "--out", str(out), "--resume", str(out), "--no-plots")
    assert proc.returncode == 0 and "starting it afresh" in proc.stderr, proc.stderr
    assert (out / "environment.json").is_file() and (out / "records.jsonl").is_file()
    env = json.loads((out / "environment.json").read_text())
    for key, odd in (("suite", "digits"), ("command", [1, 2]), ("idle_w", "hot"), ("gpu", 3)):
        (out / "environment.json").write_text(json.dumps({**env, key: odd}))
        proc = cli("report", str(out), "--appendix", "--no-plots")
        errors = [x for x in proc.stderr.splitlines() if x.startswith("joulebench: error")]
        assert proc.returncode == 2 and len(errors) == 1 and key in errors[0] and "Traceback" not in proc.stderr, \
            proc.stderr
    (out / "environment.json").write_text(json.dumps(env))
    assert cli("report", str(out), "--appendix").returncode == 0  # absence: the run's own environment


def test_an_exported_model_is_the_same_wherever_the_checkout_lives() -> None:
    """torch.onnx wrote each node's stack trace, with the checkout's absolute path, into
    the file: the ORT rows' size_bytes differed by the path's length between checkouts."""
    pytest.importorskip("onnxruntime")
    import torch

    from harness.runtimes import DeployContext
    from harness.runtimes.ort import OnnxRuntime

    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    ctx = DeployContext("x", module, None, [{"input": torch.zeros(4, 1, 8, 8)}], False, log=lambda s: None)
    try:
        artifact = OnnxRuntime()._export(ctx)
    except Exception as exc:  # the exporter wants named inputs for a plain module: use the harness's way
        pytest.skip(f"export of a bare module: {exc}")
    root = str(Path(__file__).resolve().parent.parent).encode()
    assert root not in artifact and b"stack_trace" not in artifact
    assert onnx.load_model_from_string(artifact).graph.node  # absence: the graph itself is whole
