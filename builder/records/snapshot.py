"""The annotation snapshot: what `builder pull` writes under annotations/ and a release is built from.

One task per line, sorted by sentence id, keys sorted, no timestamps and no user identities:
annotators appear as stable pseudonyms (builder/pseudonyms.py). Shape (schema/task.schema.json):

    {"task_id": 12, "data": {"sentence_id": ..., "text": ..., ...},
     "annotations": [{"id": 3, "annotator": "annotator-1a2b3c4d", "result": [...],
                      "was_cancelled": false, "ground_truth": false, "lead_time": 4.2}],
     "predictions": [{"model_version": "builder-gazetteer/1+...", "result": [...]}]}

Because a snapshot is sorted and one task a line, an incremental pull merges the tasks that changed into
the old snapshot here, as bytes (`merge_rows`, `InPlaceMerge`): that needs nothing of Label Studio, and
whatever writes or merges snapshots keeps their order and their counts (`Counts`) in one place.
"""

from __future__ import annotations

import bisect
import heapq
import os
import re
import sqlite3
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from builder.errors import LabelStudioError
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


@dataclass
class Counts:
    """A snapshot's counts, as Label Studio counts the annotated population."""

    tasks: int = 0
    annotations: int = 0
    predictions: int = 0
    cancelled: Counter = field(default_factory=Counter)  # cancelled annotations per task -> tasks

    def add(self, counts: tuple[int, int, int]) -> None:
        annotations, cancelled, predictions = counts
        self.tasks += 1
        self.annotations += annotations
        self.predictions += predictions
        if cancelled:
            self.cancelled[cancelled] += 1

    def remove(self, counts: tuple[int, int, int]) -> None:
        annotations, cancelled, predictions = counts
        self.tasks -= 1
        self.annotations -= annotations
        self.predictions -= predictions
        if cancelled:
            self.cancelled[cancelled] -= 1
            if not self.cancelled[cancelled]:
                del self.cancelled[cancelled]

    def to_state(self) -> dict:
        cancelled = {str(k): n for k, n in sorted(self.cancelled.items()) if n}
        return {
            "tasks": self.tasks,
            "annotations": self.annotations,
            "predictions": self.predictions,
            "cancelled": cancelled,
        }

    @classmethod
    def from_state(cls, entry) -> Counts | None:
        """The counts a pull state recorded for its snapshot, or None when absent or malformed."""
        if not isinstance(entry, dict):
            return None
        numbers = [entry.get(k) for k in ("tasks", "annotations", "predictions")]
        cancelled = entry.get("cancelled")
        if not all(type(n) is int and n >= 0 for n in numbers) or not isinstance(cancelled, dict):
            return None
        if not all(k.isascii() and k.isdigit() and type(n) is int and n > 0 for k, n in cancelled.items()):
            return None
        return cls(*numbers, Counter({int(k): n for k, n in cancelled.items()}))


def lines_counted(rows: Iterable[tuple], counts: Counts) -> Iterator[bytes]:
    """The lines of (key, task id, line, counts) rows, adding each row's counts to `counts`."""
    for row in rows:
        counts.add(row[3])
        yield row[2]


class SnapshotChunks:
    """What a pull writes: byte chunks (whole lines, or runs of lines copied from the old snapshot),
    and, when known, the counts of the snapshot they make (kept in the state for the next pull)."""

    def __init__(self, chunks: Iterable[bytes], counts: Counts | None, lines: int | None = None) -> None:
        self.chunks, self.counts, self.lines = chunks, counts, lines

    def write(self, output: Path) -> str:
        """Write the snapshot atomically; returns its sha256 (counts lines when not given)."""
        import hashlib

        digest, lines = hashlib.sha256(), 0
        with atomic_write(output) as handle:
            for chunk in self.chunks:
                handle.write(chunk)
                digest.update(chunk)
                lines += chunk.count(b"\n") if self.lines is None else 0
        if self.lines is None:
            self.lines = lines
        return digest.hexdigest()


def snapshot_rows(path: Path) -> Iterator[tuple]:
    """(sort key, task id, line, counts, task) of each task of a snapshot builder wrote (sorted)."""
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            task = orjson.loads(line)
            yield (
                sort_key_bytes(task),
                task.get("task_id") or 0,
                line if line.endswith(b"\n") else line + b"\n",
                task_counts(task),
                task,
            )


def file_lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def merge_rows(
    base: Iterator[tuple], fresh: TaskStore | None, leave_out, out: Path, renames, replaced=None
) -> tuple[Counts, int]:
    """Write `base` rows (sorted) less those whose id `leave_out` names, merged with `fresh`'s in
    snapshot order, into `out`. A left-out row that `fresh` does not replace is removed: returns
    the counts written and how many were removed. `replaced` collects the ids `fresh` replaced."""
    counts, removed = Counts(), 0

    def kept() -> Iterator[tuple]:
        nonlocal removed
        for row in base:
            if leave_out(row[1]):
                new = fresh.get(row[1]) if fresh is not None else None
                if new is None:
                    removed += 1
                else:
                    if renames is not None:
                        renames.compare(row[4], new)
                    if replaced is not None:
                        replaced.append(row[1])
                continue
            yield row

    streams = [kept()] + ([fresh.rows()] if fresh is not None else [])
    with open(out, "wb") as handle:
        for row in heapq.merge(*streams, key=lambda r: (r[0], r[1])):
            handle.write(row[2])
            counts.add(row[3])
    return counts, removed


def sorted_member(ids: array) -> Callable[[int], bool]:
    """Membership in a sorted array of ids (8 bytes an id, no Python object each)."""

    def contains(task_id: int) -> bool:
        at = bisect.bisect_left(ids, task_id)
        return at < len(ids) and ids[at] == task_id

    return contains


_TASK_ID_TAIL = re.compile(rb',"task_id":(\d+)\}\n\Z')  # a snapshot line's last key (keys are sorted)
IN_PLACE_SHARE = 0.01  # changed tasks per snapshot task beyond which one parse of every line is cheaper


class InPlaceMerge:
    """An incremental pull's merge that parses only the changed lines of the old snapshot.

    Every other line is copied as bytes, in runs: its task id is read from the line's end (builder
    writes keys sorted, `task_id` last), a changed task's new line is placed by a binary search
    of the old snapshot (sorted by sentence id, task id), and the counts the server is asked about
    are the previous pull's (kept in its state, trusted because the snapshot's sha256 matched)
    less the changed tasks' old ones plus their new ones."""

    def __init__(self, output: Path, fresh: TaskStore, drops: list, counts: Counts, lines: int, removed: int) -> None:
        self.output, self.fresh, self.drops, self.counts = output, fresh, drops, counts
        self.lines, self.removed = lines, removed

    @classmethod
    def prepare(cls, output: Path, fresh: TaskStore, changed: array, counts: Counts | None, renames):
        """The merge, or None when the slow one must run (no counts kept, many changes, an odd line)."""
        if counts is None or len(changed) > max(100, IN_PLACE_SHARE * counts.tasks):
            return None
        counts = Counts(counts.tasks, counts.annotations, counts.predictions, Counter(counts.cancelled))
        is_changed, drops, lines, removed, replacing = sorted_member(changed), [], 0, 0, []
        offset = 0
        with open(output, "rb") as handle:
            for line in handle:
                tail = _TASK_ID_TAIL.search(line, max(0, len(line) - 40))
                if tail is None:
                    return None
                task_id = int(tail[1])
                if is_changed(task_id):
                    old = orjson.loads(line)
                    if old.get("task_id") != task_id:
                        return None
                    new = fresh.get(task_id)
                    counts.remove(task_counts(old))
                    if new is None:
                        removed += 1
                    else:
                        replacing.append((old, new))
                    drops.append((offset, len(line)))
                lines += 1
                offset += len(line)
        if counts.tasks != lines - len(drops):
            return None  # the kept counts do not describe this file
        if renames is not None:
            for old, new in replacing:
                renames.compare(old, new)
        for row in fresh.rows():
            counts.add(row[3])
        return cls(output, fresh, drops, counts, lines - len(drops) + len(fresh), removed)

    def written(self) -> SnapshotChunks:
        return SnapshotChunks(self._chunks(), self.counts, self.lines)

    def _chunks(self) -> Iterator[bytes]:
        with open(self.output, "rb") as old:
            size = os.fstat(old.fileno()).st_size
            inserts, low = [], 0
            for key, task_id, line, _ in self.fresh.rows():
                low = _line_at_or_after_key(old, size, (key, task_id), low)
                inserts.append((low, 0, line))
            events = sorted(inserts + [(at, 1, length) for at, length in self.drops], key=lambda e: e[:2])
            position = 0
            for at, kind, what in events:
                yield from _copy(old, position, at)
                if kind == 0:
                    yield what
                    position = at
                else:
                    position = at + what
            yield from _copy(old, position, size)


def _copy(handle, begin: int, end: int, block: int = 1 << 20) -> Iterator[bytes]:
    handle.seek(begin)
    while begin < end:
        chunk = handle.read(min(block, end - begin))
        if not chunk:
            raise LabelStudioError(f"{handle.name} changed during the pull; pull again")
        begin += len(chunk)
        yield chunk


def _line_start(handle, at: int) -> int:
    """The offset of the first line that starts at or after `at`."""
    if at == 0:
        return 0
    handle.seek(at - 1)
    handle.readline()
    return handle.tell()


def _line_at_or_after_key(handle, size: int, key: tuple[bytes, int], low: int) -> int:
    """The offset of the first line at or after `low` whose (sort key, task id) is >= `key`, else `size`."""
    high = size
    while low < high:
        middle = (low + high) // 2
        start = _line_start(handle, middle)
        if start >= size:
            high = middle
            continue
        handle.seek(start)
        task = orjson.loads(handle.readline())
        if (sort_key_bytes(task), task.get("task_id") or 0) >= key:
            high = middle
        else:
            low = middle + 1
    return _line_start(handle, low)
