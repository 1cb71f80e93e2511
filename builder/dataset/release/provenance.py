"""Where a release's snapshot comes from: git. A release is cut only from a snapshot committed in git (so it
can be rebuilt from git), from a private copy whose bytes were checked against HEAD, and `builder verify`
checks that some commit in the history of HEAD holds the bytes its manifest hashes.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from builder.errors import BuilderError
from builder.project import Project


def _git_refusal(path: Path) -> str | None:
    """Why `path` cannot be released from (not committed in git), as a one-line message; None if clean."""
    try:
        status = subprocess.run(
            ["git", "--literal-pathspecs", "status", "--porcelain", "--ignored", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "git cannot be run: releases are cut from files committed in git; install git"
    if status.returncode != 0:
        return (
            f"{path} is not in a git work tree: commit the project to git first, so the release can be rebuilt from git"
        )
    code = status.stdout[:2]
    if not code:
        return None
    if code == "??":
        return f"{path} is not committed (untracked): add and commit it first, so the release can be rebuilt from git"
    if code == "!!":
        return f"{path} is ignored by git: commit it (git add -f) first, so the release can be rebuilt from git"
    return f"{path} has uncommitted changes: commit it first, so the release can be rebuilt from git"


def _git_path(path: Path) -> str | None:
    """`path` relative to the top of its git work tree (as `HEAD:<this>` names it), or None outside one."""
    try:
        prefix = subprocess.run(
            ["git", "rev-parse", "--show-prefix"], cwd=path.parent, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return prefix.stdout.strip("\n") + path.name if prefix.returncode == 0 else None


def _sha256_at(commit: str, path: Path) -> str | None:
    """The sha256 of `path` as committed in `commit`, in its work-tree form (git's filters applied, as a
    checkout writes it); None when that commit does not hold it."""
    name = _git_path(path)
    if name is None:
        return None
    digest = hashlib.sha256()
    try:
        with subprocess.Popen(
            ["git", "cat-file", "--filters", f"{commit}:{name}"],
            cwd=path.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as show:
            for chunk in iter(lambda: show.stdout.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest() if show.returncode == 0 else None


def _committed_copy(snapshot: Path, copy: Path) -> str:
    """Copy `snapshot` to the private file `copy`, checking that the copied bytes are those committed at HEAD;
    returns their sha256.

    The release is built from `copy` only, so it hashes and reads the very bytes that were checked: a
    snapshot replaced after `git status` looked at it (by an editor, a checkout, or a pull that did not
    take the snapshot lock) is refused, never released under a hash that no commit holds."""
    digest = hashlib.sha256()
    try:
        with open(snapshot, "rb") as source, open(copy, "xb") as target:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
                target.write(chunk)
    except OSError as exc:
        raise BuilderError(f"{snapshot}: cannot read it ({exc.strerror}); nothing was released") from None
    if _sha256_at("HEAD", snapshot) != digest.hexdigest():
        raise BuilderError(
            f"{snapshot} changed while the release read it: the bytes read are not those committed at HEAD; "
            "commit the snapshot you mean to release and run the release again"
        )
    return digest.hexdigest()


def snapshot_commit_problems(project: Project, manifest: dict) -> list[str]:
    """The manifest's snapshot hash against the snapshot file's versions in git (HEAD's history, every branch
    merged into it): a release is cut from a committed snapshot, so some commit holds those bytes.

    Outside a git work tree, or in a shallow clone (whose history is cut off), this cannot be checked and
    nothing is reported; `builder release` itself refuses to release outside git."""
    snapshot = project.snapshot_path
    name = _git_path(snapshot)
    if name is None:
        return []
    try:
        shallow = subprocess.run(
            ["git", "rev-parse", "--is-shallow-repository"], cwd=snapshot.parent, capture_output=True, text=True
        )
        commits = subprocess.run(
            ["git", "--literal-pathspecs", "rev-list", "--full-history", "HEAD", "--", snapshot.name],
            cwd=snapshot.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return []
    if shallow.stdout.strip() != "false" or commits.returncode != 0:
        return []
    recorded = manifest["hashes"]["snapshot"]
    if any(_sha256_at(commit, snapshot) == recorded for commit in commits.stdout.split()):
        return []
    return [
        f"hashes.snapshot: no commit in the history of HEAD holds {name} with the manifest's sha256 "
        f"{recorded[:12]}: the release was not cut from a committed snapshot"
    ]
