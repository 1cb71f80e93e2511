"""The docs stay current: the command reference is what the commands say, and the README stays a first visit."""

from __future__ import annotations

import re

import pytest

from builder.docs import COMMAND, REFERENCE, command_reference, main

from .conftest import ROOT


def test_the_command_reference_is_current():
    committed = (ROOT / REFERENCE).read_text(encoding="utf-8")
    if committed != command_reference():
        pytest.fail(f"{REFERENCE} is stale: run `{COMMAND}` in the repository root", pytrace=False)


def test_the_command_reference_holds_every_commands_help_and_example():
    reference = command_reference()
    for heading in ("## builder", "## builder server start", "## builder annotators add", "## builder verify"):
        assert f"\n{heading}\n" in reference
    assert reference.count("Example:") == reference.count("\n## builder")  # one example per command and group
    assert "builder push work/sentences.jsonl" in reference


def test_the_command_reference_does_not_depend_on_the_terminal(monkeypatch):
    expected = command_reference()
    monkeypatch.setenv("COLUMNS", "40")
    assert command_reference() == expected


def test_check_says_which_command_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--check"]) == 1  # no docs/commands.md here
    assert capsys.readouterr().err.strip() == f"{REFERENCE} is stale: run `{COMMAND}` in the repository root"
    assert main([]) == 0
    assert (tmp_path / REFERENCE).read_text(encoding="utf-8") == command_reference()
    assert main(["--check"]) == 0


# The README's sections before it was split into docs/ (and the three labels of its Commands section that
# became headings): each is still a heading in the README or on one of the pages.
SECTIONS_BEFORE_THE_SPLIT = [
    "Quick start",
    "Your own dataset",
    "The pipeline",
    "Commands",
    "The local server",
    "Pushing",
    "Pulling",
    "For a team",
    "Pre-annotations and active learning",
    "The label scheme: `builder.toml`",
    "Validation rules (`builder validate`)",
    "How labels are aggregated",
    "Annotation quality (`builder quality`)",
    "The pseudonym key",
    "The dataset",
    "Using the dataset",
    "The bundled sample and where every label came from",
    "Cutting a release",
    "Benchmarks (`bench/`)",
    "Dependencies and why",
    "What builder promises, and the tests that try to break them",
    "Tests",
    "Layout: where each stage lives",
]


def pages() -> dict[str, str]:
    """The README and every page under docs/, by path relative to the repository root."""
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in paths}


def headings(text: str) -> set[str]:
    """The text of every Markdown heading outside code blocks."""
    found, fenced = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.add(match.group(1).strip())
    return found


def test_no_section_was_lost_in_the_split():
    everywhere = set().union(*(headings(text) for text in pages().values()))
    assert [title for title in SECTIONS_BEFORE_THE_SPLIT if title not in everywhere] == []


def test_the_readme_is_a_first_visit():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300, "README.md is over 300 lines: move sections into docs/"
    for title in ("Quick start", "Your own dataset", "Where to read on"):
        assert title in headings(readme)
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)\)", readme))
    assert {str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md")} <= linked  # every page reachable


def test_relative_links_resolve():
    broken = []
    for name, text in pages().items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            path = target.split("#")[0]
            if path and "://" not in path and not (ROOT / name).parent.joinpath(path).exists():
                broken.append(f"{name}: {target}")
    assert broken == []


def test_the_readme_names_the_test_command_ci_runs():
    """`.ci/run` runs "the README's test command"; the README says which it is."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "The test command is `python -m pytest`" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip().splitlines()
    assert ci[-2:] == ["# The README's test command:", ".venv/bin/python -m pytest"]


def test_every_promise_links_the_tests_that_try_to_break_it():
    text = (ROOT / "docs" / "promises.md").read_text(encoding="utf-8")
    promises = re.findall(r"^- \*\*(.+?)\*\*(.*?)(?=^- |\Z)", text, flags=re.M | re.S)
    assert len(promises) >= 12
    unlinked = [name for name, body in promises if not re.search(r"\]\(\.\./tests/test_\w+\.py\)", body)]
    assert unlinked == [], f"promises in docs/promises.md without a link to a test: {unlinked}"
