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
