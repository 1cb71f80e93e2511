"""Blind annotation as two annotators see it (issue 26, point 7): real headless Chromium on the real Label Studio.

A blind project (`blind = true`, 2 annotators per sentence) on a local server of its own, two accounts made by
builder (`annotators add`, named after their pseudonyms), one blind push. In both orders (ann labels a sentence
first, then bob; bob first, then ann), once the first has submitted, the second, logged in, opens the project
list, the Data Manager and the labeling page of the same sentence: nothing of the first is shown or even sent to
the browser (no annotation, no e-mail, no name; Label Studio 1.23.2 shows its "Compare All" control on
every labeling page, so what counts is that there is nothing of the other to compare), and their own API
token reaches nothing of the first either (the task, the annotation ids around the first's, the projects and
users lists).
"""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from builder.labelstudio.blind_push import push_blind
from builder.labelstudio.display_names import add_named_annotators
from builder.labelstudio.users import annotator_connection

from .conftest import in_ci
from .test_annotator_ui import CHROMIUM_NAMES, LAUNCH_ARGS, find_chromium
from .test_blind import _blind_project, _tasks_of, call
from .test_labelstudio import synthetic_sentences

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

LINE = ".builder-sentence .lsf-richtext__line"


@pytest.fixture(scope="module")
def chromium():
    """As tests/test_annotator_ui.py launches it (a missing browser fails, unless BUILDER_SKIP_BROWSER=1 outside CI)."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("BUILDER_SKIP_BROWSER") == "1" and not in_ci():
            pytest.skip("BUILDER_SKIP_BROWSER=1")
        pytest.fail(f"no chromium ({', '.join(CHROMIUM_NAMES)}, or BUILDER_CHROMIUM): apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@dataclass
class Member:
    email: str
    password: str
    pseudonym: str
    token: str
    user_id: int
    project: int  # their copy
    tasks: dict[str, int]  # sentence id -> task id in their copy
    annotations: list[int] = field(default_factory=list)  # theirs, as they submit them


@pytest.fixture(scope="module")
def blind_team(tmp_path_factory, migrated_label_studio):
    """A local server of its own whose folder is a blind project, two annotators made by builder (`annotators
    add`), and one blind push of two sentences (each to both): (url, {name: Member}, sentence ids)."""
    from builder.labelstudio import server
    from builder.labelstudio.client import Connection

    from .conftest import free_port, seed_local_server

    root = tmp_path_factory.mktemp("blind-browser")
    seed_local_server(migrated_label_studio, root)
    state = server.start(root, free_port(), log=lambda message: None)
    try:
        admin = Connection(state.url, state.token, "local server", state.data_dir)
        project = _blind_project(root)
        emails = {name: f"{name}@example.org" for name in ("ann", "bob")}
        added, pseudonyms = add_named_annotators(admin, project, emails.values())
        passwords = {account.email: account.password for account in added.accounts}
        sentences = synthetic_sentences(2, "bb")
        push_blind(admin, project, sentences)
        team = {}
        for name, email in emails.items():
            token = annotator_connection(admin, email, passwords[email]).api_key
            [copy] = call(state.url, token, "GET", "/api/projects")[1]["results"]
            me = call(state.url, token, "GET", "/api/current-user/whoami")[1]
            assert me["first_name"] == pseudonyms[email] and pseudonyms[email] not in email
            tasks = _tasks_of(state.url, token, copy["id"])
            assert sorted(tasks) == sorted(s["id"] for s in sentences)  # 2 annotators, 2 per sentence: both each
            team[name] = Member(email, passwords[email], pseudonyms[email], token, me["id"], copy["id"], tasks)
        yield state.url, team, [s["id"] for s in sentences]
    finally:
        server.stop(root)


@contextmanager
def logged_in(chromium, url: str, member: Member):
    """A page in a browser context of its own (its own cookies), logged in through the login form."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{url}/user/login/")
        page.fill('input[name="email"]', member.email)
        page.fill('input[name="password"]', member.password)
        page.click('button[type="submit"], input[type="submit"]')
        page.wait_for_load_state("networkidle")
        yield page
    finally:
        context.close()


def visit(page, address: str, ready: str | None = None, until=None) -> tuple[str, list[tuple[str, object]]]:
    """Open `address`; (the page's HTML and visible text, [(URL, decoded JSON)] of every answer the page got).

    `until(answers)`: wait (up to 90 s: the pages load slowly on a busy machine) until it holds."""
    answers, decoded = [], []

    def keep(answer) -> None:  # Playwright wants a Python function, not a bound built-in
        answers.append(answer)

    page.on("response", keep)
    try:
        page.goto(address)
        if ready:
            page.locator(ready).first.wait_for(timeout=90_000)
        page.wait_for_load_state("networkidle")
        deadline = time.monotonic() + 90
        while True:
            page.wait_for_timeout(500)
            while answers:
                answer = answers.pop(0)
                if "json" not in (answer.headers.get("content-type") or ""):
                    continue
                try:
                    decoded.append((answer.url, json.loads(answer.body() or b"null")))
                except Exception:  # a redirect or an answer without a body
                    continue
            if until is None or until(decoded) or time.monotonic() > deadline:
                break
        shown = page.content() + "\n" + page.locator("body").inner_text()
    finally:
        page.remove_listener("response", keep)
    return shown, decoded


def label_in_browser(chromium, url: str, member: Member, sentence_id: str) -> int:
    """`member` labels the sentence's task of their copy on the labeling page and submits; the annotation's id."""
    task_id = member.tasks[sentence_id]
    with logged_in(chromium, url, member) as page:
        visit(page, f"{url}/projects/{member.project}/data?task={task_id}", LINE)
        page.keyboard.press("1")  # the first stance, by its hotkey
        page.wait_for_timeout(300)
        page.get_by_role("button", name="Submit").click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, task = call(url, member.token, "GET", f"/api/tasks/{task_id}/")
            if status == 200 and task["annotations"]:
                break
            time.sleep(0.3)
    [annotation] = task["annotations"]
    assert author_of(annotation) == member.user_id
    member.annotations.append(annotation["id"])
    return annotation["id"]


def author_of(annotation: dict) -> int | None:
    """The annotation's author's id (`completed_by` is an id in some answers, the user in others)."""
    author = annotation.get("completed_by")
    return author.get("id") if isinstance(author, dict) else author


def traces_of(other: Member) -> list[str]:
    """What would give the other annotator away: their e-mail (or its name part) and their pseudonym."""
    return [other.email, other.email.split("@")[0] + "@", other.pseudonym]


def assert_nothing_of(other: Member, shown: str, answers: list[tuple[str, object]], where: str) -> None:
    """Neither the page nor any answer it got names `other`, holds their annotation or their task, or their id as
    an author (`completed_by`) or an annotator (the Data Manager's `annotators` column)."""
    everything = shown + "\n".join(json.dumps(body) for _, body in answers)
    for trace in traces_of(other):
        assert trace not in everything, (where, trace)
    for address, body in answers:
        for item in _dicts_in(body):
            assert item.get("project") != other.project, (where, address)
            assert author_of(item) != other.user_id, (where, address)
            annotators = item.get("annotators")
            assert not isinstance(annotators, list) or other.user_id not in annotators, (where, address)
            for annotation in item.get("annotations") or []:
                if isinstance(annotation, dict):
                    assert annotation.get("id") not in other.annotations, (where, address)


def _dicts_in(body) -> list[dict]:
    """Every object anywhere in a decoded answer."""
    found, stack = [], [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def tasks_loaded(answers: list[tuple[str, object]], task_id: int) -> list[dict]:
    """The task `task_id` as the labeling page's answers gave it (with its annotations)."""
    return [
        item for _, body in answers for item in _dicts_in(body) if item.get("id") == task_id and "annotations" in item
    ]


def listed_tasks(answers: list[tuple[str, object]]) -> set[int]:
    """Ids of the tasks the Data Manager's task lists held."""
    return {
        task["id"]
        for address, body in answers
        if isinstance(body, dict) and isinstance(body.get("tasks"), list)
        for task in body.get("tasks", [])
    }


def project_ids(answers: list[tuple[str, object]]) -> set[int]:
    """Ids of the projects the project list's answers hold."""
    ids = set()
    for address, body in answers:
        if re.search(r"/api/projects/?(\?|$)", address) and isinstance(body, dict):
            ids |= {project["id"] for project in body.get("results", [])}
    return ids


@pytest.mark.parametrize("first", ["ann", "bob"])
def test_the_second_annotator_sees_nothing_of_the_first_in_the_browser_or_the_api(chromium, blind_team, first):
    url, team, sentence_ids = blind_team
    second = "bob" if first == "ann" else "ann"
    one, two = team[first], team[second]
    sentence_id = sentence_ids[0 if first == "ann" else 1]  # each order on a sentence neither has labelled yet
    label_in_browser(chromium, url, one, sentence_id)

    with logged_in(chromium, url, two) as page:
        # the project list: their own copy only
        shown, answers = visit(page, f"{url}/projects/", until=project_ids)
        assert project_ids(answers) == {two.project}
        assert_nothing_of(one, shown, answers, "project list")
        # the Data Manager of their copy: their own tasks only
        shown, answers = visit(page, f"{url}/projects/{two.project}/data", until=listed_tasks)
        assert listed_tasks(answers) == set(two.tasks.values())
        assert_nothing_of(one, shown, answers, "data manager")
        # the labeling page of the sentence the first has labelled: no tab of theirs, nothing to compare
        labeling = f"{url}/projects/{two.project}/data?task={two.tasks[sentence_id]}"
        shown, answers = visit(page, labeling, LINE, lambda got: tasks_loaded(got, two.tasks[sentence_id]))
        # Label Studio 1.23.2 shows its Compare All control on every labeling page, even with no annotation: what
        # matters is that nothing of the first's reached the page (below)
        assert_nothing_of(one, shown, answers, "labeling page")
        loaded = tasks_loaded(answers, two.tasks[sentence_id])
        assert loaded and all(not task["annotations"] for task in loaded)  # not even the first's annotation
    # the second labels the same sentence: their page still shows one annotation, their own, nothing to compare
    label_in_browser(chromium, url, two, sentence_id)
    with logged_in(chromium, url, two) as page:
        shown, answers = visit(page, labeling, LINE, lambda got: tasks_loaded(got, two.tasks[sentence_id]))
        # Label Studio shows Compare All beside a task's one annotation too: what matters is what the page holds
        assert_nothing_of(one, shown, answers, "labeling page after submitting")
        loaded = tasks_loaded(answers, two.tasks[sentence_id])
        shown_ids = [[a["id"] if isinstance(a, dict) else a for a in task["annotations"]] for task in loaded]
        assert loaded and all(ids == two.annotations[-1:] for ids in shown_ids), shown_ids

    # the second's own token: the first's task, annotations (ids are one sequence: try those around), lists
    status, answer = call(url, two.token, "GET", f"/api/tasks/{one.tasks[sentence_id]}/")
    assert status == 404 and one.email not in json.dumps(answer)
    mine = set(two.annotations)
    for annotation_id in range(max(1, min(one.annotations) - 2), max(one.annotations + two.annotations) + 3):
        status, answer = call(url, two.token, "GET", f"/api/annotations/{annotation_id}/")
        if annotation_id in mine:
            assert status == 200 and author_of(answer) == two.user_id
        else:
            assert status == 404, (annotation_id, status, answer)
        for trace in traces_of(one):
            assert trace not in json.dumps(answer)
    status, projects = call(url, two.token, "GET", "/api/projects")
    assert status == 200 and [project["id"] for project in projects["results"]] == [two.project]
    status, users = call(url, two.token, "GET", "/api/users")
    listed_users = users if isinstance(users, list) else users.get("results", [])
    assert status == 200 and one.user_id not in [user["id"] for user in listed_users]
    for trace in traces_of(one):
        assert trace not in json.dumps(users) + json.dumps(projects)
    # and the first's annotation is still theirs, unchanged
    status, answer = call(url, one.token, "GET", f"/api/annotations/{one.annotations[-1]}/")
    assert status == 200 and author_of(answer) == one.user_id
