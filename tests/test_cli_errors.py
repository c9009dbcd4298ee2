"""Bad input through the real CLI: one line, a non-zero exit, no traceback, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli


def assert_one_line_error(proc, needle: str, code: int = 2) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("joulebench: error:")]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0]


def suite_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


SST2_SUITE = """
name: sst2
task: {name: sst2}
meter: estimate
train: {epochs: 1, batch_size: 8, max_samples: 16}
models:
  bert_tiny:
    family: bert
    options: {tokenizer: "bundled:minilm", config: {num_hidden_layers: 1, hidden_size: 32,
              num_attention_heads: 2, intermediate_size: 64}}
"""


def test_unknown_suite_key(tmp_path: Path) -> None:
    path = suite_file(tmp_path, "name: t\ntask: {name: digits}\nmodels: {cnn: {family: cnn}}\nepochz: 3\n")
    assert_one_line_error(cli("run", str(path)), "unknown suite key 'epochz'")


def test_not_yaml(tmp_path: Path) -> None:
    path = suite_file(tmp_path, "name: t\ntask: {name: digits\n  models: [")
    assert_one_line_error(cli("run", str(path)), "is not valid YAML")


def test_missing_data_folder(tmp_path: Path) -> None:
    path = suite_file(tmp_path, SST2_SUITE)
    proc = cli("run", str(path), "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, "does not exist")
    assert not (tmp_path / "out").exists()


def test_no_data_and_no_hub_exits_3(tmp_path: Path) -> None:
    path = suite_file(tmp_path, SST2_SUITE)
    assert_one_line_error(cli("run", str(path)), "JOULEBENCH_DATA", code=3)


@pytest.mark.parametrize("train_text, needle", [
    ("", "is empty"),
    ("sentence\tlabel\ngood\t1\nbad\tfilm\t0\n", "line 3: expected 2 tab-separated fields"),
    ("sentence\tlabel\ngood\t1\nodd\t7\n", "label '7' is not in labels"),
])
def test_bad_tsv(tmp_path: Path, train_text: str, needle: str) -> None:
    folder = tmp_path / "data" / "sst2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text(train_text)
    (folder / "validation.tsv").write_text("sentence\tlabel\nfine\t1\n")
    path = suite_file(tmp_path, SST2_SUITE)
    assert_one_line_error(cli("run", str(path), "--data-dir", str(tmp_path / "data")), needle)


def test_existing_run_dir_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "records.jsonl").write_text('{"keep": "me"}\n')
    proc = cli("run", "benchmarks/digits.yaml", "--quick", "--out", str(out))
    assert_one_line_error(proc, "already holds records")
    assert (out / "records.jsonl").read_text() == '{"keep": "me"}\n'


def test_report_on_empty_dir(tmp_path: Path) -> None:
    assert_one_line_error(cli("report", str(tmp_path)), "holds no records.jsonl")


def test_meters_says_what_is_absent_and_why() -> None:
    """On this VM (no RAPL, no NVIDIA driver) the estimate is in use, with its formula."""
    from harness.meters import availability

    proc = cli("meters")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line and not line.startswith(" ")}
    avail = availability()
    for name in ("rapl", "nvml"):
        a = avail[name]
        state = "available" if a.available else "BLOCKED" if a.blocked else "absent"
        assert state in lines[name] and avail[name].reason in lines[name]
    if not avail["rapl"].available and not avail["nvml"].available:
        assert "meter: auto -> estimate" in proc.stdout
        assert "estimate: E = 12 W x CPU-seconds of the process" in proc.stdout


def test_out_is_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.write_text("mine\n")
    assert_one_line_error(cli("run", "benchmarks/digits.yaml", "--quick", "--out", str(out)),
                          "is an existing file, not a folder")
    assert out.read_text() == "mine\n"


def test_out_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert_one_line_error(cli("run", "benchmarks/digits.yaml", "--quick", "--out", str(tmp_path / "file" / "run")),
                          "cannot be created")


def test_report_on_records_that_are_not_text(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe binary")
    assert_one_line_error(cli("report", str(tmp_path)), "is not UTF-8 text")


@pytest.mark.parametrize("command", ["report", "merge", "compare"])
def test_siblings_of_the_bad_paths(command: str, digits_run: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "records.jsonl").write_bytes(b"\xff\xfe\x00 not text")
    if command == "report":
        assert_one_line_error(cli("report", str(digits_run), "--out", str(taken)), "is an existing file")
        assert_one_line_error(cli("report", str(taken)), "is not a folder")
    elif command == "merge":
        assert_one_line_error(cli("merge", str(digits_run), "--out", str(taken)), "is an existing file")
        assert_one_line_error(cli("merge", str(binary), "--out", str(tmp_path / "m")), "is not UTF-8 text")
    else:
        assert_one_line_error(cli("compare", str(digits_run), str(binary)), "is not UTF-8 text")
        assert_one_line_error(cli("compare", str(digits_run), str(tmp_path / "nowhere")), "is not a folder")
    assert taken.read_text() == "mine\n"


def test_cache_dir_is_a_file_and_resume_of_a_damaged_run(digits_run: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("x")
    assert_one_line_error(cli("run", "benchmarks/digits.yaml", "--quick", "--cache-dir", str(taken),
                                  "--out", str(tmp_path / "run")), "artifact cache")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "records.jsonl").write_bytes((digits_run / "records.jsonl").read_bytes())
    (damaged / "environment.json").write_text("{not json")
    assert_one_line_error(cli("run", "benchmarks/digits.yaml", "--quick", "--resume", str(damaged)),
                          "is not valid JSON")
    assert (damaged / "records.jsonl").read_bytes() == (digits_run / "records.jsonl").read_bytes()


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    import harness

    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"joulebench {harness.__version__}"
    assert version("joulebench") == harness.__version__  # pyproject reads it from harness.__version__
