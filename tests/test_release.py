"""Releases: manifest, changelog, diff, verify, guards, reproducibility, frozen test split, Hub tag."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from builder.dataset.release import (
    build_release_folder,
    compare,
    cut_release,
    read_manifest,
    releases,
    verify_release,
    version_key,
)
from builder.errors import BuilderError
from builder.jsonio import write_jsonl
from builder.project import load_project
from builder.pseudonyms import KEYED_SCHEME, LEGACY_SCHEME
from builder.sentences.segmenter import sentence_id

from .conftest import ROOT, make_project, run_cli


def synthetic_tasks(articles: range, stance="neutral", digits=8) -> list[dict]:
    """Three sentences per article, two annotators each (pseudonyms of `digits` hex digits)."""
    tasks = []
    for a in articles:
        article_id = f"article-{a:03d}"
        for s in range(3):
            text = f"Official {a:03d} met Kim Jong Un in Pyongyang, sentence {s}."
            start = text.index("Kim Jong Un")
            label = stance(a) if callable(stance) else stance
            result = [
                {
                    "from_name": "entities",
                    "to_name": "sentence",
                    "type": "labels",
                    "value": {"start": start, "end": start + 11, "text": "Kim Jong Un", "labels": ["PER"]},
                },
                {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [label]}},
            ]
            annotations = [
                {
                    "id": 10 * (a * 3 + s) + k,
                    "annotator": f"annotator-{k + 10:0{digits}x}",
                    "result": result,
                    "was_cancelled": False,
                    "ground_truth": False,
                    "lead_time": 3.0,
                }
                for k in range(2)
            ]
            tasks.append(
                {
                    "task_id": a * 3 + s,
                    "data": {
                        "sentence_id": sentence_id(article_id, text),
                        "article_id": article_id,
                        "sentence_index": s,
                        "text": text,
                        "target": "t",
                    },
                    "annotations": annotations,
                    "predictions": [],
                }
            )
    return tasks


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def builder(folder, *args) -> Ran:
    """`builder --config FOLDER/builder.toml ARGS` in this process (fast); an unexpected exception is raised."""
    from click.testing import CliRunner

    from builder.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(folder / "builder.toml"), *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def git(folder, *args):
    subprocess.run(
        ["git", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "PATH": "/usr/bin:/bin",
        },
    )


def new_repo(folder, tasks):
    """A project in its own git repository, project file, guidelines and snapshot committed."""
    make_project(folder, "releases")
    toml = folder / "builder.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            f'guidelines = "{ROOT / "guidelines.md"}"', 'guidelines = "guidelines.md"'
        ),
        encoding="utf-8",
    )
    shutil.copyfile(ROOT / "guidelines.md", folder / "guidelines.md")
    (folder / "annotations").mkdir()
    write_jsonl(folder / "annotations" / "snapshot.jsonl", tasks)
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "snapshot")
    return folder, load_project(toml)


@pytest.fixture
def repo(tmp_path):
    return new_repo(tmp_path / "repo", synthetic_tasks(range(20)))


def commit_snapshot(folder, tasks, message="update"):
    write_jsonl(folder / "annotations" / "snapshot.jsonl", tasks)
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", message)


def edit_toml(folder, old, new, message="settings"):
    toml = folder / "builder.toml"
    text = toml.read_text(encoding="utf-8")
    assert old in text
    toml.write_text(text.replace(old, new), encoding="utf-8")
    git(folder, "commit", "-qam", message)
    return load_project(toml)


def test_release_manifest_changelog_verify_and_diff(repo):
    folder, project = repo
    result = run_cli("release", "1.0.0", cwd=folder)  # once through a real process
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(project, "1.0.0")
    assert manifest["version"] == "1.0.0" and manifest["dataset"] == project.name
    assert (
        manifest["manifest_format"] == 10
        and manifest["split_method"] == "sentence-shares/1"
        and manifest["previous"] is None
        and manifest["pseudonym_scheme"] == LEGACY_SCHEME
    )
    assert manifest["dataset_format"] == 4 and manifest["aggregation"] == "majority"
    assert manifest["gold"] == {"rate": 0.0, "questions_left_out": 0}
    assert manifest["quality"] == {
        "annotators": 2,
        "gold_accuracy": [],
        "anchoring_rate": None,
        "flagged": 0,
        # format 10 on: each figure's 95% interval and n
        "gold_accuracy_figures": [],
        "anchoring": {"value": None, "low": None, "high": None, "n": 0},
    }
    assert set(manifest["hashes"]) == {"label_scheme", "labeling_config", "guidelines", "snapshot", "project_file"}
    assert sum(manifest["splits"][s]["records"] for s in manifest["splits"]) == 60
    assert "README.md" in manifest["files"] and any(name.startswith("data/") for name in manifest["files"])
    assert verify_release(project, "1.0.0") == []
    assert builder(folder, "verify", "1.0.0").returncode == 0
    digest_1 = hashlib_file(folder / "releases" / "1.0.0" / "manifest.json")
    assert f"manifest sha256 `{digest_1}`" in (folder / "CHANGELOG.md").read_text(encoding="utf-8")

    tasks = synthetic_tasks(range(20)) + synthetic_tasks(range(20, 26))
    tasks[0]["annotations"] = [
        {**a, "result": [a["result"][0], {**a["result"][1], "value": {"choices": ["against"]}}]}
        for a in tasks[0]["annotations"]
    ]
    tasks[1]["annotations"] = [{**a, "result": [a["result"][1]]} for a in tasks[1]["annotations"]]
    commit_snapshot(folder, tasks)
    second = builder(folder, "release", "1.1.0")
    assert second.returncode == 0, second.stderr
    changelog = (folder / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.index("## 1.1.0") < changelog.index("## 1.0.0")
    assert "Compared with 1.0.0" in changelog and "sentences: +18 / -0; articles: +6 / -0" in changelog
    assert "stance relabelled: 1" in changelog and "neutral -> against" in changelog
    assert "entities: +0 / -1" in changelog and "-PER 'Kim Jong Un'" in changelog
    assert "pseudonyms changed" not in changelog
    manifest_2 = read_manifest(project, "1.1.0")
    assert manifest_2["previous"] == {"version": "1.0.0", "manifest_sha256": digest_1}
    assert f"manifest sha256 `{hashlib_file(folder / 'releases' / '1.1.0' / 'manifest.json')}`" in changelog
    diff = builder(folder, "diff", "1.0.0", "1.1.0")
    assert (
        diff.returncode == 0
        and "stance relabelled: 1" in diff.stdout
        and "stance distribution: against 0->" in diff.stdout
    )
    assert "- aggregation: majority (unchanged)" in diff.stdout
    assert "- gold questions: rate 0 (unchanged); left out of the dataset 0 (unchanged)" in diff.stdout
    assert "flagged 0 (unchanged); anchoring rate n/a (unchanged)" in diff.stdout
    assert builder(folder, "verify", "1.1.0").returncode == 0

    # a format-3 release rebuilds byte for byte too (the chain included)
    rebuilt = build_release_folder(project, "1.1.0", folder.parent / "rebuilt")
    assert rebuilt == manifest_2
    assert (folder.parent / "rebuilt" / "manifest.json").read_bytes() == (
        folder / "releases" / "1.1.0" / "manifest.json"
    ).read_bytes()

    (folder / "releases" / "1.0.0" / "README.md").write_text("tampered\n", encoding="utf-8")
    bad = builder(folder, "verify", "1.0.0")
    assert bad.returncode == 1 and "README.md: sha256" in bad.stderr and "Traceback" not in bad.stderr


def hashlib_file(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rebuild_is_byte_identical(repo, tmp_path):
    _, project = repo
    first = build_release_folder(project, "1.0.0", tmp_path / "a")
    second = build_release_folder(project, "1.0.0", tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    for name in first["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def snapshot_state(folder):
    """Every path and its content under `folder` (the .git folder aside)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
        if ".git" not in p.parts
    }


def assert_refused(result, expected):
    assert result.returncode == 1, result.stdout
    assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_guards_refuse_and_write_nothing(repo):
    folder, project = repo
    assert builder(folder, "release", "1.0.0").returncode == 0
    before = snapshot_state(folder)
    cases = [
        (["release", "1.0.0"], "release 1.0.0 exists already"),
        (["release", "0.9.0"], "is not greater than the last release 1.0.0"),
        (["release", "1.0.0-rc.1"], "is not greater than the last release 1.0.0"),
        (["release", "1.0.0+rebuild"], "is not greater than the last release 1.0.0"),
        (["release", "v2"], "is not a semantic version"),
        (["release", "1.1.0-01"], "is not a semantic version"),
    ]
    for args, expected in cases:
        assert_refused(builder(folder, *args), expected)
    snapshot = folder / "annotations" / "snapshot.jsonl"
    snapshot.write_text(snapshot.read_text() + "\n", encoding="utf-8")
    assert_refused(builder(folder, "release", "1.1.0"), "snapshot.jsonl has uncommitted changes: commit it first")
    git(folder, "checkout", "--", "annotations/snapshot.jsonl")
    broken = synthetic_tasks(range(20))
    broken[0]["annotations"][0]["result"][0]["value"]["labels"] = ["GPE"]
    commit_snapshot(folder, broken, "broken")
    before = snapshot_state(folder)
    invalid = builder(folder, "release", "1.1.0")
    assert_refused(invalid, "validation found 3 problems")  # 2 annotations + their task
    assert snapshot_state(folder) == before
    assert releases(project) == ["1.0.0"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("toml", "builder.toml has uncommitted changes: commit it first"),
        ("guidelines", "guidelines.md has uncommitted changes: commit it first"),
        ("untracked guidelines", "other-guidelines.md is not committed (untracked): add and commit it first"),
        ("ignored snapshot", "snapshot.jsonl is ignored by git: commit it"),
        ("no git", "is not in a git work tree: run `git init` in the project folder and commit the project first"),
    ],
)
def test_release_refuses_uncommitted_project_file_and_guidelines(repo, change, expected):
    """The output depends on the whole project file and the guidelines: both must be committed, as the snapshot."""
    folder, _ = repo
    if change == "toml":  # a setting the label scheme does not hash
        (folder / "builder.toml").write_text(
            (folder / "builder.toml").read_text().replace("entity_agreement = 0.5", "entity_agreement = 1.0")
        )
    elif change == "guidelines":
        (folder / "guidelines.md").write_text((folder / "guidelines.md").read_text() + "\nOne more rule.\n")
    elif change == "untracked guidelines":
        shutil.copyfile(folder / "guidelines.md", folder / "other-guidelines.md")
        (folder / "builder.toml").write_text(
            (folder / "builder.toml")
            .read_text()
            .replace('guidelines = "guidelines.md"', 'guidelines = "other-guidelines.md"')
        )
        git(folder, "commit", "-qam", "other guidelines")
    elif change == "ignored snapshot":
        (folder / ".gitignore").write_text("annotations/\n")
        git(folder, "rm", "-q", "--cached", "annotations/snapshot.jsonl")
        git(folder, "add", ".gitignore")
        git(folder, "commit", "-qm", "ignore annotations")
    else:
        shutil.rmtree(folder / ".git")
    before = snapshot_state(folder)
    assert_refused(builder(folder, "release", "1.0.0"), expected)
    assert snapshot_state(folder) == before
    assert not (folder / "releases").exists()


def test_manifest_hashes_the_whole_project_file(repo):
    """A setting outside the label scheme (entity_agreement) changes the manifest's project-file hash."""
    folder, project = repo
    first = cut_release(project, "1.0.0").manifest
    project = edit_toml(folder, "entity_agreement = 0.5", "entity_agreement = 1.0")
    second = cut_release(project, "1.1.0").manifest
    assert first["hashes"]["label_scheme"] == second["hashes"]["label_scheme"]
    assert first["hashes"]["project_file"] != second["hashes"]["project_file"]
    assert second["hashes"]["project_file"] == hashlib_file(folder / "builder.toml")


def test_test_split_is_frozen_across_three_releases(repo):
    folder, project = repo
    cut_release(project, "1.0.0")
    test_1 = set(read_manifest(project, "1.0.0")["splits"]["test"]["article_ids"])
    assert test_1
    commit_snapshot(folder, synthetic_tasks(range(40)))
    project = edit_toml(
        folder, "train = 0.6\nvalidation = 0.2\ntest = 0.2", "train = 0.8\nvalidation = 0.15\ntest = 0.05"
    )
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


def rewrite_manifest(path, change):
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_frozen_test_articles_come_from_the_test_parquet_not_the_manifest(repo, tmp_path):
    folder, project = repo
    cut_release(project, "1.0.0")
    real = set(read_manifest(project, "1.0.0")["splits"]["test"]["article_ids"])
    dropped = min(real)
    original = (folder / "releases" / "1.0.0" / "manifest.json").read_bytes()

    def forge(manifest):
        ids = manifest["splits"]["test"]["article_ids"]
        manifest["splits"]["test"]["article_ids"] = sorted(
            [i for i in ids if i != dropped] + ["article-forged-1", "article-forged-2"]
        )

    rewrite_manifest(folder / "releases" / "1.0.0" / "manifest.json", forge)
    commit_snapshot(folder, synthetic_tasks(range(40)))
    project = edit_toml(
        folder, "train = 0.6\nvalidation = 0.2\ntest = 0.2", "train = 0.95\nvalidation = 0.04\ntest = 0.01"
    )
    manifest = build_release_folder(project, "1.1.0", tmp_path / "1.1.0")
    assert manifest["frozen_test_articles"] == len(real)
    assert real <= set(manifest["splits"]["test"]["article_ids"])

    # a release is not cut on top of a release that does not verify
    before = snapshot_state(folder)
    assert_refused(builder(folder, "release", "1.1.0"), "release 1.0.0 does not verify")
    assert snapshot_state(folder) == before

    # and a test Parquet file that does not match its manifest is not trusted
    (folder / "releases" / "1.0.0" / "manifest.json").write_bytes(original)
    test_file = folder / "releases" / "1.0.0" / "data" / "test-00000-of-00001.parquet"
    test_file.write_bytes(test_file.read_bytes() + b"\0")
    with pytest.raises(
        BuilderError, match=r"release 1.0.0: data/test-00000-of-00001.parquet does not match its manifest"
    ):
        build_release_folder(project, "1.1.0", tmp_path / "again")
    assert not (tmp_path / "again").exists()


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory):
    """A repository with releases 1.0.0 and 1.1.0 (built once; tests work on copies)."""
    folder, project = new_repo(
        tmp_path_factory.mktemp("two") / "repo",
        synthetic_tasks(range(20), stance=lambda a: "against" if a % 3 == 0 else "neutral"),
    )
    cut_release(project, "1.0.0")
    commit_snapshot(folder, synthetic_tasks(range(26), stance=lambda a: "against" if a % 3 == 0 else "neutral"))
    cut_release(project, "1.1.0")
    return folder


@pytest.fixture
def copy(two_releases, tmp_path):
    folder = tmp_path / "repo"
    shutil.copytree(two_releases, folder, symlinks=True)
    return folder, load_project(folder / "builder.toml")


def _set(path, value):
    def change(manifest):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]])

    return change


TAMPERING = {
    "a count": (["splits", "test", "records"], lambda n: n + 1, "splits.test.records: the manifest says"),
    "a label count": (
        ["splits", "train", "stance"],
        lambda c: {**c, "neutral": c["neutral"] - 1, "favor": 1},
        "splits.train.stance: the manifest says",
    ),
    "a test article id": (
        ["splits", "test", "article_ids"],
        lambda ids: ["article-999", *ids[1:]],
        "splits.test.article_ids: the manifest's list differs from the Parquet files "
        "(not in the Parquet files: article-999; missing from the manifest: ",
    ),
    "an agreement figure": (
        ["agreement", "entities", "f1"],
        lambda f: 0.5,
        "agreement.entities.f1: the manifest says 0.5 but the Parquet files give",
    ),
    "the guidelines hash": (["hashes", "guidelines"], lambda h: "0" * 64, "hashes.guidelines: the manifest says '0000"),
    "the snapshot hash": (["hashes", "snapshot"], lambda h: "f" * 64, "hashes.snapshot: the manifest says 'ffff"),
    "the label scheme hash": (["hashes", "label_scheme"], lambda h: "1" * 64, "hashes.label_scheme: the manifest says"),
    "the project file hash": (["hashes", "project_file"], lambda h: "2" * 64, "release 1.1.0: manifest.json sha256"),
    "the frozen test count": (["frozen_test_articles"], lambda n: n + 5, "frozen_test_articles: the manifest says"),
    "the pseudonym scheme": (
        ["pseudonym_scheme"],
        lambda s: KEYED_SCHEME,
        "pseudonym_scheme: the manifest says hmac-sha256/12 but the annotator names are sha256-unkeyed/8",
    ),
    "the split proportions": (["split_proportions", "test"], lambda p: 0.3, "split_proportions: the manifest says"),
    "the split method": (
        ["split_method"],
        lambda m: "article-hash/1",
        "split_method: the manifest says 'article-hash/1' but the card (README.md) states 'sentence-shares/1'",
    ),
}


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_verify_fails_on_an_edited_manifest(copy, what):
    """Editing a count, a hash or a test article id in a manifest makes `builder verify` fail, naming it."""
    folder, _ = copy
    path, value, expected = TAMPERING[what]
    rewrite_manifest(folder / "releases" / "1.1.0" / "manifest.json", _set(path, value))
    result = builder(folder, "verify", "1.1.0")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert any(line.startswith("mismatch: ") and expected in line for line in result.stderr.splitlines()), result.stderr
    # editing the manifest (even consistently with its files) breaks the chain: CHANGELOG.md stated its sha256
    assert "that CHANGELOG.md states: the manifest was changed after release" in result.stderr


def test_verify_checks_the_chain_across_releases(copy):
    """An earlier manifest edited after a later release was cut: verify of either release names it."""
    folder, project = copy
    assert verify_release(project, "1.1.0") == [] and verify_release(project, "1.0.0") == []
    rewrite_manifest(
        folder / "releases" / "1.0.0" / "manifest.json", _set(["hashes", "project_file"], lambda h: "3" * 64)
    )
    for version in ("1.0.0", "1.1.0"):
        result = builder(folder, "verify", version)
        assert result.returncode == 1
        assert (
            "mismatch: release 1.0.0: manifest.json sha256" in result.stderr
            and "that release 1.1.0 recorded" in result.stderr
        )


def test_a_release_whose_manifest_is_gone_is_not_skipped(copy):
    """Removing the newest manifest must not let verify pass, nor a new release chain onto an older one."""
    folder, project = copy
    (folder / "releases" / "1.1.0" / "manifest.json").unlink()
    for version in ("1.0.0",):
        result = builder(folder, "verify", version)
        assert result.returncode == 1 and "release 1.1.0: releases/1.1.0 has no manifest.json" in result.stderr
    refused = builder(folder, "release", "1.2.0")
    assert refused.returncode == 1 and "does not verify" in refused.stderr
    assert not (folder / "releases" / "1.2.0").exists()


def test_diff_decodes_each_release_with_its_own_label_names(repo):
    """Reordering the stance labels between two releases with unchanged annotations: nothing relabelled."""
    folder, project = repo
    commit_snapshot(folder, synthetic_tasks(range(20), stance=lambda a: ["against", "favor", "neutral"][a % 3]))
    cut_release(project, "1.0.0")
    toml = (folder / "builder.toml").read_text(encoding="utf-8")
    favor = toml[toml.index('[[stance.labels]]\nvalue = "favor"') : toml.index('[[stance.labels]]\nvalue = "against"')]
    project = edit_toml(folder, favor, "")
    project = edit_toml(folder, '[[entities.labels]]\nvalue = "PER"', favor + '[[entities.labels]]\nvalue = "PER"')
    assert project.stance_values == ["against", "neutral", "favor"]
    result = builder(folder, "release", "1.1.0")
    assert result.returncode == 0, result.stderr
    for text in (result.stdout, builder(folder, "diff", "1.0.0", "1.1.0").stdout):
        assert "stance relabelled: 0" in text and "stance distribution: unchanged" in text, text
        assert "entities: +0 / -0" in text and "entities distribution: unchanged" in text
    assert compare(project, "1.0.0", "1.1.0")["stance_relabelled"] == []


CORRUPT = {
    "not JSON": lambda text: text[: len(text) // 2],
    "not an object": lambda text: "[1, 2]\n",
    "missing splits": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "splits"}),
    "wrong type": lambda text: json.dumps({**json.loads(text), "files": {"README.md": 7}}),
    "missing split": lambda text: json.dumps(
        {**json.loads(text), "splits": {"train": json.loads(text)["splits"]["train"]}}
    ),
    "format 2 without its fields": lambda text: json.dumps(
        {k: v for k, v in json.loads(text).items() if k != "previous"}
    ),
    "format 3 without its fields": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "gold"}),
}


@pytest.mark.parametrize("how", sorted(CORRUPT))
def test_corrupt_manifest_is_one_line_for_verify_diff_and_release(copy, how):
    folder, _ = copy
    path = folder / "releases" / "1.1.0" / "manifest.json"
    path.write_text(CORRUPT[how](path.read_text(encoding="utf-8")), encoding="utf-8")
    before = snapshot_state(folder)
    for args in (["verify", "1.1.0"], ["diff", "1.0.0", "1.1.0"], ["release", "1.2.0"]):
        result = builder(folder, *args)
        assert_refused(result, "manifest.json: not a")
        assert "restore it from git" in result.stderr
    assert snapshot_state(folder) == before


def test_two_releases_at_once_are_serialized(repo):
    """Two `builder release 1.0.0` at once: one releases, the other says it exists; nothing left behind."""
    folder, project = repo
    command = [sys.executable, "-m", "builder", "release", "1.0.0"]
    runs = [
        subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = sorted((run.wait(), run.stderr.read()) for run in runs)
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert results[0][0] == 0 and results[1][0] == 1, results
    assert "release 1.0.0 exists already" in results[1][1] and "Traceback" not in results[1][1]
    assert (folder / "CHANGELOG.md").read_text(encoding="utf-8").count("## 1.0.0") == 1
    left = [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".git"]
    left += [p.name for p in (folder / "releases").iterdir() if p.name != "1.0.0"]
    assert left == []
    assert verify_release(project, "1.0.0") == []


def test_release_waits_for_the_lock(repo):
    """While another process holds the release lock, a release waits instead of racing."""
    folder, _ = repo
    locks = Path("/proc/locks")
    if not locks.is_file():
        pytest.skip("no /proc/locks to see a process waiting for a lock")
    device = os.stat(folder)
    me = f"{os.major(device.st_dev):02x}:{os.minor(device.st_dev):02x}:{device.st_ino} "
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "builder", "release", "1.0.0"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while run.poll() is None and time.monotonic() < deadline:
            if any("->" in line and me in line for line in locks.read_text().splitlines()):
                break
            time.sleep(0.05)
        assert run.poll() is None, "the release did not wait for the lock"
        assert not (folder / "releases" / "1.0.0").exists()
    finally:
        os.close(fd)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err


def test_semantic_version_precedence(repo):
    """SemVer 2.0.0 section 11 example order; pre-releases release after their predecessor."""
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0-foo",
        "2.0.0",
        "10.0.0",
    ]
    assert sorted(order[6:] + order[:6][::-1], key=version_key) == order
    assert version_key("1.0.0+build.5") == version_key("1.0.0")
    for bad in ("1.0.0\n", "1.0.\u0663", "01.0.0", "1.0.0-alpha..1", "1.0"):
        with pytest.raises(BuilderError, match="is not a semantic version"):
            version_key(bad)
    folder, project = repo
    assert builder(folder, "release", "1.0.0").returncode == 0
    result = builder(folder, "release", "2.0.0-foo")
    assert result.returncode == 0, result.stderr
    assert releases(project) == ["1.0.0", "2.0.0-foo"]
    assert_refused(
        builder(folder, "release", "2.0.0-alpha"), "version 2.0.0-alpha is not greater than the last release 2.0.0-foo"
    )
    assert builder(folder, "release", "2.0.0").returncode == 0
    assert builder(folder, "verify", "2.0.0").returncode == 0


def test_changed_pseudonym_scheme_is_said_plainly(repo):
    """1.0.0 as a format-1 manifest (no scheme field: legacy names); 1.1.0 with keyed names."""
    folder, project = repo
    manifest = build_release_folder(project, "1.0.0", folder / "releases" / "1.0.0", manifest_format=1)
    assert "manifest_format" not in manifest and "pseudonym_scheme" not in manifest
    (folder / "CHANGELOG.md").write_text("# Changelog\n\n## 1.0.0\n\nFirst release.\n", encoding="utf-8")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "1.0.0")
    commit_snapshot(folder, synthetic_tasks(range(20), digits=12))
    result = builder(folder, "release", "1.1.0")
    assert result.returncode == 0, result.stderr
    assert read_manifest(project, "1.1.0")["pseudonym_scheme"] == KEYED_SCHEME
    expected = (
        f"annotator pseudonyms changed ({LEGACY_SCHEME} -> {KEYED_SCHEME}): "
        "the same person has a new name from 1.1.0 on; these are not new annotators (the keyed scheme: the unkeyed "
        "names could be reversed by guessing e-mails"
    )
    assert expected in (folder / "CHANGELOG.md").read_text(encoding="utf-8")
    assert expected in builder(folder, "diff", "1.0.0", "1.1.0").stdout
    assert builder(folder, "verify", "1.1.0").returncode == 0


def test_release_pushed_and_tagged_with_fake_hub(repo):
    from huggingface_hub import HfApi, set_client_factory
    from huggingface_hub.utils import _http

    from builder.dataset.hub import push_folder

    from .test_dataset import FakeHub

    _, project = repo
    result = cut_release(project, "1.0.0")
    fake = FakeHub()
    set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(fake)))
    try:
        push_folder(
            result.folder, "org/releases", tag="v1.0.0", api=HfApi(token="hf_fake", endpoint="https://huggingface.co")
        )
    finally:
        _http.close_session()
        set_client_factory(_http.default_client_factory)
    assert fake.tag["tag"] == "v1.0.0"
    assert "manifest.json" in fake.committed


def test_unknown_release_is_a_clean_error(repo):
    _, project = repo
    with pytest.raises(BuilderError, match="no release 9.9.9"):
        verify_release(project, "9.9.9")
    assert ROOT.exists()


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_committed_release_rebuilds_byte_identical(project, tmp_path, version):
    """Each release in this repository is reproducible from the snapshot as committed when it was cut (1.0.0's
    has the unkeyed names that 1.1.0 replaced with keyed ones), found in git by the manifest's sha256."""
    from builder.dataset.release.provenance import committed_version

    committed = read_manifest(project, version)
    snapshot = tmp_path / "snapshot.jsonl"
    committed_version("snapshot", project.snapshot_path, committed["hashes"]["snapshot"], snapshot)
    rebuilt = build_release_folder(project, version, tmp_path / version, snapshot=snapshot)
    assert rebuilt == committed
    for name in ("manifest.json", "README.md", *committed["files"]):
        assert (tmp_path / version / name).read_bytes() == (ROOT / "releases" / version / name).read_bytes(), name
    assert verify_release(project, version) == []


def test_a_release_rebuilds_with_the_splitter_it_was_cut_with_after_the_splitter_changes(
    project, tmp_path, monkeypatch
):
    """Manifest format 8 records the splitter (its name and the card's words): a later splitter version changes
    no byte of an earlier release's card or croissant.json (a card that named the current splitter did)."""
    import builder.dataset.card as card
    from builder.dataset.release.provenance import committed_version

    monkeypatch.setattr(card, "splitter_name", lambda: "lines+rules/99")
    monkeypatch.setattr(card, "splitter_summary", lambda: "`lines+rules/99` (a later splitter)")
    committed = read_manifest(project, "1.1.0")
    assert committed["splitter"]["name"] == "lines+rules/3"
    snapshot = tmp_path / "snapshot.jsonl"
    committed_version("snapshot", project.snapshot_path, committed["hashes"]["snapshot"], snapshot)
    assert build_release_folder(project, "1.1.0", tmp_path / "1.1.0", snapshot=snapshot) == committed
    for name in ("README.md", "croissant.json"):
        assert (tmp_path / "1.1.0" / name).read_bytes() == (ROOT / "releases" / "1.1.0" / name).read_bytes(), name


def test_a_release_rebuilds_with_the_config_and_guidelines_it_was_labelled_under(project, tmp_path, monkeypatch):
    """The labeling config builder generates and the guidelines change (a required-stance message, the keys an
    annotator needs): an earlier release's card, croissant.json and manifest keep the hashes of those its
    annotators labelled under, as its manifest records them, so it still rebuilds byte for byte."""
    import dataclasses

    import builder.dataset.card as card
    from builder.dataset.release.provenance import committed_version

    monkeypatch.setattr(card, "config_hash", lambda project: "c" * 64)
    other = tmp_path / "other-guidelines.md"
    other.write_text("# Other guidelines\n", encoding="utf-8")
    changed = dataclasses.replace(project, guidelines_path=other)
    committed = read_manifest(project, "1.1.0")
    snapshot = tmp_path / "snapshot.jsonl"
    committed_version("snapshot", project.snapshot_path, committed["hashes"]["snapshot"], snapshot)
    assert build_release_folder(changed, "1.1.0", tmp_path / "1.1.0", snapshot=snapshot) == committed
    for name in ("README.md", "croissant.json"):
        assert (tmp_path / "1.1.0" / name).read_bytes() == (ROOT / "releases" / "1.1.0" / name).read_bytes(), name


def _parquet_articles(folder) -> dict[str, str]:
    """Each article's split in a dataset folder, from its Parquet files."""
    import pyarrow.parquet as pq

    return {
        article: path.name.split("-")[0]
        for path in sorted((folder / "data").glob("*.parquet"))
        for article in pq.read_table(path, columns=["article_id"]).column("article_id").to_pylist()
    }


def test_build_export_and_release_keep_the_test_articles_releases_froze(repo):
    """`build` reads the frozen test articles from releases/ as `release` does: with other shares, an article in
    1.0.0's test split stays in test in the build, its export and the next release, which agree on every split."""
    folder, project = repo
    cut_release(project, "1.0.0")
    test_1 = set(read_manifest(project, "1.0.0")["splits"]["test"]["article_ids"])
    commit_snapshot(folder, synthetic_tasks(range(40)))
    project = edit_toml(
        folder, "train = 0.6\nvalidation = 0.2\ntest = 0.2", "train = 0.9\nvalidation = 0.05\ntest = 0.05"
    )
    built = builder(folder, "build")  # into dist/<name>, where `export` reads the built dataset
    assert built.returncode == 0 and "warning" not in built.stderr, built.stderr
    build_splits = _parquet_articles(project.dataset_path)
    assert all(build_splits[a] == "test" for a in test_1)
    exported = builder(folder, "export", "--format", "jsonl", "-o", folder / "dist" / "x-jsonl")
    assert exported.returncode == 0, exported.stderr
    lines = (folder / "dist" / "x-jsonl" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    assert test_1 <= {json.loads(line)["article_id"] for line in lines}
    released = cut_release(project, "1.1.0")
    assert _parquet_articles(released.folder) == build_splits  # one rule for build and release
    assert released.manifest["frozen_test_articles"] == len(test_1)


def test_an_uneven_split_is_warned_stated_and_refused_unless_meant(tmp_path):
    """Two articles of 3 sentences with shares 0.6/0.2/0.2: train 3, validation 3, test 0. `build` warns (one
    line per split), the card says so, `release` refuses naming the split, its share and the setting, writing
    nothing; `[splits] allow_uneven = true` makes it meant."""
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(2)))
    built = builder(folder, "build", "-o", folder / "dist" / "x")
    assert built.returncode == 0, built.stderr
    warnings = [line for line in built.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: split validation holds 3 of 6 sentences (50%) against its share of 20% (more than 10 points off); "
        f"`builder release` refuses this unless `[splits] allow_uneven = true` in {folder / 'builder.toml'}",
        "warning: split test holds 0 of 6 sentences (0%) against its share of 20% (empty); "
        f"`builder release` refuses this unless `[splits] allow_uneven = true` in {folder / 'builder.toml'}",
    ]
    card = (folder / "dist" / "x" / "README.md").read_text(encoding="utf-8")
    assert (
        "- **Uneven split**: split test holds 0 of 6 sentences (0%) against its share of 20% (empty) "
        "(`builder release` refuses this unless `[splits] allow_uneven = true`)." in card
    )
    shutil.rmtree(folder / "dist")
    before = snapshot_state(folder)
    assert_refused(
        builder(folder, "release", "1.0.0"),
        "split validation holds 3 of 6 sentences (50%) against its share of 20% (more than 10 points off); "
        f"set `[splits] allow_uneven = true` in {folder / 'builder.toml'} if that is meant",
    )
    assert snapshot_state(folder) == before

    project = edit_toml(folder, "test = 0.2\n", "test = 0.2\nallow_uneven = true\n")
    built = builder(folder, "build", "-o", folder / "dist" / "x")
    assert built.returncode == 0 and "warning" not in built.stderr, built.stderr
    card = (folder / "dist" / "x" / "README.md").read_text(encoding="utf-8")
    assert "(empty) (meant: `[splits] allow_uneven = true`)." in card
    shutil.rmtree(folder / "dist")
    released = builder(folder, "release", "1.0.0")
    assert released.returncode == 0, released.stderr
    assert verify_release(project, "1.0.0") == []
    assert "**Uneven split**" in (folder / "releases" / "1.0.0" / "README.md").read_text(encoding="utf-8")
