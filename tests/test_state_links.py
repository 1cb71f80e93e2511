"""`.builder/` and the state files in it are never used through a symbolic link (issue 23, item 5).

Builder makes its state folder 0700, its files 0600 and writes a .gitignore into it: through a link
that changed files outside the project (an executable lost its execute bit)."""

from __future__ import annotations

import os
import stat

import pytest

from builder.errors import BuilderError
from builder.jsonio import atomic_write, private_dir, state_dir
from builder.pseudonyms import create_key


@pytest.fixture
def elsewhere(tmp_path):
    """A folder outside the project holding an executable and a readable file."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "tool").write_text("#!/bin/sh\n", encoding="utf-8")
    os.chmod(folder / "tool", 0o755)
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")
    os.chmod(folder / "notes.txt", 0o644)
    os.chmod(folder, 0o755)
    return folder


def _unchanged(folder) -> None:
    assert stat.S_IMODE(os.stat(folder / "tool").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(folder / "notes.txt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "tool"]


def test_a_linked_state_folder_is_refused_and_left_alone(tmp_path, elsewhere):
    project = tmp_path / "project"
    project.mkdir()
    (project / ".builder").symlink_to(elsewhere)
    with pytest.raises(BuilderError, match=r"\.builder: it is a symbolic link") as caught:
        state_dir(project)
    assert "\n" not in str(caught.value)
    with pytest.raises(BuilderError, match="symbolic link"):
        create_key(project)
    _unchanged(elsewhere)


def test_a_linked_state_file_is_refused(tmp_path, elsewhere):
    project = tmp_path / "project"
    state_dir(project)
    (project / ".builder" / "pull-state.json").symlink_to(elsewhere / "notes.txt")
    with pytest.raises(BuilderError, match="pull-state.json: it is a symbolic link"):
        with atomic_write(project / ".builder" / "pull-state.json", "w", private=True) as handle:
            handle.write("{}")
    (project / ".builder" / "label-studio-data").symlink_to(elsewhere)
    with pytest.raises(BuilderError, match="label-studio-data: it is a symbolic link"):
        private_dir(project / ".builder" / "label-studio-data")
    state_dir(project)  # the links in it are not followed by the tightening either
    assert (elsewhere / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    _unchanged(elsewhere)


def test_a_linked_push_ledger_is_refused(tmp_path, elsewhere):
    from builder.labelstudio.ledger import open_ledger

    project = tmp_path / "project"
    state_dir(project)
    (project / ".builder" / "push-ledger.sqlite3").symlink_to(elsewhere / "ledger.sqlite3")
    with pytest.raises(BuilderError, match="push-ledger.sqlite3: it is a symbolic link"):
        with open_ledger(project, "http://127.0.0.1:1", 1, "2026"):
            pass
    assert not (elsewhere / "ledger.sqlite3").exists()


def test_a_state_folder_of_its_own_is_still_made_private(tmp_path):
    folder = state_dir(tmp_path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert (folder / ".gitignore").read_text(encoding="utf-8") == "*\n"


def test_tightening_the_server_folder_skips_a_file_that_goes_meanwhile(tmp_path):
    """SQLite removes its write-ahead log and shared-memory files when the last connection closes: a file listed,
    then gone before its chmod, is skipped, not an error of `server start` (seen: a start failed naming
    label_studio.sqlite3-wal). A real SQLite database in WAL mode opens and closes beside the tightening, as a
    server's does, many times over."""
    import sqlite3
    import threading

    from builder.labelstudio import server

    data = tmp_path / "label-studio-data"
    data.mkdir(mode=0o755)
    database = data / "label_studio.sqlite3"
    setup = sqlite3.connect(database)
    setup.execute("PRAGMA journal_mode=WAL")  # kept in the database: every later connection is in WAL mode
    setup.execute("CREATE TABLE t (x)")
    setup.commit()
    setup.close()
    stop = threading.Event()

    def churn() -> None:  # each close checkpoints and removes -wal and -shm
        while not stop.is_set():
            connection = sqlite3.connect(database)
            connection.execute("INSERT INTO t VALUES (1)")
            connection.commit()
            connection.close()

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for _ in range(5000):
            server.tighten(data)
    finally:
        stop.set()
        writer.join()
    server.tighten(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
