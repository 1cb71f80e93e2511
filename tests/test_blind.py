"""Blind annotation on the local server (issue 26): each annotator in an organization of their own, and the
guard the local server runs answering 404 for any object of another organization. Real Label Studio, real
tokens: what a curious annotator can and cannot reach with their own API token."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from builder.labelstudio.isolation import guarded, isolate_annotator, organizations_path, read_organizations
from builder.labelstudio.users import annotator_connection

from .conftest import ROOT

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="stance" toName="text"><Choice value="pro"/><Choice value="anti"/></Choices></View>'
)


def call(url: str, token: str, method: str, path: str, body=None) -> tuple[int, object]:
    """(status, decoded JSON or text) of one request with `token`."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Token {token}", **({"Content-Type": "application/json"} if data else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def _root(state) -> Path:
    return Path(state.data_dir).parent.parent


def _copy(url: str, token: str, title: str, texts: list[str]) -> tuple[int, list[int]]:
    """A project in the token's organization with one task per text: (project id, task ids)."""
    status, project = call(url, token, "POST", "/api/projects", {"title": title, "label_config": CONFIG})
    assert status == 201, project
    status, _ = call(url, token, "POST", f"/api/projects/{project['id']}/import", [{"text": t} for t in texts])
    assert status == 201
    status, tasks = call(url, token, "GET", f"/api/tasks?project={project['id']}&fields=all")
    return project["id"], sorted(task["id"] for task in tasks["tasks"])


@pytest.fixture
def two_blind_annotators(ls, ls_server):
    """Two annotator accounts (signed up through the invite link), each moved into an organization of their own
    holding their own copy of a two-task project; (annotator, organization, project id, task ids, connection)."""
    suffix = uuid.uuid4().hex[:8]
    made = {}
    for name in ("ann", "bob"):
        email = f"{name}-{suffix}@example.org"
        who = annotator_connection(ls, email, f"pw-{uuid.uuid4().hex}")
        organization = isolate_annotator(_root(ls_server), ls_server, email)
        project_id, tasks = _copy(ls.url, organization.token, f"copy {name} {suffix}", ["one", "two"])
        made[name] = {"email": email, "org": organization, "project": project_id, "tasks": tasks, "me": who}
    return made


def _labels(url: str, annotator: dict) -> dict:
    """The annotator labels their first task and leaves a draft on the second, with their own token."""
    token, (first, second) = annotator["me"].api_key, annotator["tasks"]
    result = [{"from_name": "stance", "to_name": "text", "type": "choices", "value": {"choices": ["pro"]}}]
    status, annotation = call(url, token, "POST", f"/api/tasks/{first}/annotations", {"result": result})
    assert status == 201, annotation
    status, draft = call(url, token, "POST", f"/api/tasks/{second}/drafts", {"result": result})
    assert status == 201, draft
    return {"annotation": annotation["id"], "draft": draft["id"]}


def test_local_server_runs_the_guard(ls_server):
    assert guarded(ls_server.url)


@pytest.mark.parametrize("first", ["ann", "bob"])
def test_an_annotator_reaches_nothing_of_another_with_their_own_token(ls, two_blind_annotators, first):
    made, url = two_blind_annotators, ls.url
    second = "bob" if first == "ann" else "ann"
    made[first].update(_labels(url, made[first]))
    made[second].update(_labels(url, made[second]))
    for viewer, other in (("ann", "bob"), ("bob", "ann")):
        token, theirs = made[viewer]["me"].api_key, made[other]
        # their own work: reachable
        assert call(url, token, "GET", f"/api/annotations/{made[viewer]['annotation']}/")[0] == 200
        status, own_task = call(url, token, "GET", f"/api/tasks/{made[viewer]['tasks'][0]}/")
        assert status == 200 and [a["id"] for a in own_task["annotations"]] == [made[viewer]["annotation"]]
        # the other's annotation, draft, task and project: 404 whatever the path or the method
        for method, path, body in (
            ("GET", f"/api/annotations/{theirs['annotation']}/", None),
            ("PATCH", f"/api/annotations/{theirs['annotation']}/", {"result": []}),
            ("DELETE", f"/api/annotations/{theirs['annotation']}/", None),
            ("POST", f"/api/annotations/{theirs['annotation']}/convert-to-draft", {}),
            ("GET", f"/api/drafts/{theirs['draft']}/", None),
            ("PATCH", f"/api/drafts/{theirs['draft']}/", {"result": []}),
            ("GET", f"/api/tasks/{theirs['tasks'][0]}/", None),
            ("GET", f"/api/tasks/{theirs['tasks'][0]}/annotations/", None),
            ("GET", f"/api/tasks/{theirs['tasks'][1]}/drafts", None),
            ("GET", f"/api/tasks/{theirs['tasks'][0]}/agreement/", None),
            ("GET", f"/api/projects/{theirs['project']}/", None),
            ("GET", f"/api/projects/{theirs['project']}/export?exportType=JSON", None),
            ("GET", f"/api/projects/{theirs['project']}/annotators/", None),
            ("GET", f"/api/projects/{theirs['project']}/next/", None),
            ("GET", f"/api/dm/columns/?project={theirs['project']}", None),
            ("GET", f"/api/dm/project/?project={theirs['project']}", None),
            ("GET", f"/api/tasks?project={theirs['project']}&fields=all", None),
            ("POST", "/api/dm/views/", {"project": theirs["project"]}),
            ("POST", f"/api/dm/actions/?project={theirs['project']}&id=delete_annotations", {}),
            ("GET", f"/api/organizations/{theirs['org'].organization}", None),
            ("GET", f"/api/users/{theirs['me'].api_key and _user_id(url, theirs['me'].api_key)}/", None),
        ):
            status, answer = call(url, token, method, path, body)
            assert status == 404, (viewer, method, path, status, answer)
            assert theirs["email"] not in json.dumps(answer)
        # lists: only their own organization's
        status, projects = call(url, token, "GET", "/api/projects")
        assert status == 200 and [p["id"] for p in projects["results"]] == [made[viewer]["project"]]
        status, users = call(url, token, "GET", "/api/users")
        assert status == 200 and theirs["email"] not in json.dumps(users)
    # nothing changed: each annotation is still its author's
    for name in ("ann", "bob"):
        status, annotation = call(url, made[name]["org"].token, "GET", f"/api/annotations/{made[name]['annotation']}/")
        assert status == 200 and annotation["result"][0]["value"]["choices"] == ["pro"]


def _user_id(url: str, token: str) -> int:
    return call(url, token, "GET", "/api/current-user/whoami")[1]["id"]


def test_the_first_organizations_admin_reaches_no_annotators_copy(ls, two_blind_annotators):
    """The main admin (the first organization's) has no way into a copy either: builder reads each copy with that
    organization's own admin token."""
    made = two_blind_annotators
    made["ann"].update(_labels(ls.url, made["ann"]))
    assert call(ls.url, ls.api_key, "GET", f"/api/annotations/{made['ann']['annotation']}/")[0] == 404
    assert call(ls.url, made["ann"]["org"].token, "GET", f"/api/annotations/{made['ann']['annotation']}/")[0] == 200


def test_isolation_is_idempotent_and_its_tokens_stay_private(ls_server, two_blind_annotators):
    made, root = two_blind_annotators, _root(ls_server)
    again = isolate_annotator(root, ls_server, made["ann"]["email"])
    assert again == made["ann"]["org"] and again.organization != made["bob"]["org"].organization
    path = organizations_path(root)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_organizations(root)[made["ann"]["email"]].token == again.token
    assert again.token not in repr(again) and made["ann"]["email"] not in repr(again)
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".builder/organizations.json"], cwd=ROOT, capture_output=True
    ).returncode
    assert ignored == 0  # never committed


# --- blind push -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blind_server(tmp_path_factory, migrated_label_studio):
    """A local server of its own (its project folder is the blind project's), with three annotator accounts
    signed up through the invite link: (root, state, admin connection, {e-mail: annotator connection})."""
    from builder.labelstudio import server
    from builder.labelstudio.client import Connection

    from .conftest import free_port, seed_local_server

    root = tmp_path_factory.mktemp("blind")
    seed_local_server(migrated_label_studio, root)
    state = server.start(root, free_port(), log=lambda message: None)
    admin = Connection(state.url, state.token, "local server", state.data_dir)
    people = {}
    for name in ("ann", "bob", "cy"):
        email = f"{name}@example.org"
        people[email] = annotator_connection(admin, email, f"pw-{uuid.uuid4().hex}")
    yield root, state, admin, people
    server.stop(root)


def _blind_project(root: Path, blind="true"):
    from .conftest import make_project

    project = make_project(root, "Blind stance")
    text = (root / "builder.toml").read_text(encoding="utf-8")
    text = text.replace("[annotation]\n", f"[annotation]\nblind = {blind}\n", 1)
    (root / "builder.toml").write_text(text, encoding="utf-8")
    from builder.project import load_project

    project = load_project(root / "builder.toml")
    assert project.annotators_per_sentence == 2
    return project


def _copies(url: str, root: Path) -> dict[str, list[str]]:
    """Each annotator's copy: the sentence ids of its tasks, read with that organization's admin token."""
    held = {}
    for email, organization in read_organizations(root).items():
        status, projects = call(url, organization.token, "GET", "/api/projects")
        assert status == 200 and len(projects["results"]) == 1
        assert projects["results"][0]["maximum_annotations"] == 1  # one annotator per task inside a copy
        status, tasks = call(url, organization.token, "GET", f"/api/tasks?project={projects['results'][0]['id']}")
        held[email] = sorted(task["data"]["sentence_id"] for task in tasks["tasks"])
    return held


def test_blind_push_gives_each_sentence_to_exactly_two_annotators_balanced_and_stable(blind_server):
    from collections import Counter

    from builder.labelstudio.blind_push import is_blind, push_blind

    from .test_labelstudio import synthetic_sentences

    root, state, admin, people = blind_server
    project = _blind_project(root)
    assert is_blind(project, admin)
    sentences = synthetic_sentences(7, "blind")
    result = push_blind(admin, project, sentences)
    assert (result.annotators, result.created, result.skipped) == (3, 7, 0)
    held = _copies(admin.url, root)
    assert sorted(held) == sorted(people)
    reach = Counter(sentence_id for ids in held.values() for sentence_id in ids)
    assert reach == dict.fromkeys((s["id"] for s in sentences), 2)  # exactly 2 distinct annotators each
    assert sorted(len(ids) for ids in held.values()) == [4, 5, 5]  # 14 over 3: balanced
    # each annotator, with their own token, sees their copy and its tasks only
    for email, me in people.items():
        status, projects = call(admin.url, me.api_key, "GET", "/api/projects")
        [copy] = projects["results"]
        status, tasks = call(admin.url, me.api_key, "GET", f"/api/tasks?project={copy['id']}")
        assert sorted(t["data"]["sentence_id"] for t in tasks["tasks"]) == held[email]
    # the same push again changes nothing
    again = push_blind(admin, project, sentences)
    assert (again.created, again.skipped) == (0, 7) and _copies(admin.url, root) == held
    # a fourth annotator, added mid-project, is given the new sentences first
    newcomer = "dee@example.org"
    annotator_connection(admin, newcomer, f"pw-{uuid.uuid4().hex}")
    more = synthetic_sentences(10, "blind")
    later = push_blind(admin, project, more)
    assert (later.annotators, later.created, later.skipped, later.isolated) == (4, 3, 7, 1)
    after = _copies(admin.url, root)
    assert all(set(held[email]) <= set(after[email]) for email in held)  # nothing moved
    assert len(after[newcomer]) == 3  # in all 3 new sentences (each needs two annotators: 3 + 3 = 6 places)
    assert Counter(i for ids in after.values() for i in ids) == dict.fromkeys((s["id"] for s in more), 2)


def test_blind_auto_is_blind_on_the_local_server_only(blind_server, tmp_path):
    from builder.labelstudio.blind_push import REMOTE_WARNING, is_blind, remote_warning
    from builder.labelstudio.client import Connection

    root, state, admin, people = blind_server
    project = _blind_project(root, '"auto"')
    assert is_blind(project, admin) and remote_warning(project, admin) is None
    elsewhere = Connection(admin.url.replace("127.0.0.1", "localhost"), admin.api_key, "environment")
    assert not is_blind(project, elsewhere)  # not builder's local server (as far as builder can tell)
    fresh = _blind_project(tmp_path, '"auto"')
    assert remote_warning(fresh, elsewhere) == REMOTE_WARNING
