"""The docs stay current: the command reference is what the commands say, and the README stays a first visit."""

from __future__ import annotations

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
