"""Every pointer in the documentation resolves: relative Markdown links to files that
exist (and to headings that exist, where they name one), and "README: Section"
references in code and suites to a heading of the README."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

SKIP = {".git", "node_modules", ".venv", "build"}


def _files(*suffixes: str) -> list[Path]:
    """The project's own files of those kinds; of results/, its READMEs only (run folders
    and references hold generated tables)."""
    out = []
    for p in ROOT.rglob("*"):
        parts = p.relative_to(ROOT).parts
        if p.is_file() and p.suffix in suffixes and not SKIP & set(parts) \
                and (parts[0] != "results" or p.name == "README.md"):
            out.append(p)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(md: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+\s+(.*)$", re.sub(r"```.*?```", "", md.read_text(), flags=re.S), re.M)}


def broken_links(md: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", md.read_text(), flags=re.S)
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = md.parent / path if path else md
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in headings(dest):
            bad.append(f"{target} (no such heading)")
    return bad


def test_every_relative_link_resolves() -> None:
    docs = [p for p in _files(".md")]
    assert ROOT / "README.md" in docs and len(docs) > 10
    bad = {str(p.relative_to(ROOT)): b for p in docs if (b := broken_links(p))}
    assert bad == {}


def test_every_readme_reference_names_a_section() -> None:
    sections = {h.strip().lower() for h in re.findall(r"^#+\s+(.*)$", (ROOT / "README.md").read_text(), re.M)}
    bad = []
    for f in _files(".md", ".py", ".yaml", ".sh", ".toml"):
        for name in re.findall(r"README[:,]? \"?([A-Z][A-Za-z -]+?)\"?[)\].;,]", f.read_text(errors="replace")):
            if name.strip().lower() not in sections:
                bad.append(f"{f.relative_to(ROOT)}: README: {name}")
    assert bad == []


def test_the_checks_see_a_broken_pointer(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n[ok](a.md#top) [gone](b.md) [nohead](a.md#nowhere)\n")
    assert broken_links(tmp_path / "a.md") == ["b.md (no such file)", "a.md#nowhere (no such heading)"]
