"""Moving work between annotators of a blind project: `annotators remove` and `annotators blind`.

Both top up sentences that reach fewer than `annotators_per_sentence` annotators (assignment.hand_over) by
importing the very task an annotator had (its data and pre-annotations, as builder pushed them) into the copies
of annotators who do not have that sentence yet:

- **removing** an annotator of a blind project removes their account from their organization (Label Studio's
  soft delete), hands their unstarted tasks (no annotation, skipped or submitted) to the others and deletes
  those tasks from their copy; what they annotated or skipped stays in their copy, so it stays in every pull
  under the same pseudonym, and still counts towards each sentence's overlap;
- **making a shared project blind** keeps the shared project as it is (every annotation, ground truth and
  pseudonym stays there, and every blind pull merges it with the copies), moves every annotator into an
  organization of their own, and hands each sentence the shared project has not finished to as many annotators
  as it lacks, never to one who already labelled it there.

A copy holding a sentence is what makes its holder count towards the sentence's overlap: so the hand-over is
idempotent (a second run finds every sentence topped up) and a crash half-way is completed by running it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from builder.errors import ConfigError, LabelStudioError
from builder.labelstudio.accounts import checked_emails, organization_users, remove_annotator
from builder.labelstudio.assignment import hand_over
from builder.labelstudio.blind_push import copy_project, guarded_local_state, isolate_members
from builder.labelstudio.client import LIST_PAGE, Connection, calling, check_response, task_pages
from builder.labelstudio.isolation import (
    AnnotatorOrganization,
    mark_removed,
    read_blind_marker,
    read_organizations,
    write_blind_marker,
)
from builder.labelstudio.project_api import (
    ensure_project,
    existing_sentence_ids,
    find_project,
    project_facts,
    push_lock,
    require_project,
    set_model_version,
)
from builder.labelstudio.push import BATCH_SIZE
from builder.project import Project


def _tasks(connection: Connection, project_id: int, doing: str) -> list[dict]:
    """Every task of the project with its data, annotations and predictions (task id order)."""
    params = {"fields": "all", "query": json.dumps({"ordering": ["tasks:id"]})}
    return [task for page in task_pages(connection, project_id, params, doing, LIST_PAGE) for task in page]


def _payload(task: dict) -> dict:
    """The task to import elsewhere: the data and pre-annotations builder pushed, nothing of Label Studio's own."""
    predictions = []
    for prediction in task.get("predictions") or []:
        kept = {"model_version": prediction.get("model_version") or "", "result": prediction.get("result") or []}
        if prediction.get("score") is not None:
            kept["score"] = prediction["score"]
        predictions.append(kept)
    return {"data": task["data"], **({"predictions": predictions} if predictions else {})}


def _user(annotation: dict):
    who = annotation.get("completed_by")
    return who.get("id") if isinstance(who, dict) else who


def import_tasks(connection: Connection, copy: Project, tasks: list[dict], model_version: str = "") -> int:
    """Import these task payloads into the copy `connection` reaches (made if need be), skipping the sentences it
    has; recorded in its push ledger and drift record as a push records them. Returns how many were imported."""
    from builder.labelstudio.drift import remember_tasks
    from builder.labelstudio.ledger import open_ledger
    from builder.labelstudio.project_api import task_sentence_id_pages
    from builder.labelstudio.registry import server_identity

    imported = 0
    with push_lock(connection, copy):
        project_id, _created = ensure_project(connection, copy)
        task_number, created_at = project_facts(connection, project_id)
        with open_ledger(copy.root, server_identity(connection), project_id, created_at) as ledger:
            if ledger.tasks != task_number:
                ledger.rebuild(task_sentence_id_pages(connection, project_id) if task_number else [])
            new = [task for task in tasks if task["data"]["sentence_id"] not in ledger]
            for start in range(0, len(new), BATCH_SIZE):
                batch = new[start : start + BATCH_SIZE]
                doing = "importing the tasks handed over (re-run the command to resume)"
                with calling(connection, doing):
                    response = connection.http().request(
                        f"api/projects/{project_id}/import",
                        method="POST",
                        params={"return_task_ids": "false", "commit_to_project": "true"},
                        content=orjson.dumps(batch),
                        headers={"Content-Type": "application/json"},
                        request_options={"max_retries": 0},
                    )
                check_response(connection, response, doing)
                ledger.record([task["data"]["sentence_id"] for task in batch])
                remember_tasks(copy.root, server_identity(connection), project_id, batch)
                imported += len(batch)
    if model_version and any(task.get("predictions") for task in new):
        set_model_version(connection, project_id, model_version)  # annotators see the pre-annotations
    return imported


def _delete_tasks(connection: Connection, project_id: int, task_ids: list[int]) -> None:
    doing = "deleting the tasks handed over from the removed annotator's copy"
    for start in range(0, len(task_ids), BATCH_SIZE):
        batch = task_ids[start : start + BATCH_SIZE]
        with calling(connection, doing):
            response = connection.http().request(
                "api/dm/actions",
                method="POST",
                params={"id": "delete_tasks", "project": project_id},
                content=orjson.dumps({"selectedItems": {"all": False, "included": batch}}),
                headers={"Content-Type": "application/json"},
            )
        check_response(connection, response, doing)


@dataclass
class HandOver:
    sentences: int = 0  # sentences given to someone by this run
    places: int = 0  # (sentence, annotator) pairs given
    short: int = 0  # sentences still short of annotators_per_sentence: not enough annotators left
    receivers: dict[str, int] = field(default_factory=dict)  # e-mail -> sentences given (never printed)


def _hand_over(
    url: str,
    project: Project,
    organizations: dict[str, AnnotatorOrganization],
    payloads: dict[str, dict],
    holders: dict[str, set[str]],
    model_version: str = "",
) -> HandOver:
    """Top up each sentence of `payloads` (id -> task payload) to the project's overlap, counting as holders those
    in `holders` and every annotator whose copy has it; given to annotators not removed, fewest sentences first."""
    copy = copy_project(project)
    held: dict[str, set[str]] = {}
    for email, organization in organizations.items():
        reached = organization.connection(url)
        project_id = find_project(reached, copy)
        held[email] = existing_sentence_ids(reached, project_id) if project_id is not None else set()
    everyone = {
        sentence_id: set(holders.get(sentence_id, ())) | {email for email, ids in held.items() if sentence_id in ids}
        for sentence_id in payloads
    }
    loads = {email: len(held[email]) for email, organization in organizations.items() if not organization.removed}
    plan, short = hand_over(everyone, loads, project.annotators_per_sentence, seed=project.name)
    result = HandOver(sentences=len(plan), short=short)
    for email in sorted(loads):
        share = [payloads[sentence_id] for sentence_id, chosen in plan.items() if email in chosen]
        if share:
            import_tasks(organizations[email].connection(url), copy, share, model_version)
            result.receivers[email] = len(share)
            result.places += len(share)
    return result


@dataclass
class BlindRemoved:
    email: str
    pseudonym: str | None
    kept: int  # tasks they annotated or skipped: they stay, in every pull
    handed: HandOver
    was_removed: bool = False  # removed by an earlier run (this one completed the hand-over)


def remove_blind_annotator(connection: Connection, project: Project, email: str) -> BlindRemoved:
    """Remove an annotator of a blind project, handing their unstarted share to the others (see the module).

    Re-running it completes an interrupted removal. An annotator builder never gave work to (added since the last
    push) is removed from the server's first organization, as in a shared project."""
    state = guarded_local_state(connection, project, "first")
    [email] = checked_emails([email])
    isolate_members(connection, project, state)  # annotators added since the last push can be given work
    organizations = read_organizations(project.root)
    entry = organizations.get(email)
    if entry is None:
        removed = remove_annotator(connection, email, project)
        return BlindRemoved(email, removed.pseudonym, 0, HandOver())
    copy = copy_project(project)
    reached = entry.connection(connection.url)
    if not entry.removed:
        mark_removed(project.root, email)  # first: from now on no push gives them work
    member = any(user.active and user.email == email for user in organization_users(reached))
    pseudonym = remove_annotator(reached, email, copy).pseudonym if member else None
    organizations = read_organizations(project.root)
    project_id = find_project(reached, copy)
    if project_id is None:
        return BlindRemoved(email, pseudonym, 0, HandOver(), not member)
    tasks = _tasks(reached, project_id, "reading the removed annotator's copy")
    unstarted = [task for task in tasks if not task.get("annotations")]
    marker = read_blind_marker(project.root) or {"holders": {}}
    payloads = {task["data"]["sentence_id"]: _payload(task) for task in unstarted}
    holders = {sentence_id: set(marker["holders"].get(sentence_id, ())) for sentence_id in payloads}
    others = {other: organization for other, organization in organizations.items() if other != email}
    handed = _hand_over(connection.url, project, others, payloads, holders, _model_version(reached, project_id))
    _delete_tasks(reached, project_id, [task["id"] for task in unstarted])
    return BlindRemoved(email, pseudonym, len(tasks) - len(unstarted), handed, not member)


def _model_version(connection: Connection, project_id: int) -> str:
    doing = "reading the project's model version"
    with calling(connection, doing):
        response = connection.http().request(f"api/projects/{project_id}", method="GET")
    body = check_response(connection, response, doing)
    return (body.get("model_version") or "") if isinstance(body, dict) else ""


@dataclass
class MadeBlind:
    annotators: int  # annotators now each in an organization of their own
    tasks: int  # tasks of the shared project (they all stay there)
    finished: int  # sentences the shared project already has enough annotators for
    handed: HandOver


def make_blind(
    connection: Connection, project: Project, log: Callable[[str], None] = lambda message: None
) -> MadeBlind:
    """Make this repository's shared project on the local server blind (see the module); re-running it completes an
    interrupted run and then changes nothing."""
    from builder.labelstudio.annotator_names import annotator_names, pseudonymizer_for, remember_names

    state = guarded_local_state(connection, project, "first")
    if project.annotators_per_sentence < 2:
        raise ConfigError(
            f"{project.source}: annotators_per_sentence is {project.annotators_per_sentence}: a project with one "
            "annotator per sentence has nobody to hide annotations from"
        )
    marker = read_blind_marker(project.root)
    project_id = require_project(connection, project)
    if marker is not None and marker.get("shared_project") != project_id:
        raise LabelStudioError(
            f"{project.root}/.builder/blind.json names another shared project than this server's: "
            "it belongs to another server; move it away to make this one blind"
        )
    tasks = _tasks(connection, project_id, "reading the shared project's tasks")
    if marker is None:
        # who annotated what, by e-mail, while every annotator is still a member (isolation hides them)
        emails = {user.id: user.email for user in organization_users(connection) if user.email}
        holders: dict[str, list[str]] = {}
        for task in tasks:
            who = {emails.get(_user(a)) or f"user-{_user(a)}" for a in task.get("annotations") or []}
            if who:
                holders[task["data"]["sentence_id"]] = sorted(who)
        # every account's pseudonym recorded first: once isolated, the shared project's pulls no longer list them
        pseudonymize = pseudonymizer_for(project, project.snapshot_path, log or (lambda message: None))
        named = annotator_names(connection, project, pseudonymize)
        remember_names(project, named)
        write_blind_marker(project.root, project_id, holders)
        marker = read_blind_marker(project.root)
    isolate_members(connection, project, state)
    organizations = read_organizations(project.root)
    holders = {sentence_id: set(who) for sentence_id, who in marker["holders"].items()}
    per = project.annotators_per_sentence
    unfinished = {
        task["data"]["sentence_id"]: _payload(task)
        for task in tasks
        if len(holders.get(task["data"]["sentence_id"], ())) < per
    }
    handed = _hand_over(
        connection.url, project, organizations, unfinished, holders, _model_version(connection, project_id)
    )
    finished = len({task["data"]["sentence_id"] for task in tasks}) - len(unfinished)
    return MadeBlind(sum(not o.removed for o in organizations.values()), len(tasks), finished, handed)
