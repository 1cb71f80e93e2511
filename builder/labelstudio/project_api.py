"""The Label Studio project of this repository: finding it, making or updating it from the scheme, and what
every command that works on it needs (its facts, its tasks' sentence ids, its model version, the push lock).

Push, pull, review, predictions, accounts and migrate all work on the same project, so the rules that say
which project that is (the one builder made or adopted, bound in the committed registry, never a look-alike
with the same title) live here once, apart from how a push chooses and imports sentences (push.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

from builder.errors import LabelStudioError
from builder.labeling_config import labeling_config
from builder.labelstudio.client import Connection, calling, check_response, task_pages, unexpected_answer
from builder.labelstudio.views import ensure_sentences_view
from builder.project import Project


def instructions_html(project: Project) -> str:
    """The guidelines (markdown) as the HTML Label Studio shows as the project's instructions."""
    import markdown

    return markdown.markdown(project.guidelines(), extensions=["tables"])


def project_settings(project: Project) -> dict:
    return {
        "title": project.project_title,
        "label_config": labeling_config(project),
        "expert_instruction": instructions_html(project),
        "show_instruction": True,
        "maximum_annotations": project.annotators_per_sentence,
        "overlap_cohort_percentage": 100,
        "show_skip_button": True,
        "enable_empty_annotation": False,
    }


def titled_projects(connection: Connection, project: Project) -> list[int]:
    """The ids of the Label Studio projects titled like the scheme's (any member may make one).

    Asks for ids and titles only: without `include`, Label Studio counts every project's tasks and
    annotations for the listing (over a second on a 200,000-task project)."""
    doing = "looking up the project"
    matches, page = [], 1
    while True:
        with calling(connection, doing):
            response = connection.http().request(
                "api/projects/",
                method="GET",
                params={"title": project.project_title, "include": "id,title", "page": page, "page_size": 100},
            )
        if response.status_code == 404 and page > 1:
            break  # past the last page
        body = check_response(connection, response, doing)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or not all(isinstance(p, dict) and type(p.get("id")) is int for p in results):
            raise unexpected_answer(connection, doing, "a page of projects with ids and titles")
        matches += [p["id"] for p in results if p.get("title") == project.project_title]
        if not body.get("next") or not results:
            break
        page += 1
    return matches


def _created_at(connection: Connection, project_id: int) -> str | None:
    """The project's creation time as Label Studio gives it, or None when no project has this id."""
    doing = "reading the project"
    with calling(connection, doing):
        response = connection.http().request(f"api/projects/{project_id}", method="GET")
    if response.status_code == 404:
        return None
    body = check_response(connection, response, doing)
    if not isinstance(body, dict) or not isinstance(body.get("created_at"), str):
        raise unexpected_answer(connection, doing, "a project with its creation time")
    from builder.labelstudio.registry import moment

    return moment(body["created_at"])


def _adopt_hint(project: Project) -> str:
    from builder.labelstudio.registry import REGISTRY_NAME

    return (
        f"any member can make a project titled '{project.project_title}', so builder uses only the one it made "
        f"(bound in annotations/{REGISTRY_NAME}); if this one is yours, run `builder push --adopt-project` once"
    )


def find_project(connection: Connection, project: Project) -> int | None:
    """The id of this repository's project on the server, or None when it has none there (yet).

    The project is the one `builder push` made (or was told to adopt), bound by id and creation time in
    the committed registry (builder/labelstudio/registry.py), whatever its title says. Without a binding,
    a project with the scheme's title is someone else's look-alike and is refused, unless this machine's
    push ledger shows builder pushed into it (made before projects were bound): then it is bound now."""
    from builder.labelstudio.ledger import pushed_into
    from builder.labelstudio.registry import bind_project, bound_project, server_identity

    server = server_identity(connection)
    bound = bound_project(project, server)
    if bound is not None:
        if _created_at(connection, bound["id"]) == bound["created_at"]:
            return bound["id"]
        return None  # deleted: `builder push` makes a new one, unless a look-alike stands in its way
    matches = titled_projects(connection, project)
    if not matches:
        return None
    if len(matches) > 1:
        raise LabelStudioError(
            f"{len(matches)} projects are titled '{project.project_title}' in Label Studio at {connection.url}, "
            f"and builder made none of them ({_adopt_hint(project)}): rename or delete the extra ones"
        )
    created = _created_at(connection, matches[0])
    if created is not None and pushed_into(project.root, matches[0], created):
        bind_project(project, server, matches[0], created)
        return matches[0]
    raise LabelStudioError(
        f"project '{project.project_title}' (id {matches[0]}) in Label Studio at {connection.url} was not made "
        f"by builder for this repository: {_adopt_hint(project)}"
    )


def require_project(connection: Connection, project: Project) -> int:
    project_id = find_project(connection, project)
    if project_id is None:
        raise LabelStudioError(
            f"unknown project '{project.project_title}' in Label Studio at {connection.url}: "
            "run `builder push` first, or check label_studio.project_title"
        )
    return project_id


def adopt_project(connection: Connection, project: Project) -> int:
    """Bind the one existing project titled like the scheme's as this repository's (`builder push --adopt-project`)."""
    from builder.labelstudio.registry import bind_project, server_identity

    matches = titled_projects(connection, project)
    if len(matches) != 1:
        raise LabelStudioError(
            f"--adopt-project: {len(matches) or 'no'} project{'s are' if len(matches) != 1 else ' is'} titled "
            f"'{project.project_title}' in Label Studio at {connection.url}; adopting needs exactly one"
        )
    created = _created_at(connection, matches[0])
    if created is None:
        raise LabelStudioError(f"--adopt-project: project {matches[0]} was deleted meanwhile; retry")
    bind_project(project, server_identity(connection), matches[0], created)
    return matches[0]


def ensure_project(connection: Connection, project: Project, adopt: bool = False) -> tuple[int, bool]:
    """Create the project (and bind it), or update its config and settings from the scheme. Returns (id, created).

    `adopt`: when no project is bound on this server, take the one titled like the scheme's."""
    from builder.labelstudio.drift import remember_settings
    from builder.labelstudio.registry import bind_project, bound_project, server_identity

    client = connection.client()
    settings = project_settings(project)
    server = server_identity(connection)
    if adopt and bound_project(project, server) is None:
        project_id = adopt_project(connection, project)
    else:
        project_id = find_project(connection, project)
    if project_id is None:
        others = titled_projects(connection, project)
        if others:  # the bound project was deleted, and a look-alike took its title
            raise LabelStudioError(
                f"the project builder made in Label Studio at {connection.url} is gone, and project {others[0]} "
                f"titled '{project.project_title}' is not builder's: {_adopt_hint(project)}"
            )
        with calling(connection, "creating the project"):
            project_id = client.projects.create(**settings).id
        created = _created_at(connection, project_id)
        if created is None:
            raise LabelStudioError(f"the project builder made in Label Studio at {connection.url} was deleted; retry")
        bind_project(project, server, project_id, created)
        remember_settings(project.root, server, project_id, settings)
        ensure_sentences_view(connection, project_id)
        return project_id, True
    with calling(connection, "updating the project's labeling config"):
        client.projects.update(project_id, **settings)
    remember_settings(project.root, server, project_id, settings)  # what a pull compares the project with
    ensure_sentences_view(connection, project_id)  # a project made before builder made this view gets it now
    return project_id, False


def task_sentence_id_pages(connection: Connection, project_id: int) -> Iterator[list]:
    """The `sentence_id` of every task of the project, a page at a time (None for a task without one)."""
    doing = "listing the project's tasks"
    for tasks in task_pages(connection, project_id, {"fields": "task_only", "include": "id,data"}, doing):
        if not all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
            raise unexpected_answer(connection, doing, "a list of tasks with data")
        yield [task["data"].get("sentence_id") for task in tasks]


def existing_sentence_ids(connection: Connection, project_id: int) -> set[str]:
    """`sentence_id` of every task already in the project (a full listing: slow on big projects)."""
    return {s for page in task_sentence_id_pages(connection, project_id) for s in page if s is not None}


def project_facts(connection: Connection, project_id: int) -> tuple[int, str]:
    """(task count, creation time) of a project: one request."""
    doing = "counting the project's tasks"
    with calling(connection, doing):
        response = connection.http().request(f"api/projects/{project_id}", method="GET")
    body = check_response(connection, response, doing)
    if not isinstance(body, dict) or type(body.get("task_number")) is not int:
        raise unexpected_answer(connection, doing, "a project with its task_number")
    return body["task_number"], str(body.get("created_at") or "")


def set_model_version(connection: Connection, project_id: int, model_version: str) -> str | None:
    """Set the project's `model_version` (Label Studio shows annotators only the predictions of that version).

    Returns the version it had before, or None when Label Studio refused: no task holds a prediction
    of `model_version` (it accepts only a version it has predictions of)."""
    doing = "reading the project's model version"
    with calling(connection, doing):
        response = connection.http().request(f"api/projects/{project_id}", method="GET")
    body = check_response(connection, response, doing)
    if not isinstance(body, dict):
        raise unexpected_answer(connection, doing, "a project")
    previous = body.get("model_version") or ""
    if previous == model_version:
        return previous
    doing = f"setting the project's model version to {model_version}"
    with calling(connection, doing):
        response = connection.http().request(
            f"api/projects/{project_id}",
            method="PATCH",
            content=json.dumps({"model_version": model_version}),
            headers={"Content-Type": "application/json"},
        )
    if response.status_code == 400 and "model_version" in response.text:
        return None
    check_response(connection, response, doing)
    return previous


def push_lock(connection: Connection, project: Project):
    """Serializes pushes into one Label Studio project (released when the process ends, however)."""
    from builder.locks import exclusive, lock_path

    def waiting(holder: str) -> None:
        print(
            f"waiting for another builder push into '{project.project_title}' on {connection.url} (pid {holder})",
            file=sys.stderr,
        )

    from builder.labelstudio.registry import server_identity

    return exclusive(lock_path("push", server_identity(connection), project.project_title), on_wait=waiting)
