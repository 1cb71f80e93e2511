"""The local Label Studio: private to its owner, and never locked out of by following builder's advice."""

from __future__ import annotations

import os
import stat

import pytest

from builder.jsonio import write_jsonl
from builder.labelstudio import server

from .conftest import free_port, make_project, run_cli, seed_local_server
from .test_labelstudio import synthetic_sentences

pytestmark = pytest.mark.labelstudio  # starts its own Label Studio


def local_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO")}


def loose_modes(folder) -> list[str]:
    """Everything under `folder` that another local user could read, write or enter."""
    found = []
    for path in [folder, *folder.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or path.name == ".gitignore":
            continue
        if mode & 0o077:
            found.append(f"{oct(mode & 0o777)} {path}")
    return found


@pytest.fixture
def own_server(tmp_path, migrated_label_studio):
    """A project with a copy of the session's migrated, stopped server: its start below is a restart."""
    project = make_project(tmp_path, "own server")
    seed_local_server(migrated_label_studio, tmp_path)
    yield tmp_path, project
    server.stop(tmp_path)


def test_private_data_and_recovery_after_losing_the_state_file(own_server, migrated_label_studio):
    root, _ = own_server
    assert loose_modes(migrated_label_studio / ".builder") == []  # what a first start made (and migrated)
    sentences = root / "sentences.jsonl"
    write_jsonl(sentences, synthetic_sentences(3, "srv"))
    port = free_port()
    started = run_cli("server", "start", "--port", port, env=local_env(), cwd=root)
    assert started.returncode == 0, started.stderr
    assert loose_modes(root / ".builder") == []  # the database holds every user's token and e-mail
    assert run_cli("push", sentences, env=local_env(), cwd=root).returncode == 0

    # a corrupt state file: the message says what to do, and doing it recovers access
    server.state_path(root).write_text("{corrupt", encoding="utf-8")
    refused = run_cli("push", sentences, env=local_env(), cwd=root)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "run `builder server start`" in refused.stderr
    again = run_cli("server", "start", "--port", port, env=local_env(), cwd=root)
    assert again.returncode == 0, again.stderr
    assert "resetting the admin account's password and token" in again.stderr
    pushed = run_cli("push", sentences, env=local_env(), cwd=root)
    assert pushed.returncode == 0 and "skipped 3 already present" in pushed.stdout, pushed.stderr

    # the old advice (delete it), with files an earlier version left readable: still no lock-out
    server.state_path(root).unlink()
    for path in (root / ".builder").rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    recovered = run_cli("server", "start", "--port", port, env=local_env(), cwd=root)
    assert recovered.returncode == 0, recovered.stderr
    assert "without a usable state file" in recovered.stderr  # the orphaned server was ours: stopped, restarted
    assert loose_modes(root / ".builder") == []
    status = run_cli("server", "status", env=local_env(), cwd=root)
    assert status.returncode == 0 and "healthy" in status.stdout
    assert run_cli("push", sentences, env=local_env(), cwd=root).returncode == 0
    state = server.read_state(root)
    assert server.token_accepted(state.url, state.token) is True
    for output in (started, again, recovered, status):
        assert state.token not in output.stdout + output.stderr and state.password not in output.stdout + output.stderr

    stopped = run_cli("server", "stop", env=local_env(), cwd=root)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert server.servers_using((root / ".builder" / "label-studio-data").resolve()) == []


def test_sqlite_keeps_every_saved_annotation_when_label_studio_is_killed(own_server):
    """The local server's SQLite runs in write-ahead-log mode, synced at checkpoints (the guard's settings say why):
    an annotation Label Studio has answered for survives its process group being killed outright, and the next start
    finds it. An unknown BUILDER_SQLITE_SYNCHRONOUS is one line, before anything starts."""
    import signal
    import sqlite3
    import time

    from builder.labelstudio.client import Connection

    root, _ = own_server
    sentences = root / "sentences.jsonl"
    write_jsonl(sentences, synthetic_sentences(2, "wal"))
    refused = run_cli("server", "start", env={**local_env(), "BUILDER_SQLITE_SYNCHRONOUS": "off"}, cwd=root)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "BUILDER_SQLITE_SYNCHRONOUS is 'off': give normal (the default) or full" in refused.stderr
    assert server.read_state(root).pid is None  # nothing started

    port = free_port()
    assert run_cli("server", "start", "--port", port, env=local_env(), cwd=root).returncode == 0
    assert run_cli("push", sentences, env=local_env(), cwd=root).returncode == 0
    state = server.read_state(root)
    client = Connection(state.url, state.token, "test").client()
    project = next(iter(client.projects.list()))
    task = next(iter(client.tasks.list(project=project.id)))
    saved = client.annotations.create(id=task.id, result=[], was_cancelled=True)
    database = root / ".builder" / "label-studio-data" / server.SQLITE_FILE
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    os.killpg(state.pid, signal.SIGKILL)  # no checkpoint, no clean close: the log is all there is
    deadline = time.monotonic() + 30
    while server.is_healthy(state.url) and time.monotonic() < deadline:
        time.sleep(0.2)
    restarted = run_cli("server", "start", "--port", port, env=local_env(), cwd=root)
    assert restarted.returncode == 0, restarted.stderr
    client = Connection(state.url, server.read_state(root).token, "test").client()
    assert client.annotations.get(id=saved.id).was_cancelled is True
