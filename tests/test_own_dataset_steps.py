"""The README's "Your own dataset" steps, run as written: the commands are read from the README's fenced block (not
copied here), run in a folder outside the repository, on a corpus whose fields have other names, against a real
local Label Studio, with two annotators labelling through their own accounts, up to `builder verify`.

What the test supplies is only what a user would, each named where it happens:
- the corpus: `articles/news.jsonl` in the project folder (the path the split step reads), with the fields
  `doc_id`, `headline`, `body`, `source_url`, `date_created` (GUM news articles, cut short);
- `builder.toml`'s `[input]` table, uncommented as the README says, to name those fields (`USER_INPUT_TABLE`);
- guidelines.md, edited as the `cd` step's comment asks (each template placeholder replaced by a description);
- the annotators' labels, given with each annotator's own API token after `builder push` (its comment:
  "annotators label there"), in whatever project their token reaches (a shared project or a blind copy);
- `builder` is `python -m builder` with this checkout first on the path (the `pip install -e` step), and git's
  identity comes from the environment, as a user's git config gives it.
`builder server start` runs as written, in a project folder seeded with an already migrated Label Studio
(`seed_local_server`: a restart instead of a first start's minute of migrations, the same server).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT, SHARED, free_port, seed_local_server

pytestmark = pytest.mark.labelstudio

SECTION = "## Your own dataset"
GIT_ENV = {"GIT_AUTHOR_NAME": "Ann Maintainer", "GIT_AUTHOR_EMAIL": "maintainer@example.org"}
GIT_ENV |= {"GIT_COMMITTER_NAME": GIT_ENV["GIT_AUTHOR_NAME"], "GIT_COMMITTER_EMAIL": GIT_ENV["GIT_AUTHOR_EMAIL"]}
# The fields of the user's corpus, and the `[input]` lines of the template that name them.
CORPUS_FIELDS = {"id": "doc_id", "title": "headline", "text": "body", "url": "source_url", "published": "date_created"}
USER_INPUT_TABLE = [f'{role}_field = "{key}"' for role, key in CORPUS_FIELDS.items()]
ARTICLES = 20  # whole articles enough for the default 80/10/10 splits to be even (release checks)


@dataclass(frozen=True)
class Step:
    command: str
    comment: str


def own_dataset_steps() -> list[Step]:
    """Each line of the README's "Your own dataset" code block: the command, and what its comment says."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```bash\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert block, f"README.md: no ```bash block under {SECTION!r}"
    steps = []
    for line in block.group(1).splitlines():
        command, _, comment = line.partition(" # ")
        if command.strip():
            steps.append(Step(command.strip(), comment.strip()))
    return steps


def user_corpus(folder: Path) -> list[dict]:
    """The first ARTICLES GUM news articles, each its dateline and first paragraph, under the user's field names."""
    records = []
    for line in (SHARED / "corpora" / "gum_news.jsonl").read_text(encoding="utf-8").splitlines()[:ARTICLES]:
        article = json.loads(line)
        body = "\n".join(article["text"].split("\n")[1:3])
        record = {"doc_id": article["doc_id"], "headline": article["title"], "body": body}
        records.append(record | {"source_url": article["source_url"], "date_created": article["date_created"]})
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "news.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return records


def uncomment_input_table(config: Path) -> None:
    """What the README asks of a corpus named otherwise: uncomment `[input]` and the lines the corpus needs."""
    lines = config.read_text(encoding="utf-8").splitlines()
    wanted = {"# [input]": "[input]"} | {f"# {line}": line for line in USER_INPUT_TABLE}
    missing = [line for line in wanted if line not in lines]
    assert not missing, f"builder init's builder.toml no longer holds {missing}: update USER_INPUT_TABLE and README"
    config.write_text("\n".join(wanted.get(line, line) for line in lines) + "\n", encoding="utf-8")


def describe_labels(guidelines: Path) -> None:
    """The `cd` step's "edit guidelines.md": each template placeholder (an example line, a label's description)
    becomes the user's text."""
    from builder.scaffold import EXAMPLE_LINE, guideline_placeholders

    lines = guidelines.read_text(encoding="utf-8").splitlines()
    for number, _ in guideline_placeholders("\n".join(lines)):
        line = lines[number - 1].replace(EXAMPLE_LINE, "- *The mayor said the plan was sound.* (from our articles)")
        line = line.replace("describe it here", "the sentence fits this label's heading")
        lines[number - 1] = line.replace("(describe)", "the sentence fits this label's heading")
    text = "\n".join(lines) + "\n"
    assert guideline_placeholders(text) == []
    guidelines.write_text(text, encoding="utf-8")


def call(url: str, token: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Token {token}", **({"Content-Type": "application/json"} if data else {})}
    request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")


def label_as(url: str, token: str, project, who: int) -> int:
    """One annotator labels every task their own token reaches in the project (titled as builder.toml says):
    a stance per sentence (the two annotators differ on some) and the first capitalised word after the first as
    the first entity label. How many tasks they labelled."""
    projects = call(url, token, "GET", "/api/projects?page_size=100")["results"]
    mine = [p["id"] for p in projects if p["title"] == project.project_title]
    assert len(mine) == 1, [p["title"] for p in projects]
    tasks = call(url, token, "GET", f"/api/tasks?project={mine[0]}&page_size=1000")["tasks"]
    stances, entity = project.stance_values, project.entity_values[0]
    for task in tasks:
        digest = hashlib.sha256(task["data"]["sentence_id"].encode()).digest()
        stance = stances[(digest[0] + (who if digest[1] % 4 == 0 else 0)) % len(stances)]  # a quarter differ
        text = task["data"]["text"]
        result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]
        name = re.search(r"(?<=\s)[A-Z][a-z]+", text)
        if name:
            value = {"start": name.start(), "end": name.end(), "text": name.group(), "labels": [entity]}
            result.append({"id": f"e{task['id']}", "from_name": "entities", "to_name": "sentence", "type": "labels"})
            result[-1]["value"] = value
        call(url, token, "POST", f"/api/tasks/{task['id']}/annotations", {"result": result, "lead_time": 4.5})
    return len(tasks)


def annotator_tokens(state, added: str, emails: list[str]) -> list[str]:
    """Each annotator logs in with the password `builder annotators add` printed for them: their API token."""
    from builder.labelstudio.client import Connection
    from builder.labelstudio.users import annotator_connection

    admin = Connection(state.url, state.token, "local server")  # the invite link, as the add step used it
    rows = [line.split() for line in added.splitlines() if line.startswith("annotator-")]  # in the e-mails' order
    assert len(rows) == len(emails) and all(row[-2] == "added" for row in rows), added
    return [annotator_connection(admin, email, row[-1]).api_key for email, row in zip(emails, rows)]


def test_the_readme_steps_for_your_own_dataset_run_as_written(tmp_path, migrated_label_studio):
    from datasets import load_dataset

    from builder.dataset.release import load_manifest
    from builder.labelstudio import server
    from builder.project import load_project

    assert not tmp_path.resolve().is_relative_to(ROOT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("LABEL_STUDIO_")}
    env |= GIT_ENV | {"PYTHONPATH": str(ROOT)}  # `pip install -e`: this checkout's builder, from any folder
    cwd, ran, said = tmp_path, [], {}
    project_root = None
    try:
        for step in own_dataset_steps():
            command = step.command
            if command.startswith("pip install"):
                continue
            if command.startswith("cd "):
                cwd = cwd / command[3:]
                project_root = cwd
                assert "edit guidelines.md" in step.comment
                describe_labels(cwd / "guidelines.md")
                corpus = user_corpus(cwd / "articles")  # the user's corpus, where the split step reads it
                uncomment_input_table(cwd / "builder.toml")  # the split step's comment: "other field names: [input]"
                ran.append(command)
                continue
            if command == "builder server start":  # a migrated server's data, on a port of this test's
                seed_local_server(migrated_label_studio, cwd)
                state = server.read_state(cwd)
                state.port, state.url = (port := free_port()), f"http://127.0.0.1:{port}"
                server.write_state(cwd, state)
            if command.startswith("builder "):
                argv = [sys.executable, "-m", "builder", *shlex.split(command)[1:]]
                done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
            else:
                assert command.startswith("git "), f"README step the test does not know how to run: {command}"
                done = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, env=env)
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
            ran.append(command)
            said[command.split(" -")[0]] = done
            if command.startswith("builder push"):  # "annotators label there"
                project, state = load_project(cwd / "builder.toml"), server.read_state(cwd)
                add_step = next(c for c in said if c.startswith("builder annotators add"))
                tokens = annotator_tokens(state, said[add_step].stdout, shlex.split(add_step)[3:])
                labelled = [label_as(state.url, token, project, who) for who, token in enumerate(tokens)]
                sentences = [json.loads(line) for line in (cwd / "work" / "sentences.jsonl").open(encoding="utf-8")]
                pushed = sum(1 for sentence in sentences if not sentence.get("set_aside"))
                assert all(labelled) and sum(labelled) == 2 * pushed, (labelled, pushed)  # two annotators each
    finally:
        if project_root is not None and server.state_path(project_root).is_file():
            server.stop(project_root)

    steps = [s.command for s in own_dataset_steps() if not s.command.startswith("pip install")]
    assert ran == steps  # every step ran, in order
    project = load_project(cwd / "builder.toml")
    assert project.input_fields == CORPUS_FIELDS

    # the dataset loads, holds the corpus's ids, and both annotators' labels
    dataset = load_dataset(str(cwd / "dist" / project.name))
    assert sorted(dataset) == ["test", "train", "validation"]
    ids = {row["article_id"] for split in dataset.values() for row in split}
    assert ids == {record["doc_id"] for record in corpus}

    # the release: its manifest hashes the project file whose [input] table says how the corpus was read, as git
    # holds it; the commit the README gives is the one `release` prints, and leaves nothing uncommitted
    manifest = load_manifest(cwd / "releases" / "1.0.0" / "manifest.json")
    committed = subprocess.run(["git", "show", "HEAD:builder.toml"], cwd=cwd, capture_output=True, check=True).stdout
    assert manifest["hashes"]["project_file"] == hashlib.sha256(committed).hexdigest()
    assert tomllib.loads(committed.decode())["input"] == {f"{r}_field": k for r, k in CORPUS_FIELDS.items()}
    advice = said["builder release 1.0.0"].stdout.strip().splitlines()[-1]
    readme_commit = next(s for s in steps if s.startswith("git add releases/"))
    assert shlex.split(advice.split(": ", 2)[2]) == shlex.split(readme_commit)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=cwd, capture_output=True)
    assert status.stdout == b""
    assert said["builder verify 1.0.0"].returncode == 0
