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

Its state (`.builder/pull-state.json`) is kept per server, project *and output file*, with the
sha256 of the snapshot it wrote: an output changed since (edited, checked out, written by another
pull) or a state that cannot be read makes the pull a full one, and says why.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import orjson

from builder.errors import LabelStudioError
from builder.jsonio import STATE_DIR, atomic_write, sha256_file, state_dir
from builder.labelstudio.client import Connection, calling, check_response, unexpected_answer
from builder.labelstudio.push import require_project
from builder.project import Project
from builder.pseudonyms import LEGACY_SCHEME, Pseudonymizer, create_key, is_pseudonym, load_key, scheme_of
from builder.records.snapshot import normalise_task, read_snapshot, write_snapshot

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
CHANGED_VIEW_TITLE = "builder: changed since last pull"
REFETCH_VIEW_TITLE = "builder: tasks to fetch again"
EXPORT_TITLE = "builder pull"
EXPORT_TIMEOUT_S = 600
STATE_FORMAT = 2
# A task saved just before the previous pull's clock reading may be committed after its export
# read the database: look that far back again (re-fetching a task is harmless).
SINCE_MARGIN = timedelta(seconds=10)
LIST_PAGE = 5000
REFETCH_LIMIT = 2000  # beyond this many tasks to fetch again, one export of the population is cheaper
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


def _state_path(project: Project) -> Path:
    return project.root / STATE_DIR / "pull-state.json"


def _state_key(connection: Connection, project_id: int, output: Path) -> str:
    return f"{connection.url}#{project_id}#{output.resolve()}"


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
    """The pseudonyms already given to this server's accounts under this key (user id -> pseudonym)."""
    known = _accounts_of(_load_state(project)[0], key_id, url)
    return {k: v for k, v in known.items() if isinstance(k, str) and k.isascii() and k.isdigit() and is_pseudonym(v)}


def remember_accounts(project: Project, key_id: str, url: str, names: dict[int, str]) -> None:
    """Record pseudonyms of accounts (user id -> name) the way a pull does, without a pull entry.

    For an account about to leave the organization: Label Studio hides its e-mail afterwards."""
    state, _ = _load_state(project)
    per_key = state["accounts"].get(key_id) if isinstance(state["accounts"].get(key_id), dict) else {}
    per_key[url] = {**_accounts_of(state, key_id, url), **{str(user): name for user, name in sorted(names.items())}}
    state["accounts"][key_id] = per_key
    state_dir(project.root)
    with atomic_write(_state_path(project), "w", private=True) as handle:
        json.dump({"format": STATE_FORMAT, **state}, handle, indent=2, sort_keys=True)


def _write_pull_state(project: Project, key: str, entry: dict, key_id: str, url: str, names: dict[int, str]) -> None:
    state, _ = _load_state(project)
    state["pulls"][key] = entry
    known = _accounts_of(state, key_id, url)
    per_key = state["accounts"].get(key_id) if isinstance(state["accounts"].get(key_id), dict) else {}
    per_key[url] = {**known, **{str(user): name for user, name in sorted(names.items())}}
    state["accounts"][key_id] = per_key
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


def annotator_names(
    connection: Connection, pseudonymize: Pseudonymizer, known: dict[str, str] | None = None
) -> dict[int, str]:
    """Label Studio user id -> pseudonym (ids and e-mails never leave this function).

    An account keeps the name it was first given (`known`, from earlier pulls with this key), so a
    changed e-mail never renames anyone; Label Studio sets the e-mail of every account removed from
    the organization to "Deleted", which must not merge those people into one. A new account is
    named from its e-mail, so the same person gets the same name on any server; an account without
    a usable e-mail is named from its id on this server.
    """
    doing = "listing users"
    with calling(connection, doing):
        users = list(connection.client().users.list())
    known = known or {}
    names = {}
    for user in users:
        user_id, email = getattr(user, "id", None), getattr(user, "email", None)
        if type(user_id) is not int:
            raise unexpected_answer(connection, doing, "users with integer ids")
        if str(user_id) in known:
            names[user_id] = known[str(user_id)]
        elif isinstance(email, str) and _EMAIL.match(email.strip()):
            names[user_id] = pseudonymize(email)
        else:
            names[user_id] = pseudonymize(f"user-{user_id}@{connection.url}")
    return names


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


def export_tasks(connection: Connection, project_id: int, view_id: int | None = None) -> list[dict]:
    """A snapshot export (with full predictions) of the project, or of a view's tasks."""
    client = connection.client()
    options = {"view": view_id} if view_id is not None else None
    with calling(connection, "creating the export"):
        export = client.projects.exports.create(
            project_id,
            title=EXPORT_TITLE,
            serialization_options={"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": True}},
            **({"task_filter_options": options} if options else {}),
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
            response = connection.http().request(
                f"api/projects/{project_id}/exports/{export.id}/download", method="GET", params={"exportType": "JSON"}
            )
        if response.status_code >= 400:
            check_response(connection, response, doing)
        filename = response.headers.get("filename", "")
        payload = response.content
    finally:
        _delete_export(connection, project_id, export.id, filename)
    try:
        tasks = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise LabelStudioError(f"the export from {connection.url} is not valid JSON ({exc}); retry") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("id"), int) for t in tasks):
        raise unexpected_answer(connection, doing, "a list of tasks, each with an integer id")
    return tasks


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


def _local_counts(task: dict) -> tuple[int, int, int]:
    annotations = task["annotations"]
    cancelled = sum(1 for a in annotations if a.get("was_cancelled"))
    return len(annotations) - cancelled, cancelled, len(task.get("predictions") or [])


def counts_agree(connection: Connection, project_id: int, tasks: Iterable[dict]) -> bool:
    """True when the snapshot's counts equal the server's for the tasks that have annotations."""
    per_task = [_local_counts(t) for t in tasks]
    total, annotations, predictions = _count(connection, project_id, ANNOTATED)
    if (total, annotations, predictions) != (
        len(per_task),
        sum(a for a, _, _ in per_task),
        sum(p for _, _, p in per_task),
    ):
        return False
    cancelled = Counter(c for _, c, _ in per_task)
    highest = max(cancelled, default=0)
    for k in range(1, highest + 2):  # tasks with at least k cancelled annotations, up to one past the highest
        expected = sum(n for c, n in cancelled.items() if c >= k)
        if _count(connection, project_id, _with_cancelled_at_least(k))[0] != expected:
            return False
    return True


def list_annotated(connection: Connection, project_id: int) -> dict[int, tuple[int, int, int]]:
    """Task id -> (annotations, cancelled annotations, predictions) of every task with an annotation."""
    doing = "listing annotated tasks"
    found: dict[int, tuple[int, int, int]] = {}
    page = 1
    while True:
        with calling(connection, doing):
            response = connection.http().request(
                "api/tasks/",
                method="GET",
                params={
                    "project": project_id,
                    "page": page,
                    "page_size": LIST_PAGE,
                    "fields": "task_only",
                    "include": "id,total_annotations,cancelled_annotations,total_predictions",
                    "query": json.dumps({"filters": ANNOTATED, "ordering": ["tasks:id"]}),
                },
            )
        if response.status_code == 404 and page > 1:
            break
        body = check_response(connection, response, doing)
        tasks = body.get("tasks") if isinstance(body, dict) else None
        try:
            for task in tasks:
                found[int(task["id"])] = (
                    int(task["total_annotations"]),
                    int(task["cancelled_annotations"]),
                    int(task["total_predictions"]),
                )
        except (KeyError, TypeError, ValueError):
            raise unexpected_answer(connection, doing, "tasks with their counts") from None
        if len(tasks) < LIST_PAGE:
            break
        page += 1
    return found


def _annotated(tasks: Iterable[dict], names: dict[int, str], pseudonymize: Pseudonymizer, url: str) -> dict[int, dict]:
    def name(user) -> str:
        return names.get(user) or pseudonymize(f"user-{user}@{url}")

    return {t["id"]: normalise_task(t, name) for t in tasks if t.get("annotations")}


def pull(
    connection: Connection,
    project: Project,
    output: Path | None = None,
    since_last: bool = False,
    log: Callable[[str], None] = lambda message: None,
    rename_annotators: bool = False,
) -> PullResult:
    """Fetch annotated tasks and write the snapshot atomically; `since_last` fetches only what changed.

    Refuses to rename the annotators of an existing output (another pseudonym key) unless
    `rename_annotators`."""
    from builder.locks import exclusive, lock_path

    output = Path(output or project.snapshot_path)
    project_id = require_project(connection, project)
    # One pull of a project at a time: the exports and views a pull makes are its own until it ends.
    waiting = lambda pid: log(f"waiting for another pull of '{project.project_title}' on {connection.url} (pid {pid})")  # noqa: E731
    with exclusive(lock_path("pull", connection.url, str(project_id)), on_wait=waiting):
        return _pull_locked(connection, project, project_id, output, since_last, log, rename_annotators)


def _pull_locked(connection, project, project_id, output, since_last, log, rename_annotators) -> PullResult:
    pseudonymize = pseudonymizer_for(project, output, log)
    now = server_time(connection)
    remove_stale_exports(connection, project_id, now)
    names = annotator_names(connection, pseudonymize, read_accounts(project, pseudonymize.key_id, connection.url))
    key = _state_key(connection, project_id, output)
    why_full = ""
    previous = None
    if since_last:
        pulls, problem = read_pull_state(project)
        previous = pulls.get(key)
        why_full = problem or _why_not_incremental(previous, output, pseudonymize, now)
        if why_full:
            previous = None
    if previous is None:
        tasks = export_tasks(connection, project_id)
        snapshot = _annotated(tasks, names, pseudonymize, connection.url)
        result = PullResult(output, len(tasks), 0, len(tasks) - len(snapshot), False, why_full)
    else:
        snapshot, result = _incremental(connection, project_id, output, previous["since"], names, pseudonymize)
    if output.is_file() and not rename_annotators:
        _refuse_renames(output, snapshot, log)
    result.written = write_snapshot(output, snapshot.values())
    entry = {
        "since": _iso(now - SINCE_MARGIN) if now else _previous_since(previous),
        "snapshot_sha256": sha256_file(output),
        "key_id": pseudonymize.key_id,
    }
    _write_pull_state(project, key, entry, pseudonymize.key_id, connection.url, names)
    return result


def _refuse_renames(output: Path, snapshot: dict[int, dict], log: Callable[[str], None]) -> None:
    """Refuse a pull that would give an annotation already in `output` another keyed pseudonym.

    The same annotation (task id, annotation id, sentence and labels) under another name means another
    pseudonym key: every annotator would be renamed. Names of the unkeyed scheme of release 1.0.0 move
    to the keyed scheme, as intended, and that is said.
    """
    from builder.jsonio import read_jsonl
    from builder.pseudonyms import KEY_VARIABLE, PseudonymKeyError

    renamed, example, legacy = 0, None, 0
    for old in read_jsonl(output, on_bad_line=lambda where, detail: None):
        if not isinstance(old, dict) or not isinstance(old.get("annotations"), list):
            continue
        new = snapshot.get(old.get("task_id"))
        if (
            new is None
            or not isinstance(old.get("data"), dict)
            or old["data"].get("sentence_id") != new["data"].get("sentence_id")
        ):
            continue
        now_named = {a["id"]: a for a in new["annotations"]}
        for annotation in old["annotations"]:
            if not isinstance(annotation, dict) or annotation.get("id") not in now_named:
                continue
            same = now_named[annotation["id"]]
            if same["result"] != annotation.get("result") or same["annotator"] == annotation.get("annotator"):
                continue
            if scheme_of([str(annotation.get("annotator"))]) == LEGACY_SCHEME:
                legacy += 1
                continue
            renamed += 1
            example = example or (annotation.get("annotator"), same["annotator"])
    if legacy:
        log(f"{legacy} annotations in {output} move from the unkeyed pseudonyms of release 1.0.0 to keyed ones")
    if renamed:
        raise PseudonymKeyError(
            f"pulling would rename the annotators of {renamed} annotations in {output} "
            f"(e.g. {example[0]} -> {example[1]}): this is not the pseudonym key they were pulled with; "
            f"use that key (.builder/pseudonym.key or {KEY_VARIABLE}), "
            "or pass --rename-annotators to rename them on purpose"
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


def _incremental(connection, project_id, output, since, names, pseudonymize) -> tuple[dict[int, dict], PullResult]:
    filters = {
        "conjunction": "and",
        "items": [{"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}],
    }
    with temporary_view(connection, project_id, CHANGED_VIEW_TITLE, filters=filters) as view_id:
        changed = export_tasks(connection, project_id, view_id)
    snapshot = {t["task_id"]: t for t in read_snapshot(output)}
    before = set(snapshot)
    updated = _annotated(changed, names, pseudonymize, connection.url)
    for task in changed:
        snapshot.pop(task["id"], None)
    snapshot.update(updated)
    result = PullResult(output, len(changed), 0, len(changed) - len(updated), True)
    if not counts_agree(connection, project_id, snapshot.values()):
        # A deletion that did not touch `updated_at`: compare task by task, fetch again what differs.
        result.reconciled = True
        server = list_annotated(connection, project_id)
        for task_id in [t for t in snapshot if t not in server]:
            del snapshot[task_id]
        differing = [t for t, counts in server.items() if t not in snapshot or _local_counts(snapshot[t]) != counts]
        if len(differing) > REFETCH_LIMIT:  # one export of everything is cheaper than a huge selection
            everything = export_tasks(connection, project_id)
            snapshot = _annotated(everything, names, pseudonymize, connection.url)
            result.fetched += len(everything)
        elif differing:
            with temporary_view(connection, project_id, REFETCH_VIEW_TITLE, selected=differing) as view_id:
                refetched = export_tasks(connection, project_id, view_id)
            fresh = _annotated(refetched, names, pseudonymize, connection.url)
            for task_id in differing:
                snapshot.pop(task_id, None)
            snapshot.update(fresh)
            result.fetched += len(refetched)
    result.removed = len(before - set(snapshot))
    return snapshot, result
