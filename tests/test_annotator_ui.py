"""An annotator in a real headless Chromium labels a task of a project made by `builder push`."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from builder.jsonio import read_jsonl
from builder.labelstudio.push import push_sentences
from builder.sentences.segmenter import split_article

from .conftest import ROOT, cli_env, in_ci, make_project, run_cli

# Debian's chromium, wherever PATH has it (BUILDER_CHROMIUM names another build).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Screen rectangle of `word` inside the element matched by `selector` (first and last character).
WORD_RECT_JS = """([selector, word]) => {
  const root = document.querySelector(selector);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const i = node.textContent.indexOf(word);
    if (i < 0) continue;
    const range = document.createRange();
    range.setStart(node, i); range.setEnd(node, i + 1);
    const first = range.getBoundingClientRect();
    range.setStart(node, i + word.length - 1); range.setEnd(node, i + word.length);
    const last = range.getBoundingClientRect();
    return {x1: first.left + 1, x2: last.right - 1, y: (first.top + first.bottom) / 2};
  }
  return null;
}"""


def find_chromium() -> str | None:
    for name in (os.environ.get("BUILDER_CHROMIUM"), *CHROMIUM_NAMES):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture(scope="module")
def chromium():
    """A missing browser fails the test (`.ci/run` installs chromium): only an explicit
    BUILDER_SKIP_BROWSER=1 outside CI skips it, so a green run means an annotator really labelled in a browser."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("BUILDER_SKIP_BROWSER") == "1" and not in_ci():
            pytest.skip("BUILDER_SKIP_BROWSER=1")
        pytest.fail(
            f"no chromium ({', '.join(CHROMIUM_NAMES)}, or BUILDER_CHROMIUM): apt-get install chromium, "
            "or set BUILDER_SKIP_BROWSER=1 to skip the annotator UI test"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def test_annotator_labels_span_and_stance_in_browser_then_pull_finds_them(chromium, ls, ls_server, tmp_path):
    project = make_project(tmp_path, "browser annotator")
    article = {
        "id": "pact",
        "title": "Putin praises new pact",
        "text": "Putin praises new pact\nVladimir Putin met Kim Jong Un in Pyongyang on Wednesday.",
    }
    sentences = split_article(article)
    result = push_sentences(ls, project, sentences)
    task_id = next(t.id for t in ls.client().tasks.list(project=result.project_id) if t.data["sentence_index"] == 1)

    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{ls.url}/user/login/")
    page.fill('input[name="email"]', ls_server.username)
    page.fill('input[name="password"]', ls_server.password)
    page.click('button[type="submit"], input[type="submit"]')
    page.wait_for_load_state("networkidle")

    page.goto(f"{ls.url}/projects/{result.project_id}/data?task={task_id}")
    line = ".builder-sentence .lsf-richtext__line"
    page.locator(line).first.wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    # the annotator sees title, context, guidelines-named labels with hotkeys, and the target
    body = page.locator("body").inner_text()
    for visible in (
        "Putin praises new pact",
        "Target: Russia and North Korea expanding military cooperation",
        "PER",
        "favor",
    ):
        assert visible in body

    page.keyboard.press("p")  # PER, by its hotkey
    rect = page.evaluate(WORD_RECT_JS, [line, "Kim Jong Un"])
    assert rect is not None
    page.mouse.move(rect["x1"], rect["y"])
    page.mouse.down()
    page.mouse.move(rect["x2"], rect["y"], steps=8)
    page.mouse.up()
    page.keyboard.press("1")  # favor, by its hotkey
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "labeling-view.png"))
    page.get_by_role("button", name="Submit").click()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ls.client().annotations.list(id=task_id):
        time.sleep(0.3)
    page.close()

    pulled = run_cli("pull", env=cli_env(ls), cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    [task] = list(read_jsonl(tmp_path / "annotations" / "snapshot.jsonl"))
    assert task["task_id"] == task_id and task["data"]["sentence_id"] == sentences[1]["id"]
    [annotation] = task["annotations"]
    by_type = {item["type"]: item["value"] for item in annotation["result"]}
    assert len(annotation["result"]) == 2
    assert by_type["labels"] == {"start": 19, "end": 30, "text": "Kim Jong Un", "labels": ["PER"]}
    assert sentences[1]["text"][19:30] == "Kim Jong Un"
    assert by_type["choices"] == {"choices": ["favor"]}
    assert annotation["lead_time"] > 0


# The Data Manager's column headers in the order shown: (column id, title) of each header cell.
HEADERS_JS = """() => Array.from(document.querySelectorAll('[data-id]'))
  .filter((cell) => cell.closest('[class*="table-head"]'))
  .map((cell) => [cell.getAttribute('data-id'), cell.innerText.trim()])"""


def test_the_annotators_task_list_shows_the_sentence_first(chromium, ls, tmp_path):
    """Issue 27 point 9: Label Studio lists a project's data columns in the order its labeling config names them,
    and the config shows the sentence before (`prev_text`) above the sentence, so the Data Manager opened with
    `prev_text` as its first column. `builder push` makes the project's first tab, "Sentences", with the context
    columns hidden: an annotator opening the project in a browser sees the sentence first."""
    import uuid

    from builder.labelstudio.users import annotator_connection
    from builder.labelstudio.views import HIDDEN_CONTEXT_COLUMNS, SENTENCES_VIEW_TITLE

    project = make_project(tmp_path, f"data manager columns {uuid.uuid4().hex[:6]}")
    article = {"id": "cols", "title": "Columns", "text": "Kim met Putin in Moscow.\nThey signed a pact on Friday."}
    result = push_sentences(ls, project, split_article(article))
    # the API's answer: one view, first, titled Sentences, the context hidden in both of its modes, and the
    # columns Label Studio hides in a new tab hidden as well (a view's hidden columns replace those defaults)
    [view, *_] = ls.client().views.list(project=result.project_id)
    assert view.data["title"] == SENTENCES_VIEW_TITLE
    for mode in ("explore", "labeling"):
        assert set(HIDDEN_CONTEXT_COLUMNS) <= set(view.data["hiddenColumns"][mode]), view.data
    assert {"tasks:inner_id", "tasks:annotations_ids"} <= set(view.data["hiddenColumns"]["explore"])
    again = push_sentences(ls, project, split_article(article))  # a re-push makes no second one
    titles = [(v.data or {}).get("title") for v in ls.client().views.list(project=again.project_id)]
    assert titles.count(SENTENCES_VIEW_TITLE) == 1

    email, password = f"columns-{uuid.uuid4().hex[:8]}@example.org", f"pw-{uuid.uuid4().hex}"
    annotator_connection(ls, email, password)
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)  # the Data Manager's first load takes long on a busy machine
    page.goto(f"{ls.url}/user/login/")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"], input[type="submit"]')
    page.wait_for_load_state("networkidle")
    page.goto(f"{ls.url}/projects/{result.project_id}/data")
    page.get_by_text("Kim met Putin in Moscow.").first.wait_for(timeout=60_000)
    headers = page.evaluate(HEADERS_JS)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "data-manager-columns.png"))
    page.close()
    data_columns = [column for column, _ in headers if ":data." in column or column.startswith("data.")]
    assert data_columns and data_columns[0].endswith("data.text"), headers
    assert not any(column.endswith(("data.prev_text", "data.next_text")) for column in data_columns), headers
    assert not any(column.endswith(("inner_id", "annotations_ids")) for column, _ in headers), headers
