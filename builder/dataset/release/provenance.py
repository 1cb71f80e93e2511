"""Where a release's snapshot comes from: git. A release is cut only from a snapshot committed in git (so it
can be rebuilt from git), from a private copy whose bytes were checked against HEAD, and `builder verify`
checks that some commit in the history of HEAD holds the bytes its manifest hashes.

The same holds for the other files that change what a release says (INPUT_FILES: the withheld suggestions
and the gold file, hashed from manifest format 7 on); a rebuild of an old release reads them as the commit
holding the hashed bytes holds them, since a later push appends to the withheld suggestions.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from builder.errors import BuilderError
from builder.jsonio import sha256_file
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
            f"{path} is not in a git work tree: run `git init` in the project folder and commit the project first, "
            "so the release can be rebuilt from git"
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


def _committed_copy(snapshot: Path, copy: Path, what: str = "snapshot") -> str:
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
            f"commit the {what} you mean to release and run the release again"
        )
    return digest.hexdigest()


# The files besides the snapshot that change what a release says (manifest `hashes` names, manifest format 7 on):
# the withheld suggestions give the control arm's figures, the gold file gold accuracy. Each is released as
# committed at HEAD, and a rebuild reads it as the commit its hash names holds it.
INPUT_FILES = ("withheld_suggestions", "gold")


def input_paths(project: Project) -> dict[str, Path]:
    """The INPUT_FILES the project has (the withheld suggestions once a push wrote them; the gold file when
    `[quality] gold` names one), by manifest hash name."""
    from builder.records.steering import withheld_path

    paths = {"withheld_suggestions": withheld_path(project)}
    if project.gold_path is not None:
        paths["gold"] = project.gold_path
    return {name: path for name, path in paths.items() if name == "gold" or path.is_file()}


def _history(path: Path) -> list[str] | None:
    """The commits in the history of HEAD (every branch merged into it) that touch `path`; None when this
    cannot be told: outside a git work tree, or in a shallow clone (whose history is cut off)."""
    if _git_path(path) is None:
        return None
    try:
        shallow = subprocess.run(
            ["git", "rev-parse", "--is-shallow-repository"], cwd=path.parent, capture_output=True, text=True
        )
        commits = subprocess.run(
            ["git", "--literal-pathspecs", "rev-list", "--full-history", "HEAD", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    if shallow.stdout.strip() != "false" or commits.returncode != 0:
        return None
    return commits.stdout.split()


def _commit_holding(path: Path, recorded: str) -> str | None:
    """A commit in the history of HEAD that holds `path` with sha256 `recorded`; None when none does."""
    return next((c for c in _history(path) or () if _sha256_at(c, path) == recorded), None)


def _missing_line(field: str, path: Path, recorded: str) -> str:
    what = "snapshot" if field == "snapshot" else path.name
    return (
        f"hashes.{field}: no commit in the history of HEAD holds {_git_path(path) or path} with the manifest's "
        f"sha256 {recorded[:12]}: the release was not cut from a committed {what}"
    )


def committed_version(field: str, path: Path, recorded: str, copy: Path) -> None:
    """Write `path` as the commit holding the bytes the manifest hashes (`recorded`) holds it to `copy`, for a
    rebuild of an old release: a later push appends to the withheld suggestions, a retrain adds versions, so the
    file as it is now would give other figures. A BuilderError naming the field when no commit holds them
    (or the history cannot be read: outside git, a shallow clone) and the file as it is now is not those bytes."""
    if path.is_file() and sha256_file(path) == recorded:  # unchanged since: no git needed
        shutil.copyfile(path, copy)
        return
    if _history(path) is None:
        raise BuilderError(
            f"hashes.{field}: {path} differs from the version the release hashes ({recorded[:12]}), and git cannot "
            "tell which commit holds that one (not a git work tree with its full history); it cannot be rebuilt"
        )
    commit = _commit_holding(path, recorded)
    if commit is None:
        raise BuilderError(_missing_line(field, path, recorded) + "; it cannot be rebuilt")
    with open(copy, "xb") as target:
        shown = subprocess.run(
            ["git", "cat-file", "--filters", f"{commit}:{_git_path(path)}"], cwd=path.parent, stdout=target
        )
    if shown.returncode != 0 or sha256_file(copy) != recorded:
        raise BuilderError(f"{path}: git cannot give it as commit {commit[:12]} holds it; it cannot be rebuilt")


def input_commit_problems(project: Project, manifest: dict) -> list[str]:
    """The manifest's snapshot hash (and, format 7 on, those of the INPUT_FILES it records) against the file's
    versions in git (HEAD's history, every branch merged into it): a release is cut from committed files, so
    some commit holds those bytes.

    Outside a git work tree, or in a shallow clone (whose history is cut off), this cannot be checked and
    nothing is reported; `builder release` itself refuses to release outside git."""
    paths = {"snapshot": project.snapshot_path, **input_paths(project)}
    if manifest["hashes"].get("withheld_suggestions"):  # recorded, though the file is gone now
        from builder.records.steering import withheld_path

        paths["withheld_suggestions"] = withheld_path(project)
    problems = []
    for field, path in paths.items():
        recorded = manifest["hashes"].get(field)
        if recorded is None or _history(path) is None:
            continue
        if _commit_holding(path, recorded) is None:
            problems.append(_missing_line(field, path, recorded))
    return problems


snapshot_commit_problems = input_commit_problems  # its name before the other inputs were hashed


def unchecked_history_note(project: Project) -> str | None:
    """One line when the snapshot's git history cannot be read (outside a git work tree, a shallow clone), so
    `builder verify` could not check that a commit holds the bytes the manifests hash; else None."""
    if _history(project.snapshot_path) is not None:
        return None
    if _git_path(project.snapshot_path) is None:
        return (
            f"{project.root} is not in a git work tree: the snapshot's commits were not checked "
            "(releases are cut from git: `git init` and commit the project)"
        )
    return "a shallow clone: the snapshot's commits were not checked (fetch the full history to check them)"
