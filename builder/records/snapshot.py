"""The annotation snapshot: what `builder pull` writes under annotations/ and a release is built from.

One task per line, sorted by sentence id, keys sorted, no timestamps and no user identities:
annotators appear as stable pseudonyms (builder/pseudonyms.py). Shape (schema/task.schema.json):

    {"task_id": 12, "data": {"sentence_id": ..., "text": ..., ...},
     "annotations": [{"id": 3, "annotator": "annotator-1a2b3c4d", "result": [...],
                      "was_cancelled": false, "ground_truth": false, "lead_time": 4.2}],
     "predictions": [{"model_version": "builder-gazetteer/1+...", "result": [...]}]}
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from builder.jsonio import atomic_write, dumps_line, read_jsonl, write_jsonl

RESULT_KEYS = ("id", "from_name", "to_name", "type", "value", "origin")


def _user_id(completed_by) -> int | None:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return completed_by if type(completed_by) is int else None


def _result(items) -> list:
    if not isinstance(items, list):
        return items  # kept as is: validation reports it
    return [{k: item[k] for k in RESULT_KEYS if k in item} if isinstance(item, dict) else item for item in items]


def normalise_task(task: dict, annotator_name: Callable[[int | None], str]) -> dict:
    """A Label Studio export task in the snapshot's shape; `annotator_name` maps a user id to a pseudonym."""
    annotations = []
    for annotation in task.get("annotations") or []:
        if not isinstance(annotation, dict):
            annotation = {"result": annotation}  # kept: validation reports it
        user = _user_id(annotation.get("completed_by"))
        annotations.append(
            {
                "id": annotation.get("id"),
                "annotator": annotator_name(user),
                "result": _result(annotation.get("result", [])),
                "was_cancelled": bool(annotation.get("was_cancelled", False)),
                "ground_truth": bool(annotation.get("ground_truth", False)),
                "lead_time": annotation.get("lead_time"),
            }
        )
    predictions = [
        {"model_version": p.get("model_version") or "", "score": p.get("score"), "result": _result(p.get("result", []))}
        for p in task.get("predictions") or []
        if isinstance(p, dict)
    ]
    return {
        "task_id": task.get("id"),
        "data": task.get("data", {}),
        "annotations": sorted(annotations, key=lambda a: (a["id"] is None, a["id"] or 0)),
        "predictions": sorted(predictions, key=lambda p: p["model_version"]),
    }


def sort_key(task: dict):
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    return (str(data.get("sentence_id", "")), task.get("task_id") or 0)


def sort_key_bytes(task: dict) -> bytes:
    """`sort_key`'s sentence id as UTF-8, whose byte order is the code point order Python sorts by."""
    return sort_key(task)[0].encode("utf-8", "surrogatepass")


def task_counts(task: dict) -> tuple[int, int, int]:
    """(non-cancelled annotations, cancelled annotations, predictions) of a snapshot task."""
    annotations = task.get("annotations") or []
    cancelled = sum(1 for a in annotations if isinstance(a, dict) and a.get("was_cancelled"))
    return len(annotations) - cancelled, cancelled, len(task.get("predictions") or [])


class TaskStore:
    """Snapshot tasks in a temporary SQLite file, keyed by task id and read back in snapshot order.

    What lets a pull of any size hold one task at a time: tasks go in as they are parsed, the
    snapshot comes out sorted by (sentence id, task id) from the file. A task id added twice keeps
    the last one, like a dict.
    """

    def __init__(self, path: Path) -> None:
        self.duplicates: list[int] = []  # task ids added more than once (a pull reports them)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # private before SQLite opens it: it holds tasks
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -4000;"
            "CREATE TABLE tasks (task_id INTEGER PRIMARY KEY, skey BLOB NOT NULL, line BLOB NOT NULL,"
            " a INTEGER NOT NULL, c INTEGER NOT NULL, p INTEGER NOT NULL);"
            "BEGIN;"
        )
        self._pending: list[tuple] = []
        self._indexed = False

    def add(self, task: dict) -> None:
        self._pending.append((task["task_id"], sort_key_bytes(task), dumps_line(task), *task_counts(task)))
        if len(self._pending) >= 1000:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?)", self._pending)
            self._pending.clear()

    def __len__(self) -> int:
        self._flush()
        return self._db.execute("SELECT count(*) FROM tasks").fetchone()[0]

    def get(self, task_id) -> dict | None:
        import orjson

        self._flush()
        row = self._db.execute("SELECT line FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def ids(self) -> Iterator[int]:
        """Task ids in ascending order."""
        self._flush()
        for (task_id,) in self._db.execute("SELECT task_id FROM tasks ORDER BY task_id"):
            yield task_id

    def rows(self) -> Iterator[tuple[bytes, int, bytes, tuple[int, int, int]]]:
        """(sort key, task id, JSON line, counts) in snapshot order."""
        self._flush()
        if not self._indexed:
            self._db.execute("CREATE INDEX snapshot_order ON tasks (skey, task_id)")
            self._indexed = True
        for skey, task_id, line, a, c, p in self._db.execute(
            "SELECT skey, task_id, line, a, c, p FROM tasks ORDER BY skey, task_id"
        ):
            yield skey, task_id, line, (a, c, p)

    def close(self) -> None:
        self._db.close()


def write_snapshot_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Write JSON lines already in snapshot order, atomically; returns the number written."""
    count = 0
    with atomic_write(path) as handle:
        for line in lines:
            handle.write(line)
            count += 1
    return count


def write_snapshot(path: Path, tasks: Iterable[dict]) -> int:
    """Write tasks sorted by sentence id, atomically (a failed write leaves the old snapshot)."""
    return write_jsonl(path, sorted(tasks, key=sort_key))


def read_snapshot(path: Path) -> Iterator[dict]:
    return read_jsonl(path)
