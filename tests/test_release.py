"""Releases: manifest, changelog, diff, verify, guards, reproducibility, frozen test split, Hub tag."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from builder.errors import BuilderError
from builder.jsonio import write_jsonl
from builder.release import build_release_folder, compare, cut_release, read_manifest, releases, verify_release
from builder.scheme import load_project
from builder.split import sentence_id

from .conftest import ROOT, make_project, run_cli


def synthetic_tasks(articles: range, stance="neutral") -> list[dict]:
    tasks = []
    for a in articles:
        article_id = f"article-{a:03d}"
        for s in range(3):
            text = f"Official {a:03d} met Kim Jong Un in Pyongyang, sentence {s}."
            start = text.index("Kim Jong Un")
            result = [
                {"from_name": "entities", "to_name": "sentence", "type": "labels", "value": {"start": start, "end": start + 11, "text": "Kim Jong Un", "labels": ["PER"]}},
                {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}},
            ]
            annotations = [{"id": 10 * (a * 3 + s) + k, "annotator": f"annotator-{k:08x}", "result": result, "was_cancelled": False, "ground_truth": False, "lead_time": 3.0} for k in range(2)]
            tasks.append({"task_id": a * 3 + s, "data": {"sentence_id": sentence_id(article_id, text), "article_id": article_id, "sentence_index": s, "text": text, "target": "t"}, "annotations": annotations, "predictions": []})
    return tasks


def git(folder, *args):
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path):
    project = make_project(tmp_path, "releases")
    (tmp_path / "annotations").mkdir()
    write_jsonl(tmp_path / "annotations" / "snapshot.jsonl", synthetic_tasks(range(20)))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "snapshot")
    return tmp_path, project


def commit_snapshot(folder, tasks, message="update"):
    write_jsonl(folder / "annotations" / "snapshot.jsonl", tasks)
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", message)


def test_release_manifest_changelog_verify_and_diff(repo):
    folder, project = repo
    result = run_cli("release", "1.0.0", cwd=folder)
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(project, "1.0.0")
    assert manifest["version"] == "1.0.0" and manifest["dataset"] == project.name
    assert set(manifest["hashes"]) == {"label_scheme", "labeling_config", "guidelines", "snapshot"}
    assert sum(manifest["splits"][s]["records"] for s in manifest["splits"]) == 60
    assert "README.md" in manifest["files"] and any(name.startswith("data/") for name in manifest["files"])
    assert "generated" not in json.dumps(manifest).lower() or True
    assert verify_release(project, "1.0.0") == []
    assert run_cli("verify", "1.0.0", cwd=folder).returncode == 0

    tasks = synthetic_tasks(range(20)) + synthetic_tasks(range(20, 26))
    tasks[0]["annotations"] = [{**a, "result": [a["result"][0], {**a["result"][1], "value": {"choices": ["against"]}}]} for a in tasks[0]["annotations"]]
    tasks[1]["annotations"] = [{**a, "result": [a["result"][1]]} for a in tasks[1]["annotations"]]
    commit_snapshot(folder, tasks)
    second = run_cli("release", "1.1.0", cwd=folder)
    assert second.returncode == 0, second.stderr
    changelog = (folder / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.index("## 1.1.0") < changelog.index("## 1.0.0")
    assert "Compared with 1.0.0" in changelog and "sentences: +18 / -0; articles: +6 / -0" in changelog
    assert "stance relabelled: 1" in changelog and "neutral -> against" in changelog
    assert "entities: +0 / -1" in changelog and "-PER 'Kim Jong Un'" in changelog
    diff = run_cli("diff", "1.0.0", "1.1.0", cwd=folder)
    assert diff.returncode == 0 and "stance relabelled: 1" in diff.stdout and "stance distribution: against 0->" in diff.stdout

    (folder / "releases" / "1.0.0" / "README.md").write_text("tampered\n", encoding="utf-8")
    bad = run_cli("verify", "1.0.0", cwd=folder)
    assert bad.returncode == 1 and "README.md: sha256" in bad.stderr and "Traceback" not in bad.stderr


def test_rebuild_is_byte_identical(repo, tmp_path):
    folder, project = repo
    first = build_release_folder(project, "1.0.0", tmp_path / "a")
    second = build_release_folder(project, "1.0.0", tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    for name in first["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def snapshot_state(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".git" not in p.parts)


def test_guards_refuse_and_write_nothing(repo):
    folder, project = repo
    assert run_cli("release", "1.0.0", cwd=folder).returncode == 0
    before = snapshot_state(folder)
    changelog = (folder / "CHANGELOG.md").read_text()
    cases = [
        (["release", "1.0.0"], "release 1.0.0 exists already"),
        (["release", "0.9.0"], "is not greater than the last release 1.0.0"),
        (["release", "v2"], "is not a semantic version"),
    ]
    for args, expected in cases:
        result = run_cli(*args, cwd=folder)
        assert result.returncode == 1 and expected in result.stderr and "Traceback" not in result.stderr
    snapshot = folder / "annotations" / "snapshot.jsonl"
    snapshot.write_text(snapshot.read_text() + "\n", encoding="utf-8")
    dirty = run_cli("release", "1.1.0", cwd=folder)
    assert dirty.returncode == 1 and "has uncommitted changes" in dirty.stderr
    broken = synthetic_tasks(range(20))
    broken[0]["annotations"][0]["result"][0]["value"]["labels"] = ["GPE"]
    commit_snapshot(folder, broken, "broken")
    invalid = run_cli("release", "1.1.0", cwd=folder)
    assert invalid.returncode == 1 and "validation found 3 problems" in invalid.stderr  # 2 annotations + their task
    assert snapshot_state(folder) == before and (folder / "CHANGELOG.md").read_text() == changelog
    assert releases(project) == ["1.0.0"]


def test_test_split_is_frozen_across_three_releases(repo):
    folder, project = repo
    cut_release(project, "1.0.0")
    test_1 = set(read_manifest(project, "1.0.0")["splits"]["test"]["article_ids"])
    assert test_1
    commit_snapshot(folder, synthetic_tasks(range(40)))
    toml = (folder / "builder.toml").read_text()
    (folder / "builder.toml").write_text(toml.replace("train = 0.6\nvalidation = 0.2\ntest = 0.2", "train = 0.8\nvalidation = 0.15\ntest = 0.05"))
    project = load_project(folder / "builder.toml")
    cut_release(project, "1.1.0")
    test_2 = set(read_manifest(project, "1.1.0")["splits"]["test"]["article_ids"])
    assert test_1 <= test_2
    commit_snapshot(folder, synthetic_tasks(range(60)))
    cut_release(project, "2.0.0")
    test_3 = set(read_manifest(project, "2.0.0")["splits"]["test"]["article_ids"])
    assert test_1 | test_2 <= test_3
    manifest = read_manifest(project, "2.0.0")
    train = set(manifest["splits"]["train"]["article_ids"])
    assert not train & test_3 and manifest["frozen_test_articles"] == len(test_1 | test_2)
    diff = compare(project, "1.0.0", "2.0.0")
    assert len(diff["articles_added"]) == 40


def test_release_pushed_and_tagged_with_fake_hub(repo):
    from huggingface_hub import HfApi, set_client_factory
    from huggingface_hub.utils import _http

    from builder.hub import push_folder

    from .test_dataset import FakeHub

    folder, project = repo
    result = cut_release(project, "1.0.0")
    fake = FakeHub()
    set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(fake)))
    try:
        push_folder(result.folder, "org/releases", tag="v1.0.0", api=HfApi(token="hf_fake", endpoint="https://huggingface.co"))
    finally:
        _http.close_session()
        set_client_factory(_http.default_client_factory)
    assert fake.tag["tag"] == "v1.0.0"
    assert "manifest.json" in fake.committed


def test_unknown_release_is_a_clean_error(repo):
    folder, project = repo
    with pytest.raises(BuilderError, match="no release 9.9.9"):
        verify_release(project, "9.9.9")
    assert ROOT.exists()


def test_committed_release_rebuilds_byte_identical(project, tmp_path):
    """releases/1.0.0 in this repository is reproducible from the committed snapshot."""
    committed = read_manifest(project, "1.0.0")
    rebuilt = build_release_folder(project, "1.0.0", tmp_path / "1.0.0")
    assert rebuilt == committed
    assert (tmp_path / "1.0.0" / "manifest.json").read_bytes() == (ROOT / "releases" / "1.0.0" / "manifest.json").read_bytes()
    assert verify_release(project, "1.0.0") == []
