"""A release is cut from the snapshot bytes committed in git, and never from a snapshot a pull is replacing."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import threading
import time

import pytest

from builder.dataset.release import cut as release_module
from builder.dataset.release import cut_release, read_manifest, releases, verify_release
from builder.errors import BuilderError
from builder.jsonio import write_jsonl
from builder.labelstudio.pull import pull
from builder.project import load_project
from builder.sentences.segmenter import sentence_id

from .conftest import ROOT
from .test_pull import Playground
from .test_release import builder, commit_snapshot, git, new_repo, synthetic_tasks


def committed_sha256(folder, path="annotations/snapshot.jsonl") -> str:
    shown = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=folder, capture_output=True, check=True)
    return hashlib.sha256(shown.stdout).hexdigest()


def replace_after_the_git_check(monkeypatch, snapshot, replace) -> list:
    """Make `replace()` run right after the release's git check of `snapshot`, before the release reads it."""
    checked = []
    original = release_module._git_refusal

    def check_then_replace(path):
        refusal = original(path)
        if path.resolve() == snapshot.resolve() and not checked:
            checked.append(path)
            replace()
        return refusal

    monkeypatch.setattr(release_module, "_git_refusal", check_then_replace)
    return checked


def test_a_snapshot_replaced_after_the_git_check_is_not_released(tmp_path, monkeypatch):
    """A snapshot replaced between the git check and the read (a checkout, an editor, a writer that takes no
    lock) is refused, with nothing written; it is never released under a hash that no commit holds."""
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(20)))
    cut_release(project, "1.0.0")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "release 1.0.0")
    commit_snapshot(folder, synthetic_tasks(range(24)))
    committed = committed_sha256(folder)
    changelog = (folder / "CHANGELOG.md").read_bytes()

    def replace():
        staged = folder / "annotations" / ".snapshot.jsonl.tmp"
        write_jsonl(staged, synthetic_tasks(range(30)))
        staged.replace(project.snapshot_path)  # atomically, as a pull writes it

    checked = replace_after_the_git_check(monkeypatch, project.snapshot_path, replace)
    try:
        result = cut_release(project, "1.1.0")
    except BuilderError as exc:
        assert "changed while the release read it" in str(exc) and "commit the snapshot" in str(exc)
        assert not (folder / "releases" / "1.1.0").exists()
        assert (folder / "CHANGELOG.md").read_bytes() == changelog
        assert sorted(p.name for p in (folder / "releases").iterdir()) == ["1.0.0"]
    else:
        assert result.manifest["hashes"]["snapshot"] == committed, "released a snapshot that no commit holds"
    assert checked
    assert releases(project) == ["1.0.0"]


def test_verify_finds_a_release_whose_snapshot_no_commit_holds(tmp_path):
    """The manifest's snapshot hash must be that of the snapshot at some commit in the history of HEAD."""
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(20)))
    cut_release(project, "1.0.0")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "release 1.0.0")
    commit_snapshot(folder, synthetic_tasks(range(24)))
    assert verify_release(project, "1.0.0") == []  # an older commit holds its snapshot
    # a history in which no commit holds the snapshot 1.0.0 was cut from
    write_jsonl(project.snapshot_path, synthetic_tasks(range(21)))
    git(folder, "checkout", "-q", "--orphan", "rewritten")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "history without the snapshot of 1.0.0")
    manifest = read_manifest(project, "1.0.0")
    problems = verify_release(project, "1.0.0")
    assert any(
        p.startswith("hashes.snapshot: no commit in the history of HEAD holds annotations/snapshot.jsonl")
        and manifest["hashes"]["snapshot"][:12] in p
        for p in problems
    ), problems
    result = builder(folder, "verify", "1.0.0")
    assert result.returncode == 1 and "mismatch: hashes.snapshot: no commit" in result.stderr
    shutil.rmtree(folder / ".git")  # outside git it cannot be checked, and is not held against the release
    assert verify_release(project, "1.0.0") == []


class HashedPlayground(Playground):
    """The pull tests' playground, with sentence ids as `builder split` makes them (a release validates them)."""

    def sentences(self, n: int) -> list[dict]:
        return [{**s, "id": sentence_id(s["article_id"], s["text"]), "occurrence": 0} for s in super().sentences(n)]


@pytest.mark.labelstudio
def test_a_pull_waits_for_a_release_reading_the_snapshot(ls, tmp_path, monkeypatch):
    """A real pull started at the worst moment of a release (after its git check, before it reads the
    snapshot) waits for the release, which is cut from the committed snapshot; then the pull writes its own."""
    folder = tmp_path / "repo"
    playground = HashedPlayground(ls, folder, "pull during release")
    toml = folder / "builder.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8")
        .replace(f'guidelines = "{ROOT / "guidelines.md"}"', 'guidelines = "guidelines.md"')
        .replace("test = 0.2\n", "test = 0.2\nallow_uneven = true\n"),  # 5 sentences cannot keep 3 shares
        encoding="utf-8",
    )
    shutil.copyfile(ROOT / "guidelines.md", folder / "guidelines.md")
    project = playground.project = load_project(toml)
    assert project.allow_uneven_splits
    for pick in range(5):
        playground.apply("annotate", pick, "neutral")
    pull(ls, project)
    (folder / ".gitignore").write_text(".builder/\n", encoding="utf-8")
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "snapshot")
    committed = committed_sha256(folder)
    playground.apply("annotate", 5, "against")  # the next pull writes another snapshot

    logs: list[str] = []
    pulled: list = []

    def pull_now():
        thread = threading.Thread(target=lambda: pulled.append(pull(ls, project, log=logs.append)), daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while thread.is_alive() and time.monotonic() < deadline:  # until it has replaced the snapshot, or waits
            if any("waiting for a builder release" in line for line in logs):
                break
            time.sleep(0.05)
        pull_now.thread = thread

    replace_after_the_git_check(monkeypatch, project.snapshot_path, pull_now)
    result = cut_release(project, "1.0.0")
    assert result.manifest["hashes"]["snapshot"] == committed, "released a snapshot that no commit holds"
    assert verify_release(project, "1.0.0") == []
    pull_now.thread.join(timeout=120)
    assert pulled and pulled[0].written == 6, logs
    assert any("waiting for a builder release or pull that is reading" in line for line in logs), logs
    assert hashlib.sha256(project.snapshot_path.read_bytes()).hexdigest() != committed


def test_a_release_waits_for_a_pull_holding_the_snapshot(tmp_path):
    """While a pull holds the snapshot lock, `builder release` says so and waits; then it releases."""
    from builder.locks import snapshot_lock

    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(20)))
    with snapshot_lock(project.snapshot_path):
        run = subprocess.Popen(
            [sys.executable, "-m", "builder", "release", "1.0.0"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        waiting = run.stderr.readline()  # the first line it writes is that it waits
        assert "waiting for a builder pull or release that is using" in waiting, waiting
        assert run.poll() is None and not (folder / "releases" / "1.0.0").exists()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert verify_release(project, "1.0.0") == []
