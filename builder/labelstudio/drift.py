"""What annotators label against must not drift: the checks `builder pull` makes before it writes anything.

In Label Studio Community every account may change the project's labeling config and settings, a task's
data, and any other account's annotation. Agreement, gold accuracy and the dataset all assume none of
that happened, so a pull compares what it reads with what builder itself set:

- the project's settings builder sets (project_api.project_settings: the labeling config, the
  instructions, overlap, skip button, ...) against those builder.toml generates now and those builder
  last pushed (a builder.toml edited but not pushed yet is no drift);
- each task's data against the data builder imported for that sentence (recorded at push, per server and
  project, in `.builder/drift.sqlite3`; a task pushed from another machine, or before this record
  existed, has nothing to compare with and is not checked);
- each annotation whose last editor (`updated_by`) is neither its author (`completed_by`) nor builder's
  own account (the API key's: a maintainer adjudicating, or builder starring ground truth).

Any of these stops the pull in one line naming what changed and, for annotations, by which pseudonym
(Label Studio records no author for settings or task data); `--accept-changes` pulls anyway, says what
it accepted and records it, so the same change is not reported again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import LabelStudioError
from builder.jsonio import refuse_link, state_dir
from builder.labelstudio.client import Connection, calling, check_response, unexpected_answer
from builder.project import Project

RECORD_NAME = "drift.sqlite3"
SHOWN = 3  # changes named in the one line; the rest are counted
_SETTING_NAMES = {"label_config": "the labeling config", "expert_instruction": "the instructions"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    server TEXT NOT NULL, project INTEGER NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (server, project, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_data (
    server TEXT NOT NULL, project INTEGER NOT NULL, sentence_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (server, project, sentence_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accepted_edits (
    server TEXT NOT NULL, project INTEGER NOT NULL, annotation INTEGER NOT NULL, stamp TEXT NOT NULL,
    PRIMARY KEY (server, project, annotation, stamp)
) WITHOUT ROWID;
"""


class DriftError(LabelStudioError):
    """Something annotators label against changed in Label Studio since builder set it."""


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _settings_keys() -> list[str]:
    return [
        "title",
        "label_config",
        "expert_instruction",
        "show_instruction",
        "maximum_annotations",
        "overlap_cohort_percentage",
        "show_skip_button",
        "enable_empty_annotation",
    ]


def _as_stored(value):
    """Label Studio stores the labeling config without its final newline: strings compare stripped."""
    return value.strip() if isinstance(value, str) else value


def settings_digest(settings: dict) -> str:
    compared = {key: _as_stored(settings.get(key)) for key in _settings_keys()}
    return hashlib.sha256(_canonical(compared).encode()).hexdigest()


@contextlib.contextmanager
def _record(root: Path) -> Iterator[sqlite3.Connection]:
    """The private record of what builder set and what a pull accepted (made 0600 before SQLite opens it)."""
    path = state_dir(Path(root)) / RECORD_NAME
    refuse_link(path)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    db = sqlite3.connect(path, timeout=60)
    try:
        db.executescript(_SCHEMA)
        yield db
    finally:
        db.close()


# --- what builder sets (push) ---------------------------------------------------------------------


def remember_settings(root: Path, server: str, project_id: int, settings: dict) -> None:
    """Record the settings a push set on the project (so that builder.toml edited later is no drift)."""
    with _record(root) as db, db:
        db.execute("INSERT OR IGNORE INTO settings VALUES (?, ?, ?)", (server, project_id, settings_digest(settings)))


def remember_tasks(root: Path, server: str, project_id: int, tasks: Iterable[dict]) -> None:
    """Record the data of tasks Label Studio confirmed importing (what a pull compares each task with)."""
    rows = (
        (server, project_id, task["data"]["sentence_id"], _canonical(task["data"]))
        for task in tasks
        if isinstance(task["data"].get("sentence_id"), str)
    )
    with _record(root) as db, db:
        db.executemany("INSERT OR REPLACE INTO task_data VALUES (?, ?, ?, ?)", rows)


# --- what a pull checks ---------------------------------------------------------------------------


@dataclass
class Change:
    what: str  # one phrase: "the labeling config", "task 7's data (sentence s-1: text)", ...
    kind: str  # settings, task data, annotation
    accept: Callable[[sqlite3.Connection], None] = field(repr=False, default=lambda db: None)


_WATCH: ContextVar[DriftWatch | None] = ContextVar("builder_drift_watch", default=None)


def observed(tasks: Iterable[dict]) -> Iterator[dict]:
    """`tasks` as they stream past, each checked by the pull's watch (unchanged when no pull watches)."""
    watch = _WATCH.get()
    if watch is None:
        yield from tasks
        return
    for task in tasks:
        watch.check_task(task)
        yield task


class DriftWatch:
    """The checks of one pull: the settings once, then every task the pull reads (through `observed`)."""

    def __init__(self, connection: Connection, project: Project, project_id: int, server: str, name) -> None:
        self.connection, self.project, self.project_id, self.server = connection, project, project_id, server
        self.name = name  # user id -> pseudonym (annotator_names.AccountNames)
        self.changes: list[Change] = []
        with calling(connection, "identifying the API key's account"):
            self.me = connection.client().users.whoami().id
        with _record(project.root) as db:
            self._settings = {
                row[0] for row in db.execute("SELECT digest FROM settings WHERE server = ? AND project = ?", self._at())
            }
            self._accepted = {
                (row[0], row[1])
                for row in db.execute(
                    "SELECT annotation, stamp FROM accepted_edits WHERE server = ? AND project = ?", self._at()
                )
            }
        self._db_path = state_dir(project.root) / RECORD_NAME
        self._reader: sqlite3.Connection | None = None  # opened by the first task checked, closed on stop

    def _at(self) -> tuple[str, int]:
        return (self.server, self.project_id)

    def start(self) -> Callable[[], None]:
        """Check every task `observed` streams from now on; returns the function that stops it."""
        token = _WATCH.set(self)

        def stop() -> None:
            _WATCH.reset(token)
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        return stop

    def check_settings(self, wanted: dict) -> None:
        """Compare the project's settings with `wanted`, those builder.toml generates (project_api.project_settings)."""
        doing = "reading the project's settings"
        with calling(self.connection, doing):
            response = self.connection.http().request(f"api/projects/{self.project_id}", method="GET")
        body = check_response(self.connection, response, doing)
        if not isinstance(body, dict) or "label_config" not in body:
            raise unexpected_answer(self.connection, doing, "a project with its labeling config")
        now = settings_digest(body)
        if now == settings_digest(wanted) or now in self._settings:
            return
        differing = [key for key in _settings_keys() if _as_stored(body.get(key)) != _as_stored(wanted.get(key))]
        what = ", ".join(_SETTING_NAMES.get(key, f"setting {key}") for key in differing) or "the project's settings"
        self._add(
            Change(
                f"{what} (differs from builder.toml's and from what builder pushed; Label Studio records no author)",
                "settings",
                lambda db: db.execute("INSERT OR IGNORE INTO settings VALUES (?, ?, ?)", (*self._at(), now)),
            )
        )

    def check_task(self, task: dict) -> None:
        task_id = task.get("id")
        if type(task_id) is not int:
            return
        data = task.get("data")
        if isinstance(data, dict) and isinstance(data.get("sentence_id"), str):
            self._check_data(task_id, data)
        for annotation in task.get("annotations") or []:
            if isinstance(annotation, dict):
                self._check_annotation(task_id, annotation)

    def _check_data(self, task_id: int, data: dict) -> None:
        sentence_id = data["sentence_id"]
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self._db_path}?mode=ro", uri=True, timeout=60)
        row = self._reader.execute(
            "SELECT data FROM task_data WHERE server = ? AND project = ? AND sentence_id = ?",
            (*self._at(), sentence_id),
        ).fetchone()
        now = _canonical(data)
        if row is None or row[0] == now:
            return
        pushed = json.loads(row[0])
        fields = sorted(key for key in {*pushed, *data} if pushed.get(key) != data.get(key))
        self._add(
            Change(
                f"task {task_id}'s data (sentence {sentence_id}: {', '.join(fields)}; Label Studio records no author)",
                "task data",
                lambda db: db.execute(
                    "INSERT OR REPLACE INTO task_data VALUES (?, ?, ?, ?)", (*self._at(), sentence_id, now)
                ),
            )
        )

    def _check_annotation(self, task_id: int, annotation: dict) -> None:
        author = annotation.get("completed_by")
        author = author.get("id") if isinstance(author, dict) else author
        editor = annotation.get("updated_by")
        editor = editor.get("id") if isinstance(editor, dict) else editor
        if type(editor) is not int or editor in (author, self.me):
            return
        annotation_id = annotation.get("id")
        stamp = f"{editor}@{annotation.get('updated_at')}"
        if (annotation_id, stamp) in self._accepted:
            return
        by = self.name(author) if type(author) is int else "an unknown account"
        self._add(
            Change(
                f"annotation {annotation_id} on task {task_id} (by {by}) edited by {self.name(editor)}",
                "annotation",
                lambda db: db.execute(
                    "INSERT OR IGNORE INTO accepted_edits VALUES (?, ?, ?, ?)", (*self._at(), annotation_id, stamp)
                ),
            )
        )

    def _add(self, change: Change) -> None:
        """Note a change once (an export may hold a task twice; a reconciling pull reads some tasks again)."""
        if all(change.what != seen.what for seen in self.changes):
            self.changes.append(change)

    def summary(self) -> str:
        shown = "; ".join(change.what for change in self.changes[:SHOWN])
        more = f"; and {len(self.changes) - SHOWN} more" if len(self.changes) > SHOWN else ""
        return f"{shown}{more}"

    def verdict(self, accept: bool) -> None:
        """Refuse, in one line, a pull that found changes, unless `accept`."""
        if self.changes and not accept:
            raise DriftError(
                f"pull refused, nothing written: changed in Label Studio since builder set it: {self.summary()}; "
                "undo it there (`builder push` restores the config and settings), or pull with --accept-changes"
            )

    def record_accepted(self) -> None:
        """Remember what was accepted, so that the next pull does not report the same changes again."""
        if not self.changes:
            return
        with _record(self.project.root) as db, db:
            for change in self.changes:
                change.accept(db)
