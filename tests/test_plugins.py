"""Plugins through entry points: a broken one is one line and the rest still work; the
example plugin, installed with pip into a fresh virtual environment beside joulebench,
is listed and runs in a suite; uninstalled, the suite fails in one line naming it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from harness import registry
from harness.errors import UserError
from tests.conftest import ROOT

PLUGIN = ROOT / "benchmarks" / "examples" / "plugin"


class FakeDist:
    name, version = "broken-plugin", "0.0.1"


def entry(name: str, value: str, group: str = "joulebench.techniques") -> EntryPoint:
    ep = EntryPoint(name, value, group)
    return ep._for(FakeDist()) if hasattr(ep, "_for") else ep


def test_a_plugin_that_fails_to_import_is_one_line_and_the_others_still_load(monkeypatch) -> None:
    reg: registry.Registry = registry.Registry("technique")
    reg.register("builtin")(object)
    points = [entry("broken", "no_such_module_anywhere:Thing"), entry("good", "collections:OrderedDict"),
              entry("builtin", "collections:Counter")]
    monkeypatch.setattr(registry, "entry_points", lambda group: [p for p in points if p.group == group])
    assert reg.get("builtin") is object  # a name it holds: no plugin is looked for
    assert reg._plugins is None
    import collections

    assert reg.get("good") is collections.OrderedDict  # a name it lacks: plugins load, once
    with pytest.raises(UserError) as exc:
        reg.get("broken")
    msg = str(exc.value)
    assert "\n" not in msg and "no_such_module_anywhere" in msg and "broken-plugin" in msg and "reinstall" in msg
    assert reg.get("builtin") is object  # a built-in name is never replaced by a plugin
    states = {p.name: p.error for p in reg.plugins()}
    assert states["good"] is None and "failed to import" in states["broken"] and "built in" in states["builtin"]
    assert reg.names() == ["builtin", "good"]


def test_a_missing_known_plugin_names_its_package(monkeypatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    reg: registry.Registry = registry.Registry("technique")
    with pytest.raises(UserError) as exc:
        reg.get("random_prune")
    assert "joulebench-random-prune" in str(exc.value) and "not installed" in str(exc.value)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> Path:
    """A fresh virtual environment that sees this joulebench and the packages of the
    interpreter running the tests (through a .pth file: ``system_site_packages`` would
    show the base interpreter's instead, not those of a virtual environment the tests run
    in), with the example plugin installed into it with pip (no index needed)."""
    import site
    import sysconfig

    root = tmp_path_factory.mktemp("venv")
    env = root / "env"
    venv.create(env, system_site_packages=False, with_pip=True)
    python = env / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in dict.fromkeys([*site.getsitepackages(), site.getusersitepackages(),
                                      sysconfig.get_paths()["purelib"]]) if Path(p).is_dir()]
    (Path(purelib) / "joulebench-tests-parent.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n"
                                                                        for p in ours))
    source = root / "plugin"  # built from a copy: a build writes build/ and *.egg-info beside its sources
    shutil.copytree(PLUGIN, source)
    got = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", str(source)], capture_output=True, text=True, timeout=300)
    if got.returncode != 0:
        pytest.fail(f"pip could not install the example plugin: {got.stderr[-800:]}")
    return python


def joulebench(python: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "harness", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(Path.home())})


def test_the_example_plugin_installs_lists_runs_and_uninstalls(plugin_env: Path, tmp_path: Path) -> None:
    listed = joulebench(plugin_env, "plugins")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if "random_prune" in ln)
    assert "joulebench-random-prune 0.1.0" in line and "loaded" in line
    run = joulebench(plugin_env, "run", str(PLUGIN / "suite.yaml"), "--quick", "--meter", "estimate",
                     "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-plots")
    assert run.returncode == 0, run.stderr[-2000:]
    table = (tmp_path / "run" / "table.csv").read_text()
    assert "cnn.random50" in table and "random_prune" in table
    # the conformance checks an author runs on an installed joulebench, on the plugin's own entry
    checks = subprocess.run([str(plugin_env), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs",
                             "harness.testing", "-k", "random_prune or entry_point"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=900, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert checks.returncode == 0 and "6 passed" in checks.stdout, checks.stdout[-2000:] + checks.stderr[-1000:]
    subprocess.run([str(plugin_env), "-m", "pip", "uninstall", "-q", "-y", "joulebench-random-prune"], check=True,
                   capture_output=True)
    gone = joulebench(plugin_env, "run", str(PLUGIN / "suite.yaml"), "--quick", "--out", str(tmp_path / "never"))
    assert gone.returncode == 2 and not (tmp_path / "never").exists()
    err = gone.stderr.strip().splitlines()
    assert len(err) == 1 and "random_prune" in err[0] and "joulebench-random-prune" in err[0], gone.stderr
    assert sys.executable  # the test ran under this interpreter; the venv's is another


API_SUITE = {
    "name": "apitiny", "task": {"name": "digits", "options": {"eval_fraction": 0.25, "split_seed": 0}},
    "meter": "estimate", "seeds": [0], "train": {"epochs": 2, "batch_size": 32, "lr": 0.002},
    "models": {"cnn": {"family": "cnn", "options": {"channels": [8, 16], "hidden": 32}}},
    "variants": [{"id": "cnn.prune50", "parent": "cnn", "technique": "prune", "params": {"sparsity": 0.5},
                  "train": {"epochs": 1}}],
    "measure": {"batch_size": 128, "warmup": 1, "repetitions": 6, "min_window_s": 0.05, "idle_s": 0},
}


def test_the_python_api_gives_the_command_lines_table(tmp_path: Path) -> None:
    """api.run of a suite (a mapping here) returns the table the CLI writes for the
    same suite: same columns and dtypes, same accuracies; a bad suite is a UserError
    before the folder exists."""
    import pandas as pd
    import yaml

    from harness import api
    from tests.conftest import cli

    path = tmp_path / "apitiny.yaml"
    path.write_text(yaml.safe_dump(API_SUITE))
    cache = tmp_path / "cache"
    got = cli("run", str(path), "--out", str(tmp_path / "cli"), "--cache-dir", str(cache), "--no-plots")
    assert got.returncode == 0, got.stderr[-1500:]
    result = api.run(API_SUITE, out=tmp_path / "api", cache_dir=cache, log=lambda s: None, plots=False)
    from_cli = pd.read_parquet(tmp_path / "cli" / "table.parquet")
    assert list(result.table.columns) == list(from_cli.columns)
    assert [str(t) for t in result.table.dtypes] == [str(t) for t in from_cli.dtypes]
    assert result.table["accuracy"].tolist() == from_cli["accuracy"].tolist()
    assert result.table["variant_id"].tolist() == ["cnn", "cnn.prune50"]
    assert {r.variant_id for r in result.records} == {"cnn", "cnn.prune50"}
    assert api.report([result.run_dir])["accuracy"].tolist() == from_cli["accuracy"].tolist()
    assert api.compare([tmp_path / "cli"], [result.run_dir]).exit_code == 0  # same models, one run a side
    # no state kept between calls: trained again in this process (a cache of its own), the
    # same models as the command line's process trained
    again = api.run(API_SUITE, out=tmp_path / "api2", cache_dir=tmp_path / "cache2", log=lambda s: None,
                    plots=False)
    assert again.records[0].cached is None  # trained here, not fetched
    assert again.table["accuracy"].tolist() == from_cli["accuracy"].tolist()
    bad = {**API_SUITE, "seeds": "zero"}
    with pytest.raises(UserError):
        api.run(bad, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_the_example_plugin_and_the_docs_use_public_names_only() -> None:
    """What a plugin or a user's code imports from joulebench is ``harness.api`` and a
    name in its ``__all__`` (each resolves); the example plugin and the code blocks of
    the README and docs/extending.md show nothing else."""
    import ast
    import re

    from harness import api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    sources = [(PLUGIN / "joulebench_random_prune.py").read_text()]
    for doc in ("README.md", "docs/extending.md"):
        sources += re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), re.S)
    imported = []
    for src in sources:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
                imported += [(node.module, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                imported += [(a.name, None) for a in node.names if a.name.startswith("harness")]
    assert imported, "no joulebench import found: the check reads nothing"
    for module, name in imported:
        assert (module, name) == ("harness", "api") or (module == "harness.api" and name in api.__all__), \
            (module, name)
