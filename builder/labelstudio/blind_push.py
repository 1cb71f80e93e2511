"""Blind push: each annotator's share of the sentences, in a copy of the project in their own organization.

`[annotation] blind` in builder.toml: "auto" (the default: blind when annotators_per_sentence > 1 and the server
is builder's local one, unless the project is already shared there), true, or false. A blind push moves every
annotator account of the server's first organization into an organization of its own
(builder/labelstudio/isolation.py), then gives each sentence to `annotators_per_sentence` of them
(builder/labelstudio/assignment.py) and pushes each annotator's share into their copy of the project with an
ordinary push (same labeling config, instructions, gold questions and pre-annotations), through that
organization's admin token, with one annotator per task inside the copy. On builder's local server the guard makes each
copy's tasks as Label Studio's import would, in a few statements (builder/labelstudio/blind_import.py).

Only builder's local server can be blind: elsewhere builder has no access to Label Studio's models to make
organizations, and no guard closes the paths Label Studio answers without looking at organizations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import ConfigError, LabelStudioError
from builder.labelstudio import server
from builder.labelstudio.accounts import organization_users
from builder.labelstudio.assignment import assign, hand_over
from builder.labelstudio.blind_import import GuardImport, adds_tasks, delete_staging_leftovers
from builder.labelstudio.client import Connection, calling
from builder.labelstudio.isolation import (
    ADMIN_DOMAIN,
    guarded,
    isolate_annotators,
    read_blind_marker,
    read_organizations,
)
from builder.labelstudio.project_api import existing_sentence_ids, find_project
from builder.labelstudio.push import BATCH_SIZE, PushResult, push_sentences
from builder.project import Project

REMOTE_WARNING = (
    "warning: blind annotation needs builder's local server; on this one every annotator can see every "
    "other's annotations, drafts and e-mail (Label Studio Community has no roles): builder still masks e-mails "
    "and publishes pseudonyms, and agreement may measure copying (docs/team-admins.md)"
)


def local_state(connection: Connection, root: Path) -> server.ServerState | None:
    """The local server's state when `connection` reaches builder's local server of this project, else None."""
    try:
        state = server.read_state(root)
    except LabelStudioError:
        return None
    if state is None or not server.belongs_to(state, root) or connection.url != state.url:
        return None
    return state


def remote_warning(project: Project, connection: Connection) -> str | None:
    """The one line to show before the first push of a project with several annotators per sentence to a server
    that cannot be blind (None when it is blind, has one annotator per sentence, or was pushed to already)."""
    from builder.labelstudio.registry import bound_project, server_identity

    if project.annotators_per_sentence < 2 or project.blind is False or local_state(connection, project.root):
        return None
    try:
        identity = server_identity(connection)
    except LabelStudioError:  # unreachable or refused: the push itself says so, after checking its sentences file
        return None
    return REMOTE_WARNING if bound_project(project, identity) is None else None


def is_blind(project: Project, connection: Connection) -> bool:
    """Whether pushes and pulls of `project` through `connection` are blind (`[annotation] blind`, "auto" by
    default: blind with several annotators per sentence on builder's local server).

    A project already shared on the local server (pushed there before blind annotation, or with blind = false)
    stays shared under "auto" until `builder annotators blind` moves it, keeping every annotation: blind pushes
    and pulls would not see its annotations otherwise."""
    from builder.labelstudio.registry import bound_project, server_identity

    setting = project.blind
    local = local_state(connection, project.root) is not None
    made_blind = local and read_blind_marker(project.root) is not None
    if setting is False:
        if made_blind:
            raise ConfigError(
                f"{project.source}: annotation.blind is false, but `builder annotators blind` made this project "
                'blind: its annotators can no longer reach the shared project; set blind = "auto" or true'
            )
        return False
    if setting is True and not local:
        raise ConfigError(
            f"{project.source}: annotation.blind is true, but {connection.url} is not builder's local server: "
            'blind annotation needs it (`builder server start`); set blind = "auto" or false'
        )
    if setting == "auto" and not (local and project.annotators_per_sentence > 1):
        return False
    if not made_blind and bound_project(project, server_identity(connection)) is not None:
        if setting is True:
            raise ConfigError(
                f"{project.source}: annotation.blind is true, but this project is shared on {connection.url}: "
                "make it blind with `builder annotators blind` (it keeps every annotation), or set blind = false"
            )
        return False  # "auto": a shared project stays shared until `builder annotators blind`
    return True


def copy_project(project: Project) -> Project:
    """The project as each annotator's copy has it: the same scheme and settings, one annotator per task."""
    return dataclasses.replace(project, annotators_per_sentence=1)


@dataclass
class BlindPushResult:
    annotators: int
    created: int  # sentences given to annotators by this push (each counted once)
    skipped: int  # sentences every copy already had
    copies: dict[str, PushResult] = field(default_factory=dict)  # by annotator e-mail (never printed)
    isolated: int = 0  # accounts moved into an organization of their own by this push
    short: int = 0  # sentences reaching fewer than annotators_per_sentence annotators: too few annotators


def _annotators_in_first_organization(connection: Connection) -> list:
    """The annotator accounts still in the first organization (the API key's): those a push has yet to isolate."""
    with calling(connection, "identifying the API key's account"):
        me = connection.client().users.whoami().id
    return [
        user
        for user in organization_users(connection)
        if user.active and user.id != me and user.email and not user.email.endswith(f"@{ADMIN_DOMAIN}")
    ]


def guarded_local_state(connection: Connection, project: Project, when: str) -> server.ServerState:
    """The local server's state, refused (one line ending in `when`) for a remote server or one without the guard."""
    state = local_state(connection, project.root)
    if state is None:
        raise ConfigError(f"blind annotation needs builder's local server, not {connection.url}")
    if not guarded(state.url):
        raise LabelStudioError(
            "the local server was started without builder's organization guard: restart it "
            f"(`builder server stop`, then `builder server start`) {when}"
        )
    return state


def isolate_members(connection: Connection, project: Project, state: server.ServerState) -> int:
    """Move each annotator account still in the first organization into one of its own; how many were moved."""
    members = _annotators_in_first_organization(connection)
    isolate_annotators(project.root, state, [user.email for user in members])  # one Django start for them all
    return len(members)


def push_blind(
    connection: Connection,
    project: Project,
    sentences: Iterable[dict] | str | Path,
    predictor=None,
    batch_size: int = BATCH_SIZE,
) -> BlindPushResult:
    """Give every new sentence to `annotators_per_sentence` annotators and push each share into its copy.

    Sentences some copy already holds keep their annotators (re-running a push changes nothing); the new ones, and
    any a removal left short, go to the annotators with the fewest sentences (an annotator added later is given new
    ones first), never to one who has the sentence."""
    state = guarded_local_state(connection, project, "before a blind push")
    isolated = isolate_members(connection, project, state)
    organizations = read_organizations(project.root)
    if isinstance(sentences, (str, Path)):
        from builder.sentences.splitting import iter_sentences

        sentences = iter_sentences(Path(sentences))
    listed = list(sentences)
    copy = copy_project(project)
    held: dict[str, set[str]] = {}
    for email, organization in organizations.items():
        reached = organization.connection(connection.url)
        project_id = find_project(reached, copy)
        held[email] = existing_sentence_ids(reached, project_id) if project_id is not None else set()
    wanted = list(dict.fromkeys(sentence["id"] for sentence in listed))
    shared = (read_blind_marker(project.root) or {"holders": {}})["holders"]  # labelled while the project was shared
    holders = {
        sentence_id: {email for email, ids in held.items() if sentence_id in ids} | set(shared.get(sentence_id, ()))
        for sentence_id in wanted
    }
    # removed annotators (`builder annotators remove`) are given nothing: what they did stays in their copy
    active = {email for email, organization in organizations.items() if not organization.removed}
    loads = {email: len(held[email].intersection(wanted)) for email in active}
    per = project.annotators_per_sentence
    if any(not who for who in holders.values()):
        assign([], loads, per)  # refuses fewer annotators than annotators_per_sentence
    # new sentences, and those left short by a removal when too few annotators remained, topped up to the overlap
    plan, short = hand_over({s: who for s, who in holders.items() if len(who) < per}, loads, per, seed=project.name)
    result = BlindPushResult(annotators=len(active), created=len(plan), skipped=len(wanted) - len(plan))
    result.short = short
    result.isolated = isolated
    # each copy's tasks made by the guard (builder/labelstudio/blind_import.py)
    importer = None
    if plan and adds_tasks(connection):
        delete_staging_leftovers(connection)
        importer = GuardImport(connection)
    for email, organization in sorted(organizations.items()):
        if email not in active:
            continue
        share = [s for s in listed if s["id"] in held[email] or email in plan.get(s["id"], ())]
        result.copies[email] = push_sentences(
            organization.connection(connection.url),
            copy,
            share,
            predictor,
            batch_size,
            progress=False,
            importer=importer,
        )
    return result


def list_blind_annotators(connection: Connection, project: Project):
    """`builder annotators list` of a blind project: per annotator, the tasks of their copy (assigned), those
    they annotated or skipped (done), and the rest (remaining), read with their organization's admin token."""
    from builder.labelstudio.accounts import AFTER_FIRST_PULL, Annotator, AnnotatorList, _progress, _pseudonyms

    copy, rows, sentences, pushed = copy_project(project), [], set(), False
    organizations = read_organizations(project.root)
    for email, organization in sorted(organizations.items()):
        reached = organization.connection(connection.url)
        project_id = find_project(reached, copy)
        user_id = next((u.id for u in organization_users(reached) if u.email == email and u.active), None)
        active = user_id is not None and not organization.removed
        assigned = annotated = skipped = 0
        if project_id is not None:
            pushed = True
            progress = _progress(reached, project_id)
            sentences |= existing_sentence_ids(reached, project_id)
            if user_id is None:  # removed: Label Studio hides the e-mail; the copy's one annotator is them
                with calling(reached, "identifying the API key's account"):
                    admin = reached.client().users.whoami().id
                user_id = min(set(progress.annotated) | set(progress.skipped) - {admin}, default=None)
            assigned, annotated, skipped = progress.tasks, progress.annotated[user_id], progress.skipped[user_id]
        names = _pseudonyms(reached, copy) if user_id is not None else None
        rows.append(
            Annotator(
                email=email,
                pseudonym=names(user_id) if names else AFTER_FIRST_PULL,
                active=active,
                annotated=annotated,
                skipped=skipped,
                remaining=assigned - annotated - skipped if active else None,
                assigned=assigned,
            )
        )
    # accounts `annotators add` made since the last push (all of them before the first): still in the first
    # organization, with no copy until the next push isolates them and gives them their share
    waiting = [user for user in _annotators_in_first_organization(connection) if user.email not in organizations]
    names = _pseudonyms(connection, project) if waiting else None
    for user in sorted(waiting, key=lambda u: u.email):
        rows.append(
            Annotator(
                email=user.email,
                pseudonym=names(user.id) if names else AFTER_FIRST_PULL,
                active=True,
                annotated=0,
                skipped=0,
                remaining=None,
                assigned=0,
            )
        )
    return AnnotatorList(project.project_title, len(sentences), project.annotators_per_sentence, rows, pushed)
