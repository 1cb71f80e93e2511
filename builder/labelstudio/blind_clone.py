"""A blind push's copies, made from one import of each task (issue 26): the fast path on builder's local server.

A blind push gives each sentence to `annotators_per_sentence` copies. Imported through Label Studio's API into
each copy, every task would cost an import per copy (most of it Label Studio building a Django object per task and
per prediction). On builder's local server, whose guard answers CLONE_PATH (builder/labelstudio/in_server/
builder_guard_settings.py, `clone_tasks`, for builder's admin token only), each distinct task (its JSON, byte for
byte: a sentence whose predictions differ between copies is imported once per variant) is imported once, through
the same API, into a staging project of builder's admin (in the server's first organization, titled
STAGING_TITLE, deleted when the push ends), and the guard copies the staged rows into each copy that holds the
task, in the copy's order, as the import would have made them there (`clone_tasks`). Everything else a push does
(its ledger, the drift record, gold questions, pre-annotations) is the ordinary push's, copy by copy.

A guard without CLONE_PATH, or one that refuses the Label Studio it runs in (other columns than 1.23.2's), leaves
the ordinary import into each copy.
"""

from __future__ import annotations

import hashlib

import orjson

from builder.errors import LabelStudioError
from builder.labelstudio.client import Connection, calling, check_response, unexpected_answer
from builder.labelstudio.project_api import project_settings
from builder.labelstudio.push import import_tasks
from builder.project import Project

CLONE_PATH = "builder-guard/clone-tasks/"  # the guard's request (in_server/builder_guard_settings.py)
CLONE_HEADER = "X-Builder-Clone"  # on the guard's every answer to it
STAGING_TITLE = "builder staging: blind push in progress"  # <= 50 characters
CLONE_BATCH = 5000  # task ids per clone request (the guard takes 20,000 at most)


def _post_clone(connection: Connection, body: dict, doing: str):
    with calling(connection, doing):
        return connection.http().request(
            CLONE_PATH,
            method="POST",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
            request_options={"max_retries": 0},
        )


def clones_tasks(connection: Connection) -> bool:
    """Whether the server's guard answers CLONE_PATH (a malformed request: refused, nothing made)."""
    try:
        response = _post_clone(connection, {}, "asking the local server's guard whether it copies tasks")
    except LabelStudioError:
        return False
    return response.headers.get(CLONE_HEADER) == "1"


def _staging_projects(connection: Connection) -> list[int]:
    doing = "looking up the blind push's staging project"
    with calling(connection, doing):
        response = connection.http().request(
            "api/projects/", method="GET", params={"include": "id,title", "page_size": 1000, "title": STAGING_TITLE}
        )
    answer = check_response(connection, response, doing)
    results = answer.get("results", []) if isinstance(answer, dict) else answer
    return [p["id"] for p in results or [] if isinstance(p, dict) and p.get("title") == STAGING_TITLE]


def _delete_project(connection: Connection, project_id: int) -> None:
    with calling(connection, "deleting the blind push's staging project"):
        connection.client().projects.delete(project_id)


class TaskClones:
    """Makes each batch of a copy's tasks: imports the tasks no copy has been given yet into the staging project,
    then has the guard copy the staged tasks into the copy. `connection`: builder's admin (the API key's)."""

    def __init__(self, connection: Connection, project: Project):
        self.connection, self.project = connection, project
        self.staging: int | None = None
        self.staged: dict[bytes, int] = {}  # a task's digest -> its staged task's id
        self.refused = False  # the guard would not copy (another Label Studio): the ordinary import from then on

    def __enter__(self) -> TaskClones:
        for leftover in _staging_projects(self.connection):  # an interrupted push's
            _delete_project(self.connection, leftover)
        return self

    def __exit__(self, *exc) -> None:
        if self.staging is not None:
            # the guard deletes its tasks in two statements (Label Studio's deletion takes 5 s for 20,000 tasks);
            # refused (or an older guard), the project's deletion deletes them
            _post_clone(self.connection, {"empty": self.staging}, "emptying the blind push's staging project")
            _delete_project(self.connection, self.staging)
            self.staging = None

    def _staging_id(self) -> int:
        if self.staging is None:
            settings = {**project_settings(self.project), "title": STAGING_TITLE, "maximum_annotations": 1}
            with calling(self.connection, "creating the blind push's staging project"):
                self.staging = self.connection.client().projects.create(**settings).id
        return self.staging

    def __call__(self, connection: Connection, project_id: int, batch: list[dict], doing: str) -> None:
        if self.refused:
            import_tasks(connection, project_id, batch, doing)
            return
        keys = [hashlib.blake2b(orjson.dumps(t, option=orjson.OPT_SORT_KEYS), digest_size=16).digest() for t in batch]
        new: dict[bytes, dict] = {}
        for key, task in zip(keys, batch, strict=True):
            if key not in self.staged and key not in new:
                new[key] = task
        if new:
            ids = import_tasks(self.connection, self._staging_id(), list(new.values()), doing, ids=True)
            self.staged.update(zip(new, ids, strict=True))
        sources = [self.staged[key] for key in keys]
        made = 0
        for start in range(0, len(sources), CLONE_BATCH):
            response = _post_clone(
                self.connection, {"project": project_id, "tasks": sources[start : start + CLONE_BATCH]}, doing
            )
            if response.headers.get(CLONE_HEADER) != "1" or (response.status_code == 501 and made == 0):
                if made:
                    raise unexpected_answer(self.connection, doing, "the guard's copies of the tasks")
                self.refused = True  # not the guard's answer, or a Label Studio it does not know: import instead
                import_tasks(connection, project_id, batch, doing)
                return
            answer = check_response(self.connection, response, doing)
            part = answer.get("tasks") if isinstance(answer, dict) else None
            if not isinstance(part, list) or len(part) != len(sources[start : start + CLONE_BATCH]):
                raise unexpected_answer(self.connection, doing, "the ids of the copied tasks")
            made += len(part)
