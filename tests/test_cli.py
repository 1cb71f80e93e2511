"""The CLI is thin: every command has help with an example; errors are one line."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from builder.cli import cli


def all_commands(group=cli, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from all_commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for path in all_commands():
        assert path[0] in top.output
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.output and f"builder {' '.join(path)}" in result.output, path


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "builder", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "builder" in result.stdout


def test_bad_config_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "builder.toml"
    bad.write_text("[dataset]\nname = 'x'\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder",
            "--config",
            str(bad),
            "split",
            str(tmp_path),
            "-o",
            str(tmp_path / "o.jsonl"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_example_and_bench_scripts_import():
    """The scripts beside the package (examples/, bench/, notebooks/) still import what they use."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    scripts = sorted([*root.glob("examples/*.py"), *root.glob("bench/*.py"), *root.glob("notebooks/*.py")])
    assert scripts
    sys.path.insert(0, str(root / "bench"))
    try:
        for path in scripts:
            spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))  # each runs only under __main__
    finally:
        sys.path.remove(str(root / "bench"))
