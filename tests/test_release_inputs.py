"""A release reads every file that changes its card and manifest as committed in git: the withheld suggestions
(annotations/withheld-suggestions.jsonl, the control arm's figures) and the gold file (`[quality] gold`, gold
accuracy), like the snapshot; the manifest hashes them, and a rebuild of an old release reads them as they were."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from builder.dataset.release import build_release_folder, cut_release, read_manifest, verify_release
from builder.errors import BuilderError
from builder.project import load_project
from builder.records.steering import ARM_FIELD, SHOWN, WITHHELD

from .test_release import builder, git, new_repo, synthetic_tasks

WITHHELD_FILE = "annotations/withheld-suggestions.jsonl"


def stance_item(label: str) -> dict:
    return {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [label]}}


def armed_tasks() -> list[dict]:
    """The release tests' tasks, every other one in the control arm, the others shown a "neutral" suggestion."""
    tasks = synthetic_tasks(range(20))
    for n, task in enumerate(tasks):
        task["data"][ARM_FIELD] = WITHHELD if n % 2 else SHOWN
        if not n % 2:
            task["predictions"] = [{"model_version": "m/1", "score": 0.9, "result": [stance_item("neutral")]}]
    return tasks


def withheld_lines(tasks: list[dict], label: str, model: str = "m/1") -> bytes:
    rows = [
        {"model_version": model, "result": [stance_item(label)], "sentence_id": t["data"]["sentence_id"]}
        for t in tasks
        if t["data"][ARM_FIELD] == WITHHELD
    ]
    return b"".join(json.dumps(row, sort_keys=True).encode() + b"\n" for row in rows)


def gold_line(tasks: list[dict]) -> bytes:
    """One gold question (a sentence of the snapshot) whose answer is "neutral"."""
    data = tasks[1]["data"]
    line = {**{k: data[k] for k in ("article_id", "sentence_index", "text")}, "id": data["sentence_id"]}
    line.update(start=0, end=len(data["text"]), stance="neutral", entities=[])
    return json.dumps(line, sort_keys=True).encode() + b"\n"


@pytest.fixture
def armed(tmp_path):
    """A project in git whose snapshot has a control arm, with its withheld suggestions and a gold file committed."""
    tasks = armed_tasks()
    folder, _ = new_repo(tmp_path / "repo", tasks)
    (folder / WITHHELD_FILE).write_bytes(withheld_lines(tasks, "neutral"))
    (folder / "gold.jsonl").write_bytes(gold_line(tasks))
    toml = folder / "builder.toml"
    text = toml.read_text(encoding="utf-8")
    assert "suggestion_holdout = 0.0\n" in text
    text = text.replace("suggestion_holdout = 0.0\n", "suggestion_holdout = 0.5\n", 1)
    toml.write_text(text + '\n[quality]\ngold = "gold.jsonl"\n', encoding="utf-8")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "control arm and gold")
    return folder, load_project(toml), tasks


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", [WITHHELD_FILE, "gold.jsonl"])
def test_a_release_refuses_an_input_file_with_uncommitted_changes(armed, name):
    """Lines a push appended (or a gold question added) but not committed would publish figures nobody can rebuild
    from git: the release refuses, naming the file, and writes nothing."""
    folder, project, tasks = armed
    path = folder / name
    with path.open("ab") as handle:
        handle.write(withheld_lines(tasks, "favor", "m/2") if name == WITHHELD_FILE else gold_line(tasks[2:]))
    with pytest.raises(BuilderError) as refused:
        cut_release(project, "1.0.0")
    assert str(path) in str(refused.value) and "uncommitted changes: commit it first" in str(refused.value)
    assert not (folder / "releases").exists()
    git(folder, "rm", "-q", "--cached", name)  # untracked: refused too
    git(folder, "commit", "-qm", "untrack")
    with pytest.raises(BuilderError, match="is not committed \\(untracked\\)"):
        cut_release(project, "1.0.0")
    assert not (folder / "releases").exists()


def test_the_manifest_hashes_the_withheld_and_gold_files(armed):
    folder, project, _ = armed
    manifest = cut_release(project, "1.0.0").manifest
    assert manifest["manifest_format"] == 10
    assert manifest["hashes"]["withheld_suggestions"] == sha256(folder / WITHHELD_FILE)
    assert manifest["hashes"]["gold"] == sha256(folder / "gold.jsonl")
    assert manifest["quality"]["suggestion_arms"]["arms"][WITHHELD]["stance_accepted"] > 0
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "release 1.0.0")
    assert verify_release(project, "1.0.0") == []
    shutil.rmtree(folder / ".git")  # outside git, files unchanged since the release: they are used as they are
    build_release_folder(project, "1.0.0", folder.parent / "rebuilt")
    released = folder / "releases" / "1.0.0" / "manifest.json"
    assert (folder.parent / "rebuilt" / "manifest.json").read_bytes() == released.read_bytes()


def test_a_project_without_them_records_no_new_hash(tmp_path):
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(20)))
    manifest = cut_release(project, "1.0.0").manifest
    assert "withheld_suggestions" not in manifest["hashes"] and "gold" not in manifest["hashes"]


def test_rebuilding_an_old_release_reads_the_files_as_they_were_at_that_release(armed, tmp_path):
    """After a retrain (`builder predict` appends new versions to the withheld file) and a new gold question, both
    committed, release 1.0.0 still rebuilds byte for byte: from the versions its manifest hashes, found in git."""
    folder, project, tasks = armed
    cut_release(project, "1.0.0")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "release 1.0.0")
    released = folder / "releases" / "1.0.0"
    with (folder / WITHHELD_FILE).open("ab") as handle:
        handle.write(withheld_lines(tasks, "favor", "m/2"))
    with (folder / "gold.jsonl").open("ab") as handle:
        handle.write(gold_line(tasks[2:]))
    git(folder, "commit", "-qam", "retrained, one more gold question")
    rebuilt = tmp_path / "rebuilt"
    build_release_folder(project, "1.0.0", rebuilt)
    for name in ("manifest.json", "README.md"):
        assert (rebuilt / name).read_bytes() == (released / name).read_bytes(), name
    assert verify_release(project, "1.0.0") == []  # a commit in the history holds the versions it hashes
    # the figures did change for a new release: it reads the files as committed now
    manifest = cut_release(project, "1.1.0").manifest
    assert manifest["hashes"]["withheld_suggestions"] == sha256(folder / WITHHELD_FILE)
    assert manifest["quality"] != read_manifest(project, "1.0.0")["quality"]


def test_verify_names_an_input_file_no_commit_holds(armed):
    folder, project, tasks = armed
    cut_release(project, "1.0.0")
    (folder / WITHHELD_FILE).write_bytes(withheld_lines(tasks, "against", "m/3"))
    git(folder, "checkout", "-q", "--orphan", "rewritten")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "history without the withheld file of 1.0.0")
    problems = verify_release(project, "1.0.0")
    assert any(
        p.startswith(f"hashes.withheld_suggestions: no commit in the history of HEAD holds {WITHHELD_FILE}")
        for p in problems
    ), problems
    result = builder(folder, "verify", "1.0.0")
    assert result.returncode == 1 and "hashes.withheld_suggestions: no commit" in result.stderr
    with pytest.raises(BuilderError, match="hashes.withheld_suggestions: no commit in the history of HEAD holds"):
        build_release_folder(project, "1.0.0", folder.parent / "rebuilt")
    shutil.rmtree(folder / ".git")
    assert verify_release(project, "1.0.0") == []
    with pytest.raises(BuilderError, match="hashes.withheld_suggestions: .* differs from the version the release"):
        build_release_folder(project, "1.0.0", folder.parent / "rebuilt-outside-git")
