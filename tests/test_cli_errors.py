"""Every command's bad input is one `error:` line on stderr, a non-zero exit status and no traceback.

In-process with click's CliRunner and no Label Studio: a closed port (127.0.0.1:9) stands in for a
server that is gone, so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from builder.cli import cli

from .conftest import ROOT, SAMPLE, make_project

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"
CLOSED = {"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "x" * 40}


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A project folder (the repository's scheme and snapshot) as the current folder, no Label Studio set."""
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "BUILDER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "project"
    make_project(root, "cli errors", snapshot=SNAPSHOT)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def broken_config(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[dataset\nname = \n", encoding="utf-8")
    return path


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def one_error(result, *needles, alone: bool = True, code: int = 1) -> str:
    """`result` failed with exit status `code` and exactly one `error:` line on stderr, the last one (`alone`: the
    only line), without a traceback; the line holds every needle."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an exception click caught for us
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    if alone:
        assert lines == errors, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- split ------------------------------------------------------------------------------------------


def test_split_bad_project_file(broken_config, tmp_path):
    result = invoke("--config", broken_config, "split", SAMPLE, "-o", tmp_path / "s.jsonl")
    one_error(result, f"{broken_config}: not valid TOML")
    assert not (tmp_path / "s.jsonl").exists()


def test_split_missing_input_keeps_the_previous_output(here):
    previous = here / "s.jsonl"
    previous.write_text('{"article_id": "a", "id": "x", "sentence_index": 0}\n', encoding="utf-8")
    result = invoke("split", here / "missing.txt", "-o", previous, "--report", here / "report.json")
    one_error(result, "nothing valid was read; kept the previous", alone=False)
    assert "missing.txt" in result.stderr
    assert previous.read_text(encoding="utf-8").startswith('{"article_id": "a"')
    report = json.loads((here / "report.json").read_text(encoding="utf-8"))  # written by split_files, as before
    assert report["stage"] == "split" and any("missing.txt" in p["where"] for p in report["problems"])


def test_split_report_that_is_an_input_is_refused_before_any_work(here):
    before = files_under(here)
    result = invoke("split", SAMPLE, "-o", here / "s.jsonl", "--report", SNAPSHOT)
    one_error(result, "--report", "refusing to overwrite", "it holds Label Studio tasks")
    assert files_under(here) == before


# --- server -----------------------------------------------------------------------------------------


def test_server_install_into_an_unusable_cache(tmp_path):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file, not a folder\n", encoding="utf-8")
    result = invoke("server", "install", env={"XDG_CACHE_HOME": str(not_a_folder)})
    one_error(result, str(not_a_folder), alone=False)  # after the "installing ..." line
    assert not_a_folder.read_text(encoding="utf-8") == "a file, not a folder\n"


def test_server_start_outside_a_project(tmp_path, monkeypatch):
    monkeypatch.delenv("BUILDER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = invoke("server", "start")
    one_error(result, f"no builder.toml in {tmp_path} or above")
    assert files_under(tmp_path) == []


def test_server_stop_bad_project_file(broken_config):
    one_error(invoke("--config", broken_config, "server", "stop"), "not valid TOML")


def test_server_status_with_an_unreadable_state_file(here):
    (here / ".builder").mkdir()
    (here / ".builder" / "server.json").write_text("{not json", encoding="utf-8")
    one_error(invoke("server", "status"), "unreadable server state", "run `builder server start`")


def test_server_status_when_nothing_runs_exits_3(here):
    result = invoke("server", "status")
    assert result.exit_code == 3 and isinstance(result.exception, SystemExit)
    assert result.stdout == "no local Label Studio is running (start one with `builder server start`)\n"


def test_server_status_of_a_closed_url(here):
    result = invoke("server", "status", env=CLOSED)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "using http://127.0.0.1:9 from LABEL_STUDIO_URL (not answering)\n"


def test_server_migrate_with_nothing_to_move_or_a_password_in_the_url(here):
    one_error(invoke("server", "migrate", "--to", "postgresql"), "no SQLite database in .builder/", "nothing to move")
    one_error(
        invoke("server", "migrate", "--to", "postgresql", "--database-url", "postgresql://u:pw@127.0.0.1:5/db"),
        "must not hold a password",
    )
    assert not (here / ".builder" / "migration.json").exists() and not (here / ".builder" / "postgresql").exists()


# --- push, pull, review: bad files, and a Label Studio that is gone -----------------------------------


def test_push_bad_sentences_file(here):
    sentences = here / "s.jsonl"
    sentences.write_text('{"id": "a"}\n', encoding="utf-8")
    one_error(invoke("push", sentences, env=CLOSED), f"{sentences}:1: field 'article_id' is missing")


def test_push_missing_sentences_file(here):
    result = invoke("push", here / "missing.jsonl", env=CLOSED)
    assert result.exit_code == 2 and "does not exist" in result.stderr  # click's own usage error
    assert "Traceback" not in result.stderr


def test_push_to_a_closed_port(here):
    sentences = here / "s.jsonl"
    assert invoke("split", SAMPLE, "-o", sentences).exit_code == 0
    one_error(invoke("push", sentences, env=CLOSED), "cannot reach Label Studio at http://127.0.0.1:9")


def test_push_without_a_server(here):
    sentences = here / "s.jsonl"
    assert invoke("split", SAMPLE, "-o", sentences).exit_code == 0
    one_error(invoke("push", sentences), "no Label Studio to talk to: run `builder server start`")


def test_push_select_without_what_it_needs(here):
    sentences = here / "s.jsonl"
    assert invoke("split", SAMPLE, "-o", sentences).exit_code == 0
    one_error(invoke("push", sentences, "--select", "random", env=CLOSED), "--select random needs --limit N")
    one_error(
        invoke("push", sentences, "--select", "uncertain", "--limit", "5", "--predictor", "gazetteer", env=CLOSED),
        "--select uncertain: the predictor (builder-gazetteer/1+",
        "does not measure uncertainty",
    )


def test_predict_without_a_predictor_or_a_server(here):
    one_error(invoke("predict", "--predictor", "none", env=CLOSED), "builder predict needs a predictor")
    one_error(invoke("predict", "--predictor", "gazetteer"), "no Label Studio to talk to")
    one_error(
        invoke("predict", "--predictor", "gazetteer", env=CLOSED), "cannot reach Label Studio at http://127.0.0.1:9"
    )


def test_pull_from_a_closed_port_keeps_the_snapshot(here):
    before = SNAPSHOT.read_bytes()
    one_error(invoke("pull", env=CLOSED), "cannot reach Label Studio at http://127.0.0.1:9")
    assert (here / "annotations" / "snapshot.jsonl").read_bytes() == before


def test_pull_with_half_the_connection(here):
    one_error(invoke("pull", env={"LABEL_STUDIO_URL": "http://127.0.0.1:9"}), "LABEL_STUDIO_API_KEY is not set")


@pytest.mark.parametrize(
    "url, needle",
    [
        ("http://127.0.0.1:9/x?a=1\nb", "holds spaces or control characters"),
        ("http://127.0.0.1:9/?a=1", "without '?...' or '#...'"),
        ("http://127.0.0.1:9/#top", "without '?...' or '#...'"),
        ("http://me:secret@127.0.0.1:9", "must not hold a user name or password"),
        ("ftp://127.0.0.1:9", "not an http(s) URL"),
    ],
)
def test_pull_refuses_a_url_that_is_not_label_studios_address(here, url, needle):
    key = {"LABEL_STUDIO_API_KEY": "x" * 40}
    message = one_error(invoke("pull", env={"LABEL_STUDIO_URL": url, **key}), needle)
    assert "secret" not in message


def test_review_missing_snapshot(here):
    one_error(invoke("review", "--snapshot", here / "missing.jsonl", env=CLOSED), "missing.jsonl: cannot open")


def test_review_on_a_closed_port(here):
    result = invoke("review", env=CLOSED)
    one_error(result, "cannot reach Label Studio at http://127.0.0.1:9")
    assert result.stdout  # the unresolved sentences were listed first


# --- validate, stats, schema, build --------------------------------------------------------------------


def test_validate_missing_snapshot_writes_nothing(here):
    out = here / "out"
    out.mkdir()
    result = invoke("validate", "--snapshot", here / "missing.jsonl", "-o", out / "r.jsonl", "--report", out / "v.json")
    one_error(result, "missing.jsonl: cannot open", "run `builder pull` first")
    assert files_under(out) == []


def test_validate_records_onto_the_snapshot_is_refused(here):
    snapshot = here / "annotations" / "snapshot.jsonl"
    one_error(invoke("validate", "-o", snapshot), "refusing to overwrite", "it holds Label Studio tasks")
    assert snapshot.read_bytes() == SNAPSHOT.read_bytes()
    assert not (here / "build").exists()


def test_validate_invalid_snapshot_reports_and_fails(here):
    """Invalid tasks are reported (a table, then the accounting line), not an error line: exit 1, no traceback."""
    snapshot = here / "bad.jsonl"
    snapshot.write_text('{"task_id": 1}\nnot json\n', encoding="utf-8")
    result = invoke("validate", "--snapshot", snapshot)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "validate: 2 tasks in = 0 records + 2 quarantined" in result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((here / "build" / "validation-report.json").read_text(encoding="utf-8"))
    assert (report["tasks_in"], report["records"], report["quarantined"]) == (2, 0, 2)


def test_stats_missing_snapshot(here):
    one_error(invoke("stats", "--snapshot", here / "missing.jsonl"), "missing.jsonl: cannot open")


def test_stats_bad_project_file(broken_config):
    one_error(invoke("--config", broken_config, "stats"), "not valid TOML")


def test_quality_missing_snapshot_or_an_output_it_must_not_replace(here):
    one_error(invoke("quality", "--snapshot", here / "missing.jsonl"), "missing.jsonl: cannot open")
    snapshot = here / "annotations" / "snapshot.jsonl"
    one_error(invoke("quality", "-o", snapshot), "refusing to overwrite", "not a report of `builder quality`")
    assert snapshot.read_bytes() == SNAPSHOT.read_bytes()
    (here / "builder.toml").write_text(
        (here / "builder.toml").read_text(encoding="utf-8") + '\n[quality]\ngold = "missing-gold.jsonl"\n',
        encoding="utf-8",
    )
    one_error(invoke("quality"), "quality.gold", "missing-gold.jsonl is not a file")


def test_schema_check_of_stale_schemas(here):
    (here / "schema").mkdir()
    shutil.copy(ROOT / "schema" / "task.schema.json", here / "schema" / "task.schema.json")
    (here / "schema" / "record.schema.json").write_text("{}\n", encoding="utf-8")
    one_error(invoke("schema", "--check"), "record.schema.json in", "run `builder schema`")
    assert invoke("schema").exit_code == 0
    result = invoke("schema", "--check")
    assert result.exit_code == 0 and result.stdout == "schema/ matches the label scheme\n"


def test_train_missing_snapshot_or_a_folder_of_the_users(here):
    one_error(invoke("train", "--snapshot", "missing.jsonl"), "missing.jsonl", "no such snapshot")
    assert not (here / ".builder").exists()  # nothing made, not even the parent of the model folder
    (here / "mine").mkdir()
    (here / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    one_error(invoke("train", "-o", "mine"), "was not written by builder")
    one_error(invoke("--config", "nowhere.toml", "train"), "nowhere.toml")
    assert files_under(here / "mine") == ["notes.txt"]


def test_build_missing_snapshot_leaves_no_folder(here):
    one_error(invoke("build", "--snapshot", here / "missing.jsonl"), "missing.jsonl: cannot open")
    assert not (here / "dist").exists()  # dist/ was made for the build, and removed with it


def test_validate_missing_snapshot_leaves_no_folder(here):
    one_error(invoke("validate", "--snapshot", here / "missing.jsonl"), "missing.jsonl: cannot open")
    assert not (here / "build").exists()


def test_build_into_a_folder_of_the_users(here):
    (here / "mine").mkdir()
    (here / "mine" / "notes.txt").write_text("mine\n", encoding="utf-8")
    one_error(invoke("build", "-o", here / "mine"), "refusing to write into", "was not written by builder")
    assert files_under(here / "mine") == ["notes.txt"]


# --- run, release, diff, verify -----------------------------------------------------------------------


def test_run_into_a_folder_of_the_users_refuses_before_any_work(here):
    (here / "mine").mkdir()
    (here / "mine" / "notes.txt").write_text("mine\n", encoding="utf-8")
    before = files_under(here)
    one_error(invoke("run", "--output", here / "mine", env=CLOSED), "refusing to write into", "--output")
    assert files_under(here) == before


def test_run_outside_the_builder_repository(here):
    one_error(invoke("run", env=CLOSED), "examples/sample is missing: `builder run` works in the builder repository")


def test_release_bad_version(here):
    one_error(invoke("release", "1.x"), "'1.x' is not a semantic version")
    assert not (here / "releases").exists()


def test_release_of_an_uncommitted_project(here):
    one_error(invoke("release", "1.0.0"), alone=False)
    assert not (here / "releases" / "1.0.0").exists()


def test_diff_unknown_release():
    one_error(invoke("--config", ROOT / "builder.toml", "diff", "1.0.0", "9.9.9"), "no release 9.9.9 in")


def test_verify_unknown_release():
    one_error(invoke("--config", ROOT / "builder.toml", "verify", "9.9.9"), "no release 9.9.9", "releases: 1.0.0")


def test_export_unknown_release_and_unmapped_stance(tmp_path):
    config = ROOT / "builder.toml"
    one_error(invoke("--config", config, "export", "--format", "conll", "--version", "9.9.9"), "no release 9.9.9")
    bad_map = ("--version", "1.0.0", "-o", tmp_path / "tsv", "--stance-map", "favor=YES")
    one_error(
        invoke("--config", config, "export", "--format", "semeval", *bad_map), "favor=YES", "FAVOR, AGAINST, NONE"
    )
    assert not (tmp_path / "tsv").exists()


# --- init and annotators ----------------------------------------------------------------------------


def test_init_refuses_an_existing_project(here):
    before = (here / "builder.toml").read_bytes()
    one_error(invoke("init", here, "--yes"), "builder.toml")
    assert (here / "builder.toml").read_bytes() == before


def test_annotators_add_an_invalid_email_creates_nothing(here):
    one_error(invoke("annotators", "add", "ann1@example.org", "not-an-email", env=CLOSED), "not-an-email")


def test_annotators_list_on_a_closed_port(here):
    one_error(invoke("annotators", "list", env=CLOSED), "http://127.0.0.1:9")


def test_annotators_remove_on_a_closed_port(here):
    one_error(invoke("annotators", "remove", "ann1@example.org", env=CLOSED), "http://127.0.0.1:9")


def test_annotators_blind_on_a_closed_port(here):
    one_error(invoke("annotators", "blind", env=CLOSED), "http://127.0.0.1:9")


def test_every_command_has_an_error_path_test_here():
    """A command added later gets its bad-input test in this file (found by its `invoke("name", ...)` call)."""
    import re

    import click

    def leaves(group: click.Group, prefix: tuple = ()):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from leaves(command, (*prefix, name))
            else:
                yield (*prefix, name)

    source = Path(__file__).read_text(encoding="utf-8")
    called = set()  # every run of string literals in an invoke(...) call: ("--config", X, "diff", ...) gives ("diff",)
    for arguments in re.findall(r"invoke\(([^\n]*)", source):
        words = tuple(re.findall(r"\"([^\"]+)\"", arguments))
        called.update(words[i:j] for i in range(len(words)) for j in range(i + 1, len(words) + 1))
    assert sorted(" ".join(path) for path in leaves(cli) if path not in called) == []


def test_a_reader_that_goes_away_is_not_an_error():
    """`builder stats | head -1`: the closed pipe ends the command quietly (141, as a shell reports it)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "builder", "stats"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    child.stdout.close()  # before it writes a line
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, stderr
    assert stderr == "", stderr
