"""The push ledger: which sentence ids builder pushed into which Label Studio project.

A re-push must skip the sentences a project already has. Listing every task through Label
Studio's task API costs ~8 s per 10,000 tasks; the ledger (a SQLite file under the project's
`.builder/`, private) answers the same question locally. It is trusted only while the number of
tasks it accounts for equals the project's task count (one request): tasks deleted in Label
Studio, imported by another machine, or a push killed between an import and its record all make
the counts differ, and the ledger is then rebuilt from a full listing, streamed page by page into
it. Ids are recorded only after Label Studio confirmed their import batch.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from builder.jsonio import refuse_link, state_dir

LEDGER_NAME = "push-ledger.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    server TEXT NOT NULL,
    project INTEGER NOT NULL,
    created TEXT NOT NULL,
    tasks INTEGER,
    UNIQUE (server, project, created)
);
CREATE TABLE IF NOT EXISTS pushed (
    ledger INTEGER NOT NULL,
    sentence_id TEXT NOT NULL,
    PRIMARY KEY (ledger, sentence_id)
) WITHOUT ROWID;
"""


def ledger_path(root: Path) -> Path:
    return Path(root) / ".builder" / LEDGER_NAME


class Ledger:
    """The sentence ids pushed into one project (server URL, project id and creation time)."""

    def __init__(self, db: sqlite3.Connection, ledger_id: int) -> None:
        self._db = db
        self._id = ledger_id

    @property
    def tasks(self) -> int | None:
        """How many tasks of the project the ledger accounts for (None: never listed)."""
        return self._db.execute("SELECT tasks FROM projects WHERE id = ?", (self._id,)).fetchone()[0]

    def __contains__(self, sentence_id: str) -> bool:
        query = "SELECT 1 FROM pushed WHERE ledger = ? AND sentence_id = ?"
        return self._db.execute(query, (self._id, sentence_id)).fetchone() is not None

    def present(self, sentence_ids: Iterable[str]) -> set[str]:
        """Those of `sentence_ids` the project has (the gold questions already in it, say)."""
        found: set[str] = set()
        ids = list(sentence_ids)
        for i in range(0, len(ids), 500):  # SQLite allows 32,766 parameters since 3.32, fewer before
            chunk = ids[i : i + 500]
            query = f"SELECT sentence_id FROM pushed WHERE ledger = ? AND sentence_id IN ({','.join('?' * len(chunk))})"
            found.update(row[0] for row in self._db.execute(query, (self._id, *chunk)))
        return found

    def record(self, sentence_ids: list[str]) -> None:
        """Ids whose import Label Studio confirmed: one task each."""
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO pushed (ledger, sentence_id) VALUES (?, ?)",
                ((self._id, s) for s in sentence_ids),
            )
            self._db.execute(
                "UPDATE projects SET tasks = coalesce(tasks, 0) + ? WHERE id = ?", (len(sentence_ids), self._id)
            )

    def rebuild(self, pages: Iterable[list]) -> int:
        """Replace the ledger by a listing of the project (pages of sentence ids, None for a task without
        one); one transaction, so an interrupted listing leaves the previous ledger. Returns the task count."""
        tasks = 0
        with self._db:
            self._db.execute("DELETE FROM pushed WHERE ledger = ?", (self._id,))
            for page in pages:
                tasks += len(page)
                self._db.executemany(
                    "INSERT OR IGNORE INTO pushed (ledger, sentence_id) VALUES (?, ?)",
                    ((self._id, s) for s in page if isinstance(s, str)),
                )
            self._db.execute("UPDATE projects SET tasks = ? WHERE id = ?", (tasks, self._id))
        return tasks


@contextlib.contextmanager
def open_ledger(root: Path, server: str, project_id: int, created: str) -> Iterator[Ledger]:
    """The ledger of one project; a ledger file SQLite cannot read is made anew (it is only a cache)."""
    path = state_dir(Path(root)) / LEDGER_NAME
    refuse_link(path)  # SQLite would write where the link points
    try:
        db, ledger_id = _open(path, server, project_id, created)
    except sqlite3.DatabaseError:  # not SQLite, or SQLite of another shape: it is only a cache
        for stale in (path, path.with_name(path.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        db, ledger_id = _open(path, server, project_id, created)
    try:
        yield Ledger(db, ledger_id)
    finally:
        db.close()


def _open(path: Path, server: str, project_id: int, created: str) -> tuple[sqlite3.Connection, int]:
    db = _connect(path)
    try:
        with db:
            db.execute(
                "INSERT OR IGNORE INTO projects (server, project, created) VALUES (?, ?, ?)",
                (server, project_id, created),
            )
        ledger_id = db.execute(
            "SELECT id FROM projects WHERE server = ? AND project = ? AND created = ?", (server, project_id, created)
        ).fetchone()[0]
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db, ledger_id


def _connect(path: Path) -> sqlite3.Connection:
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # made private before SQLite opens it
    os.chmod(path, 0o600)
    db = sqlite3.connect(path, timeout=60, isolation_level="DEFERRED")
    try:
        db.executescript(_SCHEMA)
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def pushed_into(root: Path, project_id: int, created: str) -> bool:
    """Whether this machine's ledger records pushes into the project with this id and creation time: a project
    builder made before projects were bound in annotations/label-studio.json (read-only, never made here)."""
    path = ledger_path(root)
    if not path.is_file() or path.is_symlink():
        return False
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            from builder.labelstudio.registry import moment

            rows = db.execute("SELECT created FROM projects WHERE project = ?", (project_id,)).fetchall()
            return any(moment(str(row[0])) == created for row in rows)
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return False
