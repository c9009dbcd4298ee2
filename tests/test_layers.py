"""The layers point one way: no import circle among harness's modules.

The graph holds every import between harness modules, at module level and inside
functions alike (a deferred import is how a circle hides; only ``TYPE_CHECKING`` blocks,
which never run, are left out), with one exception: a package's ``__init__`` importing its own submodules at its end, to fill its
registry (timm's pattern: ``compress/__init__`` imports ``distill``, which imports the
registry from ``compress``): the submodule's edge back to its package is dropped, the
package's edge to it kept. Every other circle fails this test, naming it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "harness"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """harness modules imported anywhere in the module but under TYPE_CHECKING."""
    out: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.FunctionDef,
                                 ast.AsyncFunctionDef, ast.ClassDef)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []) or []:
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("harness"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                if base.startswith("harness"):
                    out.add(base)
                    out.update(f"{base}.{a.name}" for a in node.names)

    visit(tree.body)
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges[name] = {t for t in module_imports(ast.parse(path.read_text()), name, is_package) if t in files} - {name}
    for name in edges:  # a registry package filling itself: its submodule's import of it is no circle
        parent = name.rpartition(".")[0]
        if parent in edges and name in edges[parent]:
            edges[name].discard(parent)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def dfs(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                dfs(v)
        stack.pop()
        state[u] = 2

    for u in sorted(edges):
        if u not in state:
            dfs(u)
    return found


def test_no_import_circle_in_harness() -> None:
    found = cycles(graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_check_finds_a_planted_circle() -> None:
    edges = graph()
    edges["harness.errors"] = edges["harness.errors"] | {"harness.runner"}  # the bottom layer reaching up
    assert any("harness.errors" in c for c in cycles(edges))


TECHNIQUE_FILE = '''
"""A technique dropped in: halves every weight (a stand-in for any new compression)."""
import torch

from harness.compress import CompressContext, CompressResult, TECHNIQUES, Technique


@TECHNIQUES.register("halve_dropin")
class HalveDropin(Technique):
    example = ("mlp", {})
    flops_from_parent = True

    def apply(self, ctx: CompressContext) -> CompressResult:
        with ctx.monitor.creation_window(f"{ctx.variant_id}:create") as out, torch.no_grad():
            for p in ctx.parent.parameters():
                p.mul_(0.5)
        return CompressResult(ctx.parent, ctx.parent_bundle, {"create": out[0]}, {})
'''

RUNTIME_FILE = '''
"""A runtime dropped in: eager, under another name."""
from harness.runtimes import RUNTIMES, Eager


@RUNTIMES.register("eager_dropin")
class EagerDropin(Eager):
    footnote = "eager PyTorch under a dropped-in name."
'''

METER_FILE = '''
"""A meter dropped in: the estimate, under another name."""
from harness.meters.base import METERS
from harness.meters.estimate import EstimateBackend


@METERS.register("estimate_dropin")
class EstimateDropin(EstimateBackend):
    pass
'''

TASK_FILE = '''
"""A task dropped in: scikit-learn's wine features, split in half by parity."""
import numpy as np

from harness.tasks import TASKS, Split, TaskData


@TASKS.register("wine_dropin")
def load_wine_dropin(data_dir):
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    train, evals = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    return TaskData("wine_dropin", Split(x[train], y[train]), Split(x[evals], y[evals]), 3, "features",
                    "sklearn wine (dropped in)", "odd rows")
'''

MODEL_FILE = '''
"""A model family dropped in: one linear layer over the features."""
import torch
from torch import nn

from harness.models import MODELS, Encoded, ModelBundle


class Linear(nn.Module):
    def __init__(self, features: int, labels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(features, labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def encode(split) -> Encoded:
    return Encoded({"x": torch.as_tensor(split.inputs, dtype=torch.float32)},
                   torch.as_tensor(split.labels, dtype=torch.long))


@MODELS.register("linear_dropin")
def build(task) -> ModelBundle:
    return ModelBundle(Linear(task.train.inputs.shape[1], task.num_labels), encode, {"architecture": "linear"})
'''

SUITE = """
name: dropin
task: {name: wine_dropin}
meter: estimate_dropin
seeds: [0]
train: {epochs: 5, batch_size: 16, lr: 0.05}
models:
  mlp: {family: linear_dropin}
variants:
  - {id: mlp.halved, parent: mlp, technique: halve_dropin}
  - {id: mlp.dropin, parent: mlp, runtime: eager_dropin}
measure: {batch_size: 128, warmup: 1, repetitions: 6, min_window_s: 0.05, idle_s: 0.2}
"""


def test_an_extension_is_one_file_dropped_into_its_package(tmp_path: Path) -> None:
    """A task, a model family, a technique, a runtime and a meter, each one file written
    against the public base classes and dropped into a copy of the package, run from a
    suite with no other file touched (no import list, no name written twice)."""
    import os
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "src"
    shutil.copytree(ROOT, copy / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "harness" / "compress" / "halve_dropin.py").write_text(TECHNIQUE_FILE)
    (copy / "harness" / "runtimes" / "eager_dropin.py").write_text(RUNTIME_FILE)
    (copy / "harness" / "meters" / "estimate_dropin.py").write_text(METER_FILE)
    (copy / "harness" / "tasks" / "wine_dropin.py").write_text(TASK_FILE)
    (copy / "harness" / "models" / "linear_dropin.py").write_text(MODEL_FILE)
    (tmp_path / "suite.yaml").write_text(SUITE)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "suite.yaml"), "--out",
                           str(tmp_path / "run"), "--no-cache", "--no-plots"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / "run" / "table.md").read_text()
    assert "mlp.halved" in table and "mlp.dropin" in table and "eager_dropin: eager PyTorch under" in table
    assert "estimate" in table
    records = (tmp_path / "run" / "records.jsonl").read_text()
    assert '"technique": "halve_dropin"' in records and '"name": "eager_dropin"' in records
    assert '"task": "wine_dropin"' in records and '"architecture": "linear"' in records
    # absence: the original package has none of them
    plain = subprocess.run([sys.executable, "-c", "from harness.compress import TECHNIQUES; "
                            "print('halve_dropin' in TECHNIQUES)"], capture_output=True, text=True, cwd=ROOT.parent)
    assert plain.stdout.strip() == "False"


MAX_LINES = 300


def test_no_module_is_over_300_lines() -> None:
    """Sizes follow responsibilities: a module that grows past 300 lines holds two; move
    one out (the history's storage from its series, compare's sides from its tests)."""
    over = {str(p.relative_to(ROOT.parent)): n for p in sorted(ROOT.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
