"""Pulling annotated tasks from Label Studio into the snapshot under annotations/.

A full pull exports every task and keeps the annotated ones. An incremental pull (`--since-last`)
must give, byte for byte, what a full pull would give at the same moment, without exporting every
task:

1. it exports only the tasks updated since the previous pull into the same file (Label Studio
   bumps a task's `updated_at` when its data, an annotation or a prediction is saved or deleted
   one at a time, and when the Data Manager deletes annotations in bulk), and merges them: a
   changed task replaces the old one, or leaves the snapshot when it has no annotation any more;
2. what can change a task without bumping it is a deletion (a whole task, or predictions and
   annotations deleted in bulk), and a deletion lowers a count: so the merged snapshot's counts
   (tasks, annotations, cancelled annotations, predictions) are compared with the server's for the
   same population (tasks with any annotation), a few cheap requests;
3. only when a count differs, the population is listed with each task's counts (no export), and the
   tasks that differ are dropped or exported again by id.

Its state (`.builder/pull-state.json`) is kept per server (its organization, whatever the URL),
project *and output file*, with the sha256 of the snapshot it wrote: an output changed since (edited,
checked out, written by another pull) or a state that cannot be read makes the pull a full one, and
says why. Annotators' names do not depend on it (see `annotator_names`).
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import json
import os
import re
import shutil
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import orjson

from builder.errors import LabelStudioError
from builder.jsonio import STATE_DIR, atomic_write, sha256_file, state_dir
from builder.labelstudio.client import Connection, calling, check_response, task_pages, unexpected_answer
from builder.labelstudio.project_api import require_project
from builder.labelstudio.server import LABEL_STUDIO_VERSION
from builder.project import Project
from builder.pseudonyms import LEGACY_SCHEME, Pseudonymizer, create_key, is_pseudonym, load_key, scheme_of
from builder.records.snapshot import TaskStore, normalise_task, sort_key_bytes, task_counts

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
CHANGED_VIEW_TITLE = "builder: changed since last pull"
REFETCH_VIEW_TITLE = "builder: tasks to fetch again"
EXPORT_TITLE = "builder pull"
EXPORT_TIMEOUT_S = 600
STATE_FORMAT = 2
# A task saved just before the previous pull's clock reading may be committed after its export
# read the database: look that far back again (re-fetching a task is harmless).
SINCE_MARGIN = timedelta(seconds=10)
REFETCH_LIMIT = 2000  # beyond this many tasks to fetch again, one export of the population is cheaper
EXPORT_PART_TASKS = 20_000  # tasks per export request; Label Studio without a task queue builds it in the request
ANNOTATED = {
    "conjunction": "or",
    "items": [
        {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0},
        {"filter": "filter:tasks:cancelled_annotations", "operator": "greater", "type": "Number", "value": 0},
    ],
}


@dataclass
class PullResult:
    path: Path
    fetched: int
    written: int
    unannotated: int
    incremental: bool
    why_full: str = ""
    removed: int = 0
    reconciled: bool = False
    duplicates: list[int] = field(default_factory=list)  # task ids the export held more than once (merged)


def _state_path(project: Project) -> Path:
    return project.root / STATE_DIR / "pull-state.json"


def _state_key(server: str, project_id: int, output: Path) -> str:
    return f"{server}#{project_id}#{output.resolve()}"


def _load_state(project: Project) -> tuple[dict, str]:
    """The whole state file (`pulls` and `accounts`), and a problem when it cannot be used (then it is empty)."""
    path = _state_path(project)
    empty = {"pulls": {}, "accounts": {}}
    if not path.is_file():
        return empty, ""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return empty, f"{path} is unreadable ({str(exc)[:80]})"
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not isinstance(state.get("pulls"), dict):
        return empty, f"{path} is from another builder version"
    accounts = state.get("accounts")
    return {"pulls": state["pulls"], "accounts": accounts if isinstance(accounts, dict) else {}}, ""


def read_pull_state(project: Project) -> tuple[dict, str]:
    """(pulls by key, problem): an unreadable or foreign state file is an empty one, and says so."""
    state, problem = _load_state(project)
    return state["pulls"], problem


def _accounts_of(state: dict, key_id: str, url: str) -> dict:
    per_key = state["accounts"].get(key_id)
    known = per_key.get(url) if isinstance(per_key, dict) else None
    return known if isinstance(known, dict) else {}


def read_accounts(project: Project, key_id: str, url: str) -> dict[str, str]:
    """The pseudonyms earlier versions recorded in this machine's pull state for a server's URL (user id ->
    pseudonym): read once more, so that they move into the committed registry (registry.py)."""
    known = _accounts_of(_load_state(project)[0], key_id, url)
    return {k: v for k, v in known.items() if isinstance(k, str) and k.isascii() and k.isdigit() and is_pseudonym(v)}


def _write_pull_state(project: Project, key: str, entry: dict) -> None:
    state, _ = _load_state(project)
    state["pulls"][key] = entry
    path = _state_path(project)
    state_dir(project.root)
    with atomic_write(path, "w", private=True) as handle:
        json.dump({"format": STATE_FORMAT, **state}, handle, indent=2, sort_keys=True)


def pseudonymizer_for(project: Project, output: Path, log: Callable[[str], None]) -> Pseudonymizer:
    """The project's pseudonym key; a new one only if nothing was pulled with another key before."""
    key = load_key(project.root)
    if key is None:
        if output.is_file():
            from builder.jsonio import read_jsonl

            tasks = (t for t in read_jsonl(output, on_bad_line=lambda where, detail: None) if isinstance(t, dict))
            names = {
                a.get("annotator")
                for t in tasks
                if isinstance(t.get("annotations"), list)
                for a in t["annotations"]
                if isinstance(a, dict)
            }
            if scheme_of(n for n in names if isinstance(n, str)) not in (None, "sha256-unkeyed/8"):
                from builder.pseudonyms import KEY_VARIABLE, PseudonymKeyError, key_path

                raise PseudonymKeyError(
                    f"{output} was pulled with a pseudonym key, and {key_path(project.root)} is missing: "
                    f"copy it from the maintainer who pulled (README: 'The pseudonym key'), or set {KEY_VARIABLE}; "
                    "a new key would rename every annotator"
                )
        key = create_key(project.root)
        log(
            "made a new pseudonym key in .builder/pseudonym.key "
            "(keep a copy: every maintainer who pulls needs the same key)"
        )
    return Pseudonymizer(key, project.name)


@dataclass
class AccountNames:
    """Label Studio user id -> pseudonym on one server (`server`: its identity, registry.server_identity).

    `unnamed`: the names made from an account's id because neither a recorded name nor an e-mail was
    there (a removed account whose name was never recorded): what a rename is then due to."""

    server: str
    names: dict[int, str]
    pseudonymize: Pseudonymizer
    unnamed: set[str] = field(default_factory=set)

    def __call__(self, user_id) -> str:
        if user_id in self.names:
            return self.names[user_id]
        name = self.pseudonymize(f"user-{user_id}@{self.server}")
        self.unnamed.add(name)
        return name


def annotator_names(connection: Connection, project: Project, pseudonymize: Pseudonymizer) -> AccountNames:
    """Every account's pseudonym (ids and e-mails never leave builder's memory).

    An account keeps the name it was first given (recorded in the committed registry, `annotations/
    label-studio.json`, per server and key), so a changed e-mail never renames anyone; Label Studio
    sets the e-mail of every account removed from the organization to "Deleted", which must not merge
    those people into one. A new account is named from its e-mail, so the same person gets the same
    name on any server; an account without a usable e-mail is named from its id on this server (the
    server's identity, not its URL).
    """
    from builder.labelstudio.registry import known_names, server_identity

    server = server_identity(connection)
    doing = "listing users"
    with calling(connection, doing):
        users = list(connection.client().users.list())
    if not all(type(getattr(user, "id", None)) is int for user in users):
        raise unexpected_answer(connection, doing, "users with integer ids")
    legacy = read_accounts(project, pseudonymize.key_id, connection.url)
    known = {int(user_id): name for user_id, name in legacy.items()}
    known.update(known_names(project, server, pseudonymize, [user.id for user in users]))
    named = AccountNames(server, {}, pseudonymize)
    for user in users:
        email = getattr(user, "email", None)
        if user.id in known:
            named.names[user.id] = known[user.id]
        elif isinstance(email, str) and _EMAIL.match(email.strip()):
            named.names[user.id] = pseudonymize(email)
        else:
            named.names[user.id] = named(user.id)
    return named


def remember_names(project: Project, named: AccountNames, user_ids=None) -> None:
    """Record the names of these accounts (all listed ones by default) in the committed registry."""
    from builder.labelstudio.registry import remember_names as record

    chosen = named.names if user_ids is None else {u: named.names[u] for u in user_ids if u in named.names}
    record(project, named.server, named.pseudonymize, chosen)


def server_time(connection: Connection) -> datetime | None:
    """Label Studio's clock (its HTTP Date header), so that no local clock skew enters `since`."""
    with calling(connection, "reading the server's clock"):
        response = connection.http().request("health", method="GET")
    try:
        return parsedate_to_datetime(response.headers["date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _export_file(connection: Connection, project_id: int, filename: str) -> Path | None:
    """The local server's file of an export downloaded under `filename` (None for a remote server)."""
    if connection.data_dir is None or not filename or "/" in filename or filename.startswith("."):
        return None
    return Path(connection.data_dir) / "media" / "export" / str(project_id) / filename


def _file_name(connection: Connection, project_id: int, export_id: int) -> str:
    """The name Label Studio stored an export under (one byte of it is downloaded to read the header)."""
    with calling(connection, "finding an unfinished pull's export"):
        response = connection.http().request(
            f"api/projects/{project_id}/exports/{export_id}/download",
            method="GET",
            params={"exportType": "JSON"},
            headers={"Range": "bytes=0-0"},
        )
    return response.headers.get("filename", "") if response.status_code < 300 else ""


def _delete_export(connection: Connection, project_id: int, export_id: int, filename: str = "") -> None:
    """Delete a builder export and, on the local server, its file (Label Studio 1.23 keeps the file)."""
    with calling(connection, "removing the finished export"):
        connection.client().projects.exports.delete(project_id, export_id)
    path = _export_file(connection, project_id, filename)
    if path is not None and path.is_file():
        path.unlink()


STALE_AFTER = timedelta(hours=1)  # an export this old titled "builder pull" belongs to no running pull


def remove_stale_exports(connection: Connection, project_id: int, now: datetime | None) -> int:
    """Exports builder made but did not remove (a killed pull); returns how many went.

    Only those older than STALE_AFTER: a younger one may belong to a pull running elsewhere.
    """
    if now is None:
        return 0
    client = connection.client()
    with calling(connection, "listing exports"):
        exports = list(client.projects.exports.list(project_id))
    stale = [
        e
        for e in exports
        if getattr(e, "title", None) == EXPORT_TITLE
        and isinstance(getattr(e, "created_at", None), datetime)
        and now - e.created_at.astimezone(UTC) > STALE_AFTER
    ]
    for export in stale:
        filename = (
            _file_name(connection, project_id, export.id)
            if connection.data_dir and export.status == "completed"
            else ""
        )
        _delete_export(connection, project_id, export.id, filename)
    return len(stale)


def export_to_file(connection: Connection, project_id: int, destination: Path, view_id: int | None = None) -> None:
    """A snapshot export (with full predictions) of the project, or of a view's tasks, streamed into
    `destination`; the export is removed from Label Studio afterwards."""
    client = connection.client()
    options = {"view": view_id} if view_id is not None else None
    with calling(connection, "creating the export"):
        # Label Studio without a task queue builds the export inside this request: give it time.
        export = client.projects.exports.create(
            project_id,
            title=EXPORT_TITLE,
            serialization_options={"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": True}},
            **({"task_filter_options": options} if options else {}),
            request_options={"timeout_in_seconds": EXPORT_TIMEOUT_S},
        )
    filename = ""
    try:
        deadline = time.monotonic() + EXPORT_TIMEOUT_S
        with calling(connection, "waiting for the export"):
            while (status := client.projects.exports.get(project_id, export.id).status) not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise LabelStudioError(f"the export did not finish within {EXPORT_TIMEOUT_S} s; retry later")
                time.sleep(0.2)
        if status == "failed":
            raise LabelStudioError(
                f"Label Studio at {connection.url} could not build the export; see its log, then retry"
            )
        doing = "downloading the export"
        with calling(connection, doing):
            with connection.http().stream(
                f"api/projects/{project_id}/exports/{export.id}/download",
                method="GET",
                params={"exportType": "JSON"},
                request_options={"timeout_in_seconds": EXPORT_TIMEOUT_S},
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    check_response(connection, response, doing)
                filename = response.headers.get("filename", "")
                with open(destination, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
    finally:
        _delete_export(connection, project_id, export.id, filename)


def read_export(connection: Connection, path: Path) -> Iterator[dict]:
    """Stream the tasks of a downloaded JSON export (a list of tasks, each with an integer id)."""
    import ijson

    doing = "reading the export"
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
        if not head.startswith(b"["):
            raise unexpected_answer(connection, doing, "a list of tasks, each with an integer id")
        handle.seek(0)
        try:
            for task in ijson.items(handle, "item", use_float=True):
                if not isinstance(task, dict) or type(task.get("id")) is not int:
                    raise unexpected_answer(connection, doing, "a list of tasks, each with an integer id")
                _check_annotation_ids(connection, task)
                yield task
        except ijson.JSONError as exc:
            raise LabelStudioError(
                f"the export from {connection.url} is not valid JSON ({str(exc)[:120]}); retry"
            ) from None


def _check_annotation_ids(connection: Connection, task: dict) -> None:
    """An annotation's id is what the snapshot sorts and merges by: one that is not an integer is a one-line
    error naming the task and the id (no snapshot is written), never a traceback further on."""
    annotations = task.get("annotations")
    for annotation in annotations if isinstance(annotations, list) else []:
        if isinstance(annotation, dict) and annotation.get("id") is not None and type(annotation["id"]) is not int:
            raise LabelStudioError(
                f"the export from {connection.url} gives task {task['id']} an annotation whose id is "
                f"{str(annotation['id'])[:40]!r}, not an integer (field annotations[].id); no snapshot was written: "
                f"is it Label Studio {LABEL_STUDIO_VERSION}? retry, and see the server's log if it persists"
            )


def export_tasks(connection: Connection, project_id: int, view_id: int | None = None) -> list[dict]:
    """A snapshot export of the project (or a view), as a list: for small projects; pulls stream."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="builder-export-") as folder:
        path = Path(folder) / "export.json"
        export_to_file(connection, project_id, path, view_id)
        return list(read_export(connection, path))


def _id_range(filters: dict | None, low: int | None, high: int | None) -> dict:
    """`filters` (None or an "and" of items) restricted to task ids in [low, high)."""
    items = list((filters or {}).get("items", []))
    if low is not None:
        items.append({"filter": "filter:tasks:id", "operator": "greater_or_equal", "type": "Number", "value": low})
    if high is not None:
        items.append({"filter": "filter:tasks:id", "operator": "less", "type": "Number", "value": high})
    return {"conjunction": "and", "items": items}


def _task_at(connection: Connection, project_id: int, filters: dict, offset: int) -> int | None:
    """The id of the task at `offset` (0-based) in id order among those matching `filters`."""
    doing = "splitting the export into parts"
    with calling(connection, doing):
        response = connection.http().request(
            "api/tasks/",
            method="GET",
            params={
                "project": project_id,
                "page": offset + 1,
                "page_size": 1,
                "fields": "task_only",
                "include": "id",
                "query": json.dumps({"filters": filters, "ordering": ["tasks:id"]}),
            },
        )
    if response.status_code == 404:
        return None
    body = check_response(connection, response, doing)
    tasks = body.get("tasks") if isinstance(body, dict) else None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and type(t.get("id")) is int for t in tasks):
        raise unexpected_answer(connection, doing, "tasks with ids")
    return tasks[0]["id"] if tasks else None


def stream_export(
    connection: Connection,
    project_id: int,
    work: Path,
    filters: dict | None = None,
    selected: list[int] | None = None,
    title: str = CHANGED_VIEW_TITLE,
    part_size: int | None = None,
) -> Iterator[dict]:
    """The tasks of the project (or those matching an "and" of `filters`, or the `selected` ids), streamed.

    More than `part_size` tasks (default EXPORT_PART_TASKS) are exported in parts, each a range of
    task ids bounded by the ids found at every `part_size`-th position: no part is bigger than what
    Label Studio exports comfortably in one request, and a task added meanwhile still falls in a part.
    """
    part_size = part_size or EXPORT_PART_TASKS
    path = work / "export.json"
    if selected is not None:
        with temporary_view(connection, project_id, title, selected=selected) as view_id:
            export_to_file(connection, project_id, path, view_id)
        yield from read_export(connection, path)
        return
    everything = _id_range(filters, None, None)
    bounds = []
    if _count(connection, project_id, everything)[0] > part_size:
        while (bound := _task_at(connection, project_id, everything, part_size * (len(bounds) + 1))) is not None:
            bounds.append(bound)
    if not bounds:
        if filters is None:
            export_to_file(connection, project_id, path)
        else:
            with temporary_view(connection, project_id, title, filters=filters) as view_id:
                export_to_file(connection, project_id, path, view_id)
        yield from read_export(connection, path)
        return
    edges = [None, *bounds, None]
    for low, high in zip(edges, edges[1:], strict=False):
        with temporary_view(connection, project_id, title, filters=_id_range(filters, low, high)) as view_id:
            export_to_file(connection, project_id, path, view_id)
        yield from read_export(connection, path)


@contextlib.contextmanager
def temporary_view(
    connection: Connection, project_id: int, title: str, filters: dict | None = None, selected: list[int] | None = None
):
    """A Data Manager view of this pull's own (filtered or selected tasks), deleted when the block ends."""
    doing = "preparing the tasks to fetch"
    body: dict = {"project": project_id, "data": {"title": title, **({"filters": filters} if filters else {})}}
    if selected is not None:
        body["selected_items"] = {"all": False, "included": sorted(selected)}
    with calling(connection, doing):
        response = connection.http().request("api/dm/views/", method="POST", json=body)
    created = check_response(connection, response, doing)
    if not isinstance(created, dict) or type(created.get("id")) is not int:
        raise unexpected_answer(connection, doing, "the new view")
    try:
        yield created["id"]
    finally:
        with calling(connection, "removing a view builder made"):
            connection.client().views.delete(str(created["id"]))


def _count(connection: Connection, project_id: int, filters: dict) -> tuple[int, int, int]:
    """(tasks, non-cancelled annotations, predictions) of the tasks matching `filters`."""
    doing = "counting annotated tasks"
    with calling(connection, doing):
        response = connection.http().request(
            "api/tasks/",
            method="GET",
            params={
                "project": project_id,
                "page_size": 1,
                "fields": "task_only",
                "include": "id",
                "query": json.dumps({"filters": filters}),
            },
        )
    body = check_response(connection, response, doing)
    try:
        return int(body["total"]), int(body["total_annotations"]), int(body["total_predictions"])
    except (KeyError, TypeError, ValueError):
        raise unexpected_answer(connection, doing, "task counts") from None


def _with_cancelled_at_least(k: int) -> dict:
    item = {"filter": "filter:tasks:cancelled_annotations", "operator": "greater", "type": "Number", "value": k - 1}
    return {"conjunction": "and", "items": [item]}


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


def counts_agree(connection: Connection, project_id: int, tasks: Iterable[dict] | Counts) -> bool:
    """True when the snapshot's counts equal the server's for the tasks that have annotations."""
    if not isinstance(tasks, Counts):
        counted = Counts()
        for task in tasks:
            counted.add(task_counts(task))
        tasks = counted
    if _count(connection, project_id, ANNOTATED) != (tasks.tasks, tasks.annotations, tasks.predictions):
        return False
    highest = max(tasks.cancelled, default=0)
    for k in range(1, highest + 2):  # tasks with at least k cancelled annotations, up to one past the highest
        expected = sum(n for c, n in tasks.cancelled.items() if c >= k)
        if _count(connection, project_id, _with_cancelled_at_least(k))[0] != expected:
            return False
    return True


def annotated_pages(connection: Connection, project_id: int) -> Iterator[list[tuple[int, int, int, int]]]:
    """(task id, annotations, cancelled annotations, predictions) of every task with an annotation, a page at a time."""
    doing = "listing annotated tasks"
    params = {
        "fields": "task_only",
        "include": "id,total_annotations,cancelled_annotations,total_predictions",
        "query": json.dumps({"filters": ANNOTATED, "ordering": ["tasks:id"]}),
    }
    for tasks in task_pages(connection, project_id, params, doing):
        try:
            yield [
                (
                    int(task["id"]),
                    int(task["total_annotations"]),
                    int(task["cancelled_annotations"]),
                    int(task["total_predictions"]),
                )
                for task in tasks
            ]
        except (KeyError, TypeError, ValueError):
            raise unexpected_answer(connection, doing, "tasks with their counts") from None


class _SeenIds:
    """Task ids seen in one export: a bitmap (ids are sequential positive integers), a few MB for millions."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.others: set[int] = set()

    def add(self, task_id: int) -> bool:
        """Record `task_id`; True when it was seen before."""
        if task_id < 0 or task_id >= 1 << 27:  # beyond 16 MB of bitmap: a set
            seen = task_id in self.others
            self.others.add(task_id)
            return seen
        byte, bit = divmod(task_id, 8)
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
        seen = bool(self.bits[byte] & (1 << bit))
        self.bits[byte] |= 1 << bit
        return seen


def _merge_copies(first: dict, again: dict) -> dict:
    """One snapshot task from two copies of it in an export: every annotation (by id) and prediction of both."""
    annotations = {(a["id"] if a["id"] is not None else ("none", i)): a for i, a in enumerate(first["annotations"])}
    for i, annotation in enumerate(again["annotations"]):
        annotations.setdefault(annotation["id"] if annotation["id"] is not None else ("again", i), annotation)
    predictions = list(first["predictions"])
    predictions += [p for p in again["predictions"] if p not in predictions]
    return {
        **first,
        "annotations": sorted(annotations.values(), key=lambda a: (a["id"] is None, a["id"] or 0)),
        "predictions": sorted(predictions, key=lambda p: p["model_version"]),
    }


def _store_annotated(tasks: Iterable[dict], store: TaskStore, name: AccountNames, seen: array | None = None) -> int:
    """Put the annotated tasks into `store`, normalised; returns how many tasks were read (ids into `seen`).

    A task id the export holds twice is read once: its copies' annotations are merged, never one copy
    replacing the other, and its id goes into `store.duplicates` for the pull's report."""
    read = 0
    ids = _SeenIds()
    for task in tasks:
        if ids.add(task["id"]):
            store.duplicates.append(task["id"])
            if task.get("annotations"):
                again = normalise_task(task, name)
                first = store.get(task["id"])
                store.add(again if first is None else _merge_copies(first, again))
            continue
        read += 1
        if seen is not None:
            seen.append(task["id"])
        if task.get("annotations"):
            store.add(normalise_task(task, name))
    return read


def pull(
    connection: Connection,
    project: Project,
    output: Path | None = None,
    since_last: bool = False,
    log: Callable[[str], None] = lambda message: None,
    rename_annotators: bool = False,
    part_size: int | None = None,
) -> PullResult:
    """Fetch annotated tasks and write the snapshot atomically; `since_last` fetches only what changed.

    Streams: exports are downloaded to private temporary files under .builder/ and parsed task by
    task, the snapshot is sorted on disk, so memory does not grow with the project. More than
    `part_size` tasks (default EXPORT_PART_TASKS) are exported in parts.
    Refuses to rename the annotators of an existing output (another pseudonym key) unless
    `rename_annotators`."""
    from builder.labelstudio.registry import server_identity
    from builder.locks import exclusive, lock_path, snapshot_lock

    output = Path(output or project.snapshot_path)
    project_id = require_project(connection, project)
    # One pull of a project at a time: the exports and views a pull makes are its own until it ends.
    waiting = lambda pid: log(f"waiting for another pull of '{project.project_title}' on {connection.url} (pid {pid})")  # noqa: E731
    # And no release reads the output while this pull reads and replaces it (nor pulls from another project).
    releasing = lambda pid: log(f"waiting for a builder release or pull that is reading {output} (pid {pid})")  # noqa: E731
    with (
        exclusive(lock_path("pull", server_identity(connection), str(project_id)), on_wait=waiting),
        snapshot_lock(output, on_wait=releasing),
    ):
        return _pull_locked(connection, project, project_id, output, since_last, log, rename_annotators, part_size)


class _Work:
    """A private temporary folder under .builder/ for one pull, removed when the pull ends.

    Named with the pull's pid, so that a later pull removes the folder of one that was killed."""

    def __init__(self, root: Path) -> None:
        import tempfile

        base = state_dir(root)
        for stale in base.glob("pull-*-*"):
            pid = stale.name.split("-")[1]
            if stale.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"pull-{os.getpid()}-", dir=base))
        self._stores: list = []

    def store(self, name: str) -> TaskStore:
        store = TaskStore(self.path / f"{name}.sqlite3")
        self._stores.append(store)
        return store

    def stores(self) -> list[TaskStore]:
        return list(self._stores)

    def close(self) -> None:
        for store in self._stores:
            store.close()
        shutil.rmtree(self.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _pull_locked(connection, project, project_id, output, since_last, log, rename_annotators, part_size):
    pseudonymize = pseudonymizer_for(project, output, log)
    now = server_time(connection)
    remove_stale_exports(connection, project_id, now)
    name = annotator_names(connection, project, pseudonymize)
    key = _state_key(name.server, project_id, output)
    why_full = ""
    previous = None
    if since_last:
        pulls, problem = read_pull_state(project)
        previous = pulls.get(key)
        why_full = problem or _why_not_incremental(previous, output, pseudonymize, now)
        if why_full:
            previous = None
    renames = _RenameCheck(name.unnamed) if output.is_file() and not rename_annotators else None
    work = _Work(project.root)
    try:
        if previous is None:
            store = work.store("tasks")
            fetched = _store_annotated(
                stream_export(connection, project_id, work.path, part_size=part_size), store, name
            )
            if renames is not None:
                renames.against(output, store)
            result = PullResult(output, fetched, 0, fetched - len(store), False, why_full)
            counts = Counts()
            written = _Written(_counting(store.rows(), counts), counts)
        else:
            result, written = _incremental(connection, project_id, output, previous, work, name, renames, part_size)
        if renames is not None:
            renames.finish(output, log)
        digest = written.write(output)
        result.written = written.lines
        result.duplicates = sorted({task_id for store in work.stores() for task_id in store.duplicates})
    finally:
        work.close()
    entry = {
        "since": _iso(now - SINCE_MARGIN) if now else _previous_since(previous),
        "snapshot_sha256": digest,
        "key_id": pseudonymize.key_id,
    }
    if written.counts is not None:
        entry["counts"] = written.counts.to_state()
    _write_pull_state(project, key, entry)
    remember_names(project, name)  # committed: a second maintainer with the key gives the same names
    return result


def _counting(rows: Iterable[tuple], counts: Counts) -> Iterator[bytes]:
    """The lines of (key, task id, line, counts) rows, adding each row's counts to `counts`."""
    for row in rows:
        counts.add(row[3])
        yield row[2]


class _Written:
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


class _RenameCheck:
    """Refuses a pull that would give an annotation already in the output another keyed pseudonym.

    The same annotation (task id, annotation id, sentence and labels) under another name means another
    pseudonym key (every annotator would be renamed), unless the new name was made from the account's id
    (`unnamed`): then Label Studio no longer shows the account's e-mail (removed from the organization)
    and its name is not in the committed registry, and the message says that instead. Names of the
    unkeyed scheme of release 1.0.0 move to the keyed scheme, as intended, and that is said.
    """

    def __init__(self, unnamed: set[str] | None = None) -> None:
        self.renamed, self.example, self.legacy = 0, None, 0
        self.unnamed = unnamed if unnamed is not None else set()
        self.by_key = 0  # renamed annotations whose new name came from an e-mail (or a recorded name)

    def compare(self, old, new: dict | None) -> None:
        if not isinstance(old, dict) or not isinstance(old.get("annotations"), list):
            return
        if (
            new is None
            or not isinstance(old.get("data"), dict)
            or old["data"].get("sentence_id") != new["data"].get("sentence_id")
        ):
            return
        now_named = {a["id"]: a for a in new["annotations"]}
        for annotation in old["annotations"]:
            if not isinstance(annotation, dict) or annotation.get("id") not in now_named:
                continue
            same = now_named[annotation["id"]]
            if same["result"] != annotation.get("result") or same["annotator"] == annotation.get("annotator"):
                continue
            if scheme_of([str(annotation.get("annotator"))]) == LEGACY_SCHEME:
                self.legacy += 1
                continue
            self.renamed += 1
            self.by_key += same["annotator"] not in self.unnamed
            self.example = self.example or (annotation.get("annotator"), same["annotator"])

    def against(self, output: Path, store: TaskStore) -> None:
        """Compare every task of `output` (any content) with the task of the same id in `store`."""
        from builder.jsonio import read_jsonl

        for old in read_jsonl(output, on_bad_line=lambda where, detail: None):
            if isinstance(old, dict) and isinstance(old.get("annotations"), list):
                task_id = old.get("task_id")
                if type(task_id) is int:
                    self.compare(old, store.get(task_id))

    def finish(self, output: Path, log: Callable[[str], None]) -> None:
        from builder.pseudonyms import KEY_VARIABLE, PseudonymKeyError

        if self.legacy:
            log(
                f"{self.legacy} annotations in {output} move from the unkeyed pseudonyms of release 1.0.0 to keyed ones"
            )
        if self.renamed and not self.by_key:
            from builder.labelstudio.registry import REGISTRY_NAME

            raise PseudonymKeyError(
                f"pulling would rename the annotators of {self.renamed} annotations in {output} "
                f"(e.g. {self.example[0]} -> {self.example[1]}): their accounts were removed from the organization "
                f"(Label Studio hides their e-mail) and their names are not in annotations/{REGISTRY_NAME}; "
                "restore that file from git (it keeps every account's name), or pass --rename-annotators "
                "to rename them on purpose"
            )
        if self.renamed:
            raise PseudonymKeyError(
                f"pulling would rename the annotators of {self.renamed} annotations in {output} "
                f"(e.g. {self.example[0]} -> {self.example[1]}): "
                "this is not the pseudonym key they were pulled with; use that key "
                f"(.builder/pseudonym.key or {KEY_VARIABLE}), or pass --rename-annotators to rename them on purpose"
            )


def _previous_since(previous: dict | None) -> str:
    """Fallback when the server sends no Date header: the previous `since` (never later than now)."""
    return (previous or {}).get("since") or "1970-01-01T00:00:00.000000Z"


def _why_not_incremental(previous: dict | None, output: Path, pseudonymize: Pseudonymizer, now: datetime | None) -> str:
    if previous is None:
        return f"no earlier pull into {output} from this server and project"
    if not output.is_file():
        return f"{output} does not exist"
    if not isinstance(previous, dict) or not all(
        isinstance(previous.get(k), str) for k in ("since", "snapshot_sha256", "key_id")
    ):
        return "the pull state is incomplete"
    try:
        since = datetime.strptime(previous["since"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return "the pull state's time is unreadable"
    if now is not None and since > now:
        return "the pull state's time is later than the server's clock"
    if sha256_file(output) != previous["snapshot_sha256"]:
        return f"{output} changed since the last pull into it"
    if previous["key_id"] != pseudonymize.key_id:
        return "the pseudonym key changed"
    return ""


def _snapshot_rows(path: Path) -> Iterator[tuple]:
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


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def _merge(
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


def _member(ids: array) -> Callable[[int], bool]:
    """Membership in a sorted array of ids (8 bytes an id, no Python object each)."""

    def contains(task_id: int) -> bool:
        at = bisect.bisect_left(ids, task_id)
        return at < len(ids) and ids[at] == task_id

    return contains


def _incremental(
    connection, project_id, output, previous, work, name, renames, part_size
) -> tuple[PullResult, _Written]:
    filters = {
        "conjunction": "and",
        "items": [
            {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": previous["since"]}
        ],
    }
    fresh, changed = work.store("changed"), array("q")
    fetched = _store_annotated(
        stream_export(connection, project_id, work.path, filters=filters, part_size=part_size), fresh, name, changed
    )
    changed = array("q", sorted(changed))
    result = PullResult(output, fetched, 0, fetched - len(fresh), True)
    in_place = _InPlaceMerge.prepare(output, fresh, changed, Counts.from_state(previous.get("counts")), renames)
    if in_place is not None:
        result.removed = in_place.removed
        if counts_agree(connection, project_id, in_place.counts):
            return result, in_place.written()
    merged, replaced = work.path / "merged.jsonl", array("q")
    compare = renames if in_place is None else None  # the in-place merge compared these tasks already
    counts, result.removed = _merge(_snapshot_rows(output), fresh, _member(changed), merged, compare, replaced)
    if in_place is None and counts_agree(connection, project_id, counts):
        return result, _Written(_lines(merged), counts)
    # A deletion that did not touch `updated_at`: compare task by task, fetch again what differs.
    result.reconciled = True
    return _reconcile(connection, project_id, output, work, name, renames, part_size, result, merged, changed, replaced)


_TASK_ID_TAIL = re.compile(rb',"task_id":(\d+)\}\n\Z')  # a snapshot line's last key (keys are sorted)
IN_PLACE_SHARE = 0.01  # changed tasks per snapshot task beyond which one parse of every line is cheaper


class _InPlaceMerge:
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
        is_changed, drops, lines, removed, replacing = _member(changed), [], 0, 0, []
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

    def written(self) -> _Written:
        return _Written(self._chunks(), self.counts, self.lines)

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


def _reconcile(connection, project_id, output, work, name, renames, part_size, result, merged, changed, replaced):
    import sqlite3

    path = work.path / "reconcile.sqlite3"
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # private before SQLite opens it
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE server (task_id INTEGER PRIMARY KEY, a INTEGER, c INTEGER, p INTEGER);"
            "CREATE TABLE local (task_id INTEGER PRIMARY KEY, a INTEGER, c INTEGER, p INTEGER);"
        )
        for page in annotated_pages(connection, project_id):
            db.executemany("INSERT OR REPLACE INTO server VALUES (?, ?, ?, ?)", page)
        rows = ((row[1], *row[3]) for row in _snapshot_rows(merged))
        db.executemany("INSERT OR REPLACE INTO local VALUES (?, ?, ?, ?)", rows)
        differing = [
            task_id
            for (task_id,) in db.execute(
                "SELECT s.task_id FROM server s LEFT JOIN local l ON l.task_id = s.task_id"
                " WHERE l.task_id IS NULL OR l.a != s.a OR l.c != s.c OR l.p != s.p ORDER BY s.task_id"
                f" LIMIT {REFETCH_LIMIT + 1}"
            )
        ]
        if len(differing) > REFETCH_LIMIT:  # one export of everything is cheaper than a huge selection
            store = work.store("everything")
            result.fetched += _store_annotated(
                stream_export(connection, project_id, work.path, part_size=part_size), store, name
            )
            if renames is not None:
                renames.against(output, store)
            result.removed = sum(1 for row in _snapshot_rows(output) if store.get(row[1]) is None)
            counts = Counts()
            return result, _Written(_counting(store.rows(), counts), counts)
        gone = array("q", (t for (t,) in db.execute("SELECT task_id FROM local EXCEPT SELECT task_id FROM server")))
    finally:
        db.close()
    refetched = None
    if differing:
        refetched = work.store("refetched")
        result.fetched += _store_annotated(
            stream_export(connection, project_id, work.path, selected=differing, title=REFETCH_VIEW_TITLE),
            refetched,
            name,
        )
    leave_out = array("q", sorted({*gone, *differing}))
    was_old, is_changed = _member(array("q", sorted(replaced))), _member(changed)
    removed_before = result.removed
    dropped_old = 0

    def rows() -> Iterator[tuple]:
        nonlocal dropped_old
        out_of = _member(leave_out)
        for row in _snapshot_rows(merged):
            if out_of(row[1]) and (refetched is None or refetched.get(row[1]) is None):
                if not is_changed(row[1]) or was_old(row[1]):
                    dropped_old += 1  # a task of the previous snapshot leaves it
            yield row

    final = work.path / "final.jsonl"
    counts, _ = _merge(rows(), refetched, _member(leave_out), final, renames)
    result.removed = removed_before + dropped_old
    return result, _Written(_lines(final), counts)
