"""The CLI is thin: every command has help with an example; errors are one line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from builder.cli import cli

from .conftest import ROOT, SAMPLE, make_project


def all_commands(group=cli, prefix=(), groups: bool = False):
    """The path of every command registered on `group`, walked as click has them (`groups`: the groups too)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            if groups:
                yield prefix + (name,)
            yield from all_commands(command, prefix + (name,), groups)
        else:
            yield prefix + (name,)


def example_lines(help_text: str) -> list[str]:
    """The lines of the `Example:` block of a help text (indented lines after it, up to a blank line)."""
    lines = help_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Example:"]
    assert len(starts) == 1, help_text
    block = []
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    assert any(line.startswith("builder ") for line in example_lines(top.output))
    for path in all_commands(groups=True):
        assert path[0] in top.output
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        examples = example_lines(result.output)
        assert any(line.startswith(f"builder {' '.join(path)}") for line in examples), (path, examples)


def readme_commands() -> set[str]:
    """Commands named in README.md's commands table: `builder server install\\|start` names `server install`,
    `server start` and `server`."""
    names = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `builder ([^`]*)` \|", line)
        if not match:
            continue
        words = match.group(1).split()
        names.add(words[0])
        if len(words) > 1 and re.fullmatch(r"[a-z-]+(\\\|[a-z-]+)*", words[1]):
            names.update(f"{words[0]} {sub}" for sub in words[1].split("\\|"))
    return names


def test_every_command_is_in_the_readme_table():
    documented = readme_commands()
    assert {"split", "server", "server status", "verify"} <= documented  # the table was read
    missing = [" ".join(path) for path in all_commands(groups=True) if " ".join(path) not in documented]
    assert not missing, f"commands missing from README.md's commands table: {missing}"


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


# --- what the commands call: the library does the work, the CLI prints ---------------------------------


def test_stale_schemas_compares_in_memory(project, tmp_path):
    from builder.model import stale_schemas, write_schemas

    assert stale_schemas(project, ROOT / "schema") == []  # the committed ones are current
    assert stale_schemas(project, tmp_path) == ["task.schema.json", "record.schema.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # checking writes nothing
    write_schemas(project, tmp_path)
    assert stale_schemas(project, tmp_path) == []
    (tmp_path / "record.schema.json").write_bytes(b"\xff\xfe not UTF-8")
    (tmp_path / "task.schema.json").unlink()
    (tmp_path / "task.schema.json").mkdir()  # a folder in its place
    assert stale_schemas(project, tmp_path) == ["task.schema.json", "record.schema.json"]


def test_server_status_decides_what_the_cli_prints(tmp_path, monkeypatch):
    from builder.labelstudio.client import ServerStatus, status

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9/")
    assert status(tmp_path) == ServerStatus("environment", "http://127.0.0.1:9/", healthy=False)
    monkeypatch.delenv("LABEL_STUDIO_URL")
    assert status(tmp_path) == ServerStatus(None)
    assert not (tmp_path / ".builder").exists()  # asking changes nothing


def test_split_files_checks_its_outputs_first_and_writes_the_report(project, tmp_path):
    import json

    from builder.errors import BuilderError
    from builder.sentences.splitting import split_files

    snapshot = tmp_path / "snapshot.jsonl"
    snapshot.write_bytes((ROOT / "annotations" / "snapshot.jsonl").read_bytes())
    with pytest.raises(BuilderError, match="--report .* refusing to overwrite .* it holds Label Studio tasks"):
        split_files([SAMPLE], tmp_path / "s.jsonl", project, report_path=snapshot)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.jsonl"]
    result = split_files([SAMPLE], tmp_path / "s.jsonl", project, report_path=tmp_path / "report.json")
    text = (tmp_path / "report.json").read_text(encoding="utf-8")
    assert text == json.dumps(result.report.as_dict(), indent=2, sort_keys=True, ensure_ascii=False)


def test_validate_to_files_writes_records_and_report_at_the_projects_defaults(tmp_path):
    import json

    from builder.jsonio import read_jsonl
    from builder.records.from_snapshot import validate_to_files

    project = make_project(tmp_path / "p", "validate", snapshot=ROOT / "annotations" / "snapshot.jsonl")
    result = validate_to_files(project)
    assert (result.records_path, result.report_path) == (project.records_path, project.validation_report_path)
    assert project.records_path == project.root / "build" / "records.jsonl"
    assert len(list(read_jsonl(project.records_path))) == result.records == 65
    report = json.loads(project.validation_report_path.read_text(encoding="utf-8"))
    assert (report["stage"], report["tasks_in"], report["records"], report["quarantined"]) == ("validate", 65, 65, 0)


def test_project_paths(project):
    assert project.snapshot_path == ROOT / "annotations" / "snapshot.jsonl"
    assert project.validation_report_path == ROOT / "build" / "validation-report.json"
    assert project.dataset_path == ROOT / "dist" / "dprk-russia-stance-ner"
    assert project.schema_dir == ROOT / "schema"


def test_parquet_names_are_those_of_the_committed_release():
    import fnmatch
    import json

    from builder.dataset.splits import parquet_name, parquet_pattern

    files = json.loads((ROOT / "releases" / "1.0.0" / "manifest.json").read_text(encoding="utf-8"))["files"]
    for split in ("train", "validation", "test"):
        assert parquet_name(split) in files
        assert fnmatch.fnmatch(parquet_name(split), parquet_pattern(split))
    card = (ROOT / "releases" / "1.0.0" / "README.md").read_text(encoding="utf-8")
    assert f"path: {parquet_pattern('train')}" in card


def test_sha256_file(tmp_path):
    import hashlib

    from builder.jsonio import sha256_file

    for size in (0, 1, (1 << 20) + 3):
        path = tmp_path / f"f{size}"
        data = bytes(i % 251 for i in range(size))
        path.write_bytes(data)
        assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_a_failed_write_leaves_no_folder_it_made(tmp_path):
    from builder.jsonio import atomic_write

    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "kept" / "new" / "deeper" / "out.jsonl") as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]
