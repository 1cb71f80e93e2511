"""Moving work in a blind project (issue 26, points 1, 2 and 6) on real local servers: `annotators remove` hands the
removed annotator's unstarted share to the others, and `annotators blind` makes a shared project blind, keeping
every annotation, ground truth and pseudonym (a pull gives the same snapshot before and after). The project
folders leave `[annotation] blind` out: "auto", the default, is what makes them blind."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from pathlib import Path

import pytest

from builder.labelstudio.isolation import read_organizations
from builder.labelstudio.users import annotator_connection

from .conftest import free_port, make_project, run_cli, seed_local_server
from .test_blind import call
from .test_labelstudio import synthetic_sentences


def local_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO")}


def _server(tmp_path_factory, migrated_label_studio, name: str, people: tuple[str, ...], blind: str | None):
    from builder.labelstudio import server
    from builder.labelstudio.client import Connection

    root = tmp_path_factory.mktemp(name)
    seed_local_server(migrated_label_studio, root)
    project = make_project(root, f"{name} stance", blind=blind)
    state = server.start(root, free_port(), log=lambda message: None)
    admin = Connection(state.url, state.token, "local server", state.data_dir)
    accounts = {f"{who}@example.org": f"pw-{uuid.uuid4().hex}" for who in people}
    connections = {email: annotator_connection(admin, email, password) for email, password in accounts.items()}
    return root, project, admin, connections


@pytest.fixture(scope="module")
def blind_team(tmp_path_factory, migrated_label_studio):
    """A local server whose project leaves `blind` out (the default, "auto"), with four annotators."""
    from builder.labelstudio import server

    made = _server(tmp_path_factory, migrated_label_studio, "handover", ("ann", "bob", "cy", "dee"), None)
    yield made
    server.stop(made[0])


def _copies(url: str, root: Path) -> dict[str, dict[str, dict]]:
    """Each annotator's copy: sentence id -> its task (with annotations), read with the organization's admin token."""
    held = {}
    for email, organization in read_organizations(root).items():
        status, projects = call(url, organization.token, "GET", "/api/projects")
        assert status == 200
        tasks = {}
        for project in projects["results"]:
            status, page = call(url, organization.token, "GET", f"/api/tasks?project={project['id']}&fields=all")
            tasks.update({task["data"]["sentence_id"]: task for task in page["tasks"]})
        held[email] = tasks
    return held


def _annotate(url: str, token: str, task_id: int, cancelled: bool = False) -> None:
    result = [] if cancelled else [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {}}]
    if not cancelled:
        result[0]["value"] = {"choices": ["neutral"]}
    body = {"result": result, "was_cancelled": cancelled}
    status, answer = call(url, token, "POST", f"/api/tasks/{task_id}/annotations", body)
    assert status == 201, answer


def test_remove_hands_the_unstarted_share_to_the_others_and_keeps_what_was_done(blind_team):
    from builder.labelstudio.blind_handover import remove_blind_annotator
    from builder.labelstudio.blind_pull import pull_blind
    from builder.labelstudio.blind_push import is_blind, list_blind_annotators, push_blind

    root, project, admin, people = blind_team
    assert project.blind == "auto" and is_blind(project, admin)  # the default, on the local server
    sentences = synthetic_sentences(12, "hand")
    assert push_blind(admin, project, sentences).created == 12
    before = _copies(admin.url, root)
    assert sorted(len(tasks) for tasks in before.values()) == [6, 6, 6, 6]
    ann = "ann@example.org"
    mine = sorted(before[ann].items())
    _annotate(admin.url, people[ann].api_key, mine[0][1]["id"])
    _annotate(admin.url, people[ann].api_key, mine[1][1]["id"])
    _annotate(admin.url, people[ann].api_key, mine[2][1]["id"], cancelled=True)  # skipped: started too
    snapshot = root / "annotations" / "snapshot.jsonl"
    pull_blind(admin, project, snapshot)
    pulled = snapshot.read_bytes()

    removed = run_cli("annotators", "remove", ann, env=local_env(), cwd=root)
    assert removed.returncode == 0, removed.stderr
    after = _copies(admin.url, root)
    assert sorted(after[ann]) == [sentence_id for sentence_id, _ in mine[:3]]  # only what she started stays
    reach = Counter(sentence_id for tasks in after.values() for sentence_id in tasks)
    assert reach == dict.fromkeys((s["id"] for s in sentences), 2)  # still exactly 2 annotators per sentence
    receivers = {email for email in people if email != ann and set(after[email]) - set(before[email])}
    for sentence_id, _ in mine[3:]:  # each to one annotator who did not have it
        assert sum(sentence_id in after[email] and sentence_id not in before[email] for email in people) == 1
    loads = sorted(len(after[email]) for email in people if email != ann)
    assert sum(loads) == 21 and loads[-1] - loads[0] <= 2  # fewest first
    line = removed.stdout.strip()
    assert line.startswith("a•••@example.org removed (annotator-") and ann not in line
    assert line.endswith(
        "from their organization; their 3 annotated or skipped tasks stay; "
        f"3 unstarted sentences handed to {len(receivers)} other annotator(s)"
    ), line
    assert "\n" not in line and "(no pseudonym key" not in line and not removed.stderr
    # the handed task is the very one builder pushed: same data and pre-annotations
    for sentence_id, task in mine[3:]:
        given = next(tasks[sentence_id] for email, tasks in after.items() if sentence_id in tasks)
        assert given["data"] == task["data"]
        assert [p["result"] for p in given["predictions"]] == [p["result"] for p in task["predictions"]]
    # she can no longer reach her copy; what she did stays in the snapshot, under the same pseudonym
    assert call(admin.url, people[ann].api_key, "GET", f"/api/tasks/{mine[0][1]['id']}/")[0] in (403, 404)
    pull_blind(admin, project, snapshot)
    assert snapshot.read_bytes() == pulled
    rows = {row.email: row for row in list_blind_annotators(admin, project).annotators}
    assert (rows[ann].active, rows[ann].annotated, rows[ann].skipped, rows[ann].remaining) == (False, 2, 1, None)
    assert rows[ann].pseudonym.startswith("annotator-")
    # again: nothing more to do; a push gives her nothing
    again = remove_blind_annotator(admin, project, ann)
    assert again.was_removed and again.handed.sentences == 0 and again.kept == 3
    assert push_blind(admin, project, sentences).created == 0
    more = push_blind(admin, project, synthetic_sentences(14, "hand"))
    assert (more.annotators, more.created) == (3, 2) and len(_copies(admin.url, root)[ann]) == 3


def test_remove_says_how_many_sentences_are_short_when_too_few_annotators_remain(blind_team):
    from builder.labelstudio.blind_handover import remove_blind_annotator

    root, project, admin, people = blind_team
    bob, cy, dee = "bob@example.org", "cy@example.org", "dee@example.org"
    removed = remove_blind_annotator(admin, project, bob)  # nothing started: all of bob's share goes
    assert removed.kept == 0 and removed.handed.short == 0
    middle = _copies(admin.url, root)
    assert middle[bob] == {}
    expected_short = sum(1 for sentence_id in middle[cy] if sentence_id in middle[dee])
    cli = run_cli("annotators", "remove", cy, env=local_env(), cwd=root)
    assert cli.returncode == 0, cli.stderr
    assert cli.stderr.strip() == (
        f"{expected_short} sentences now reach fewer than 2 annotators: too few annotators remain "
        "(`builder annotators add`, then `builder push` tops them up)"
    )
    after = _copies(admin.url, root)
    assert after[cy] == {} and set(after[dee]) == {sid for tasks in after.values() for sid in tasks}
    reach = Counter(sentence_id for tasks in after.values() for sentence_id in tasks)
    assert sum(1 for n in reach.values() if n == 1) == expected_short and set(reach.values()) <= {1, 2}
    # a newcomer, then a push: the short sentences are topped up again, to exactly 2
    eve = "eve@example.org"
    people[eve] = annotator_connection(admin, eve, f"pw-{uuid.uuid4().hex}")
    from builder.labelstudio.blind_push import push_blind

    pushed = push_blind(admin, project, synthetic_sentences(14, "hand"))
    assert pushed.short == 0 and pushed.created >= expected_short
    reach = Counter(sentence_id for tasks in _copies(admin.url, root).values() for sentence_id in tasks)
    assert set(reach.values()) == {2}


# --- a shared project made blind ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_team(tmp_path_factory, migrated_label_studio):
    """A local server whose project is shared (blind = false) and three annotators."""
    from builder.labelstudio import server

    made = _server(tmp_path_factory, migrated_label_studio, "madeblind", ("ann", "bob", "cy"), "false")
    yield made
    server.stop(made[0])


def test_a_shared_project_made_blind_keeps_every_annotation_and_gives_the_unfinished_sentences(shared_team):
    from builder.labelstudio.blind_push import is_blind
    from builder.labelstudio.project_api import find_project
    from builder.labelstudio.push import push_sentences
    from builder.project import load_project

    root, project, admin, people = shared_team
    assert not is_blind(project, admin)
    sentences = synthetic_sentences(6, "made")
    push_sentences(admin, project, sentences)
    shared_id = find_project(admin, project)
    status, page = call(admin.url, admin.api_key, "GET", f"/api/tasks?project={shared_id}&page_size=100")
    task = {t["data"]["sentence_id"]: t["id"] for t in page["tasks"]}
    ann, bob, cy = "ann@example.org", "bob@example.org", "cy@example.org"
    s = [sentence["id"] for sentence in sentences]
    _annotate(admin.url, people[ann].api_key, task[s[0]])
    _annotate(admin.url, people[bob].api_key, task[s[0]])
    _annotate(admin.url, people[ann].api_key, task[s[1]])
    _annotate(admin.url, people[cy].api_key, task[s[1]])
    _annotate(admin.url, people[bob].api_key, task[s[2]], cancelled=True)
    status, annotations = call(admin.url, admin.api_key, "GET", f"/api/tasks/{task[s[0]]}/annotations/")
    status, _ = call(
        admin.url, admin.api_key, "PATCH", f"/api/annotations/{annotations[0]['id']}/", {"ground_truth": True}
    )
    assert status == 200
    pulled = run_cli("pull", env=local_env(), cwd=root)
    assert pulled.returncode == 0, pulled.stderr
    snapshot = root / "annotations" / "snapshot.jsonl"
    before = snapshot.read_bytes()
    assert b'"ground_truth":true' in before

    # blind left out ("auto"): a project shared on the server stays shared until it is moved
    toml = root / "builder.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("blind = false\n", "", 1), encoding="utf-8")
    project = load_project(toml)
    assert project.blind == "auto" and not is_blind(project, admin)
    made = run_cli("annotators", "blind", env=local_env(), cwd=root)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == (
        "blind: 3 annotators each in an organization of their own; the shared project's 6 tasks and their "
        "annotations stay and are pulled with the copies; 4 unfinished sentences given to annotators' copies "
        "(7 tasks), 2 already finished"
    )
    assert is_blind(project, admin)
    copies = _copies(admin.url, root)
    holders = {s[0]: {ann, bob}, s[1]: {ann, cy}, s[2]: {bob}}
    reach = Counter(sentence_id for tasks in copies.values() for sentence_id in tasks)
    assert reach == {s[2]: 1, s[3]: 2, s[4]: 2, s[5]: 2}  # topped up to 2 with those who labelled them
    assert all(email not in holders.get(sid, ()) for email, tasks in copies.items() for sid in tasks)
    # the annotators no longer reach the shared project
    for email, me in people.items():
        assert call(admin.url, me.api_key, "GET", f"/api/projects/{shared_id}/")[0] in (403, 404)
        assert call(admin.url, me.api_key, "GET", f"/api/tasks/{task[s[0]]}/")[0] in (403, 404)
    # the same snapshot, byte for byte: annotations, ground truth, pseudonyms
    pulled = run_cli("pull", env=local_env(), cwd=root)
    assert pulled.returncode == 0, pulled.stderr
    assert snapshot.read_bytes() == before
    # work in a copy joins the shared sentence's annotations; incremental equals full
    given = next(copies[email][s[2]] for email in copies if s[2] in copies[email])
    labeller = next(email for email in copies if s[2] in copies[email])
    _annotate(admin.url, people[labeller].api_key, given["id"])
    assert run_cli("pull", "--since-last", env=local_env(), cwd=root).returncode == 0
    incremental = snapshot.read_bytes()
    assert run_cli("pull", env=local_env(), cwd=root).returncode == 0
    assert snapshot.read_bytes() == incremental != before
    import json

    line = next(
        json.loads(t) for t in incremental.decode().splitlines() if json.loads(t)["data"]["sentence_id"] == s[2]
    )
    assert line["task_id"] == task[s[2]] and len(line["annotations"]) == 2
    # again: changes nothing
    rerun = run_cli("annotators", "blind", env=local_env(), cwd=root)
    assert rerun.returncode == 0 and "0 unfinished sentences given" in rerun.stdout
    assert _copies(admin.url, root).keys() == copies.keys()
