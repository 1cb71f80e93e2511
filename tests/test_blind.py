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

from builder.errors import LabelStudioError
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
        email, password = f"{name}-{suffix}@example.org", f"pw-{uuid.uuid4().hex}"
        who = annotator_connection(ls, email, password)
        organization = isolate_annotator(_root(ls_server), ls_server, email)
        project_id, tasks = _copy(ls.url, organization.token, f"copy {name} {suffix}", ["one", "two"])
        made[name] = {"email": email, "org": organization, "project": project_id, "tasks": tasks, "me": who}
        made[name]["password"] = password
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


def test_an_annotator_opens_no_page_of_another_copy(ls, two_blind_annotators):
    """Logged in (a browser's session, not a token): the other copy's Data Manager and settings pages are 404."""
    from .test_annotators import _plain_session, _whoami

    made = two_blind_annotators
    for viewer, other in (("ann", "bob"), ("bob", "ann")):
        session = _plain_session()
        login = f"{ls.url}/user/login/"
        _form_login(session, login, made[viewer]["email"], made[viewer]["password"])
        assert _whoami(session, ls.url) == made[viewer]["email"]
        for page in ("/projects/{}/data/", "/projects/{}/settings/", "/projects/{}/"):
            with session.open(ls.url + page.format(made[viewer]["project"])) as answer:
                assert answer.status == 200
            with pytest.raises(urllib.error.HTTPError) as refused:
                session.open(ls.url + page.format(made[other]["project"]))
            assert refused.value.code == 404
            assert made[other]["email"] not in refused.value.read().decode(errors="replace")


def _form_login(session, login: str, email: str, password: str) -> None:
    import re
    import urllib.parse

    with session.open(login) as page:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode()).group(1)
    data = urllib.parse.urlencode({"email": email, "password": password, "csrfmiddlewaretoken": token}).encode()
    session.open(urllib.request.Request(login, data=data, headers={"Referer": login})).close()


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


def _isolate_request(url: str, token: str, entries) -> tuple[int, object]:
    from builder.labelstudio.isolation import ISOLATE_PATH

    return call(url, token, "POST", ISOLATE_PATH, entries)


def _active_organization(url: str, token: str) -> int:
    return call(url, token, "GET", "/api/current-user/whoami")[1]["active_organization"]


def test_the_move_into_organizations_is_made_inside_the_running_server(ls, ls_server, monkeypatch):
    """No Django process of its own (10 s or more each time): the local server's guard moves the accounts."""
    from builder.labelstudio import isolation

    def no_process(*args):
        raise AssertionError("a Django process was started to move the accounts")

    monkeypatch.setattr(isolation, "_isolate_in_new_process", no_process)
    suffix = uuid.uuid4().hex[:8]
    people = {name: annotator_connection(ls, f"{name}-{suffix}@example.org", f"pw-{uuid.uuid4().hex}") for name in "xy"}
    before = _active_organization(ls.url, ls.api_key)
    made = isolation.isolate_annotators(_root(ls_server), ls_server, [f"{name}-{suffix}@example.org" for name in "xy"])
    organizations = {entry.organization for entry in made.values()}
    assert len(organizations) == 2 and before not in organizations
    for name, person in people.items():
        assert _active_organization(ls.url, person.api_key) == made[f"{name}-{suffix}@example.org"].organization
    from .test_annotators import _plain_session, _whoami

    entry = made[f"x-{suffix}@example.org"]  # builder acts as its admin through the token it recorded
    assert call(ls.url, entry.token, "GET", "/api/current-user/whoami")[1]["email"] == entry.admin
    session = _plain_session()  # and nobody logs in as it: it has no usable password (none was hashed)
    for password in ("", "!", entry.token):
        _form_login(session, f"{ls.url}/user/login/", entry.admin, password)
        assert _whoami(session, ls.url) is None
    assert "password" not in json.loads(isolation.organizations_path(_root(ls_server)).read_text())[entry.email]
    with pytest.raises(LabelStudioError, match="no account with this e-mail"):
        isolation.isolate_annotators(_root(ls_server), ls_server, [f"nobody-{suffix}@example.org"])


def test_only_builders_admin_token_may_move_accounts(ls, two_blind_annotators):
    """The guard's move request fails closed: an annotator's token, an organization admin's token, no token, a
    session-less GET, an admin outside builder's own domain (which would reset another account's password and
    token) are all refused, and nothing moves."""
    made, url = two_blind_annotators, ls.url
    ann, bob = made["ann"], made["bob"]
    entry = {
        "email": bob["email"],
        "admin": "org-curious@builder.local",
        "token": "a" * 40,
        "title": "curious",
    }
    before = {name: _active_organization(url, made[name]["me"].api_key) for name in ("ann", "bob")}
    for token in (ann["me"].api_key, bob["me"].api_key, ann["org"].token, "0" * 40):
        status, answer = _isolate_request(url, token, [entry])
        assert status in (401, 403), (status, answer)
    status, _ = call(url, ls.api_key, "GET", "/builder-guard/isolate-annotators/")
    assert status == 405
    for wrong in ({**entry, "admin": ann["email"]}, {**entry, "email": "org-x@builder.local"}, {**entry, "x": 1}, {}):
        assert _isolate_request(url, ls.api_key, [wrong])[0] == 400
    admin_email = call(url, ls.api_key, "GET", "/api/current-user/whoami")[1]["email"]
    assert _isolate_request(url, ls.api_key, [{**entry, "email": admin_email}])[0] == 400  # never a superuser
    after = {name: _active_organization(url, made[name]["me"].api_key) for name in ("ann", "bob")}
    assert after == before
    # the annotator's password and token still work: no account was changed
    assert call(url, ann["me"].api_key, "GET", f"/api/projects/{ann['project']}/")[0] == 200
    assert call(url, ann["org"].token, "GET", f"/api/projects/{ann['project']}/")[0] == 200


def test_a_server_an_older_builder_started_still_moves_accounts(ls, ls_server, monkeypatch):
    """A server whose guard predates the move request answers Label Studio's own page: builder falls back on a
    Django process of its own."""
    from builder.labelstudio import isolation

    monkeypatch.setattr(isolation, "ISOLATE_PATH", "/builder-guard/no-such-request/")
    email = f"old-{uuid.uuid4().hex[:8]}@example.org"
    person = annotator_connection(ls, email, f"pw-{uuid.uuid4().hex}")
    made = isolation.isolate_annotator(_root(ls_server), ls_server, email)
    assert _active_organization(ls.url, person.api_key) == made.organization != _active_organization(ls.url, ls.api_key)


# --- blind push -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blind_server(tmp_path_factory, migrated_label_studio):
    """A local server of its own (its project folder is the blind project's), with three annotator accounts
    signed up through the invite link (a fourth joins in the blind push test): (root, state, admin connection,
    {e-mail: annotator connection})."""
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

    project = make_project(root, "Blind stance", blind=blind)
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


def test_annotators_list_before_the_first_blind_push_lists_the_accounts(blind_server):
    """Issue 27 point 9, blind: before the first push (this module's next test makes it) every account is still
    in the first organization, with no copy; `builder annotators list` shows them, assigned 0, and says nothing
    is pushed yet, in every format (it failed with "unknown project" in a shared project on main)."""
    from .conftest import cli_env, run_cli

    root, state, admin, people = blind_server
    _blind_project(root)
    assert read_organizations(root) == {}  # nothing pushed yet
    for fmt in ("table", "json", "csv"):
        listed = run_cli("annotators", "list", "--format", fmt, env=cli_env(admin), cwd=root)
        assert listed.returncode == 0, listed.stderr
        assert "nothing pushed yet" in (listed.stdout if fmt == "table" else listed.stderr)
        assert not any(email in listed.stdout + listed.stderr for email in people)
        if fmt == "json":
            listing = json.loads(listed.stdout)
            assert listing["pushed"] is False and listing["tasks"] == 0
            rows = [(r["email"], r["assigned"], r["annotated"], r["remaining"]) for r in listing["annotators"]]
            assert sorted(rows) == [
                ("a•••@example.org", 0, 0, None),
                ("b•••@example.org", 0, 0, None),
                ("c•••@example.org", 0, 0, None),
            ]
        if fmt == "table":
            assert listed.stdout.splitlines()[1].split()[:3] == ["pseudonym", "active", "assigned"]


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
    # one of the module's annotators from now on: the blind pull test labels every copy with `people`
    people[newcomer] = annotator_connection(admin, newcomer, f"pw-{uuid.uuid4().hex}")
    # until the next push gives them a copy, `annotators list` shows them with nothing assigned
    from builder.labelstudio.blind_push import list_blind_annotators

    waiting = list_blind_annotators(admin, project)
    assert waiting.pushed and waiting.tasks == 7
    assert {row.email: row.assigned for row in waiting.annotators} == {
        **{email: len(ids) for email, ids in held.items()},
        newcomer: 0,
    }
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


# --- blind pull -------------------------------------------------------------------------------------------------


def _stance_for(project, sentence_id: str, email: str) -> str:
    """A label per (sentence, annotator) that makes annotators disagree on some sentences."""
    import hashlib

    values = [label.value for label in project.stance_labels]
    return values[hashlib.sha256(f"{sentence_id}/{email}".encode()).digest()[0] % 2]


def _label(url: str, token: str, task_id: int, stance: str) -> None:
    result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]
    status, answer = call(url, token, "POST", f"/api/tasks/{task_id}/annotations", {"result": result})
    assert status == 201, answer


def _tasks_of(url: str, token: str, project_id: int) -> dict[str, int]:
    status, tasks = call(url, token, "GET", f"/api/tasks?project={project_id}&page_size=1000")
    assert status == 200
    return {task["data"]["sentence_id"]: task["id"] for task in tasks["tasks"]}


def test_blind_pull_merges_the_copies_into_the_snapshot_a_shared_project_gives(blind_server, ls, tmp_path):
    """The same labels, by the same annotators, in a shared project (the session's server) and in a blind one:
    the snapshots hold the same annotations per sentence under the same pseudonyms, `builder quality` gives the
    same figures, and an incremental blind pull gives the bytes of a full one."""
    import shutil

    from builder.labelstudio.blind_pull import pull_blind
    from builder.labelstudio.blind_push import list_blind_annotators, push_blind
    from builder.labelstudio.pull import pull
    from builder.labelstudio.push import push_sentences
    from builder.pseudonyms import key_path
    from builder.records.quality import quality_report

    from .conftest import make_project
    from .test_labelstudio import synthetic_sentences

    root, state, admin, people = blind_server
    project = _blind_project(root)
    sentences = synthetic_sentences(10, "blind")
    push_blind(admin, project, sentences)
    given, copies = {}, {}  # sentence id -> annotators, as the blind push gave them; e-mail -> its copy's tasks
    for email, me in people.items():
        [copy] = call(admin.url, me.api_key, "GET", "/api/projects")[1]["results"]
        copies[email] = _tasks_of(admin.url, me.api_key, copy["id"])
        for sentence_id, task_id in copies[email].items():
            _label(admin.url, me.api_key, task_id, _stance_for(project, sentence_id, email))
            given.setdefault(sentence_id, []).append(email)
    blind_out = tmp_path / "blind.jsonl"
    assert pull_blind(admin, project, blind_out).written == 10
    # the same labels in a shared project: same e-mails, same project name, same pseudonym key
    shared_root = tmp_path / "shared"
    shared = make_project(shared_root, f"Shared twin {uuid.uuid4().hex[:6]}")
    key_path(shared_root).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(key_path(root), key_path(shared_root))
    push_sentences(ls, shared, sentences)
    shared_id = [p.id for p in ls.client().projects.list() if p.title == shared.project_title][0]
    tokens = {email: annotator_connection(ls, email, f"pw-{uuid.uuid4().hex}").api_key for email in people}
    tasks = _tasks_of(ls.url, ls.api_key, shared_id)
    for sentence_id, emails in sorted(given.items()):
        for email in emails:
            _label(ls.url, tokens[email], tasks[sentence_id], _stance_for(project, sentence_id, email))
    shared_out = tmp_path / "shared.jsonl"
    pull(ls, shared, shared_out)

    def labels(path: Path) -> dict:
        out = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            task = json.loads(line)
            assert sorted(task) == ["annotations", "data", "predictions", "task_id"]
            out[task["data"]["sentence_id"]] = sorted(
                (a["annotator"], json.dumps(a["result"], sort_keys=True)) for a in task["annotations"]
            )
        return out

    assert labels(blind_out) == labels(shared_out) and all(len(v) == 2 for v in labels(blind_out).values())
    listing = list_blind_annotators(admin, project)  # `builder annotators list`: assigned, done, remaining
    assert listing.tasks == 10 and listing.overlap == 2
    rows = {row.email: (row.assigned, row.annotated, row.remaining) for row in listing.annotators}
    assert rows == {email: (len(tasks), len(tasks), 0) for email, tasks in copies.items()}
    blind_quality = quality_report(project, blind_out, "json").text
    assert blind_quality == quality_report(shared, shared_out, "json").text
    # incremental equals full, byte for byte, after an annotator labels again in their copy
    email = "ann@example.org"
    sentence_id, task_id = sorted(copies[email].items())[0]
    _label(admin.url, people[email].api_key, task_id, _stance_for(project, sentence_id, "again"))
    pull_blind(admin, project, blind_out, since_last=True)
    incremental = blind_out.read_bytes()
    pull_blind(admin, project, blind_out)
    assert blind_out.read_bytes() == incremental
    assert len(labels(blind_out)[sentence_id]) == 3


def test_builder_pull_of_a_blind_project_takes_the_options_of_pull(blind_server, tmp_path):
    """`builder pull` (the command the README's steps run) pulls a blind project's copies with the options it
    gives a shared project's pull (`--accept-changes` among them): one line of summary, no traceback, the bytes
    `pull_blind` writes."""
    from builder.labelstudio.blind_pull import pull_blind
    from builder.labelstudio.blind_push import push_blind

    from .conftest import run_cli
    from .test_labelstudio import synthetic_sentences

    root, state, admin, people = blind_server
    project = _blind_project(root)
    push_blind(admin, project, synthetic_sentences(3, "blind cli"))
    email, me = sorted(people.items())[0]
    [copy] = call(admin.url, me.api_key, "GET", "/api/projects")[1]["results"]
    sentence_id, task_id = sorted(_tasks_of(admin.url, me.api_key, copy["id"]).items())[0]
    _label(admin.url, me.api_key, task_id, _stance_for(project, sentence_id, "cli"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("LABEL_STUDIO_")}  # the local server
    for flags in ([], ["--accept-changes"], ["--since-last", "--accept-changes"]):
        done = run_cli("pull", "-o", tmp_path / "cli.jsonl", *flags, cwd=root, env=env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (flags, done.stderr)
        assert done.stdout.startswith("pull (") and done.stdout.count("\n") == 1, done.stdout
    pull_blind(admin, project, tmp_path / "library.jsonl")
    assert (tmp_path / "cli.jsonl").read_bytes() == (tmp_path / "library.jsonl").read_bytes()
    assert sentence_id in (tmp_path / "cli.jsonl").read_text(encoding="utf-8")


def test_an_earlier_builder_s_record_of_organizations_still_reads(tmp_path):
    """`.builder/organizations.json` of an earlier builder holds each admin's password, which nothing uses now:
    it reads, without it."""
    from builder.labelstudio import isolation

    path = isolation.organizations_path(tmp_path)
    path.parent.mkdir(parents=True)
    entry = {"email": "a@example.org", "organization": 3, "admin": "org-1@builder.local", "token": "t" * 40}
    path.write_text(json.dumps({"a@example.org": {**entry, "password": "p" * 24}}), encoding="utf-8")
    read = isolation.read_organizations(tmp_path)["a@example.org"]
    assert (read.organization, read.admin, read.token) == (3, "org-1@builder.local", "t" * 40)
