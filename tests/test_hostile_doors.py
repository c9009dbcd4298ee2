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
