"""A project folder that stays clean and honest: the README's own steps leave git nothing generated to commit,
`release` needs git and says so, says what to commit, and refuses the guidelines template's placeholders."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

from builder.dataset.release import releases, verify_release
from builder.scaffold import guideline_placeholders, init_project

from .conftest import ROOT, run_cli
from .test_release import builder, git, new_repo, synthetic_tasks

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
NEEDS_LABEL_STUDIO = (
    "builder server",
    "builder annotators",
    "builder push",
    "builder pull",
    "builder validate",
    "builder build",
)


def readme_steps() -> list[str]:
    """The commands of the README's "Your own dataset" block, comments cut off, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own dataset", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split(" #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_says_git_init_before_anything_git_needs():
    steps = readme_steps()
    assert "git init" in steps
    assert steps.index("git init") < next(i for i, step in enumerate(steps) if step.startswith("builder release"))


def test_the_readme_steps_leave_no_generated_sentences_for_git(tmp_path):
    """Run the README's steps as written (those that need no Label Studio) in a folder outside the repository,
    with a corpus whose fields have other names: `git status` then lists no sentences file, and `git add -A`
    commits none."""
    import os
    import sys

    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}  # this checkout's builder, from any folder
    cwd = tmp_path
    ran = []
    for step in readme_steps():
        if step.startswith("builder release"):  # it and what follows need a release: tests/test_own_dataset_steps.py
            break
        if step.startswith("pip install") or step.startswith(NEEDS_LABEL_STUDIO):
            continue
        if step.startswith("cd "):
            cwd = cwd / step[3:]
            (cwd / "articles").mkdir()  # the user's articles, where the split step reads them
            (cwd / "articles" / "port.txt").write_text(
                "Port plan\nThe council approved the port. Fishermen said it would ruin the bay.\n", encoding="utf-8"
            )
            continue
        if step.startswith("builder "):
            args = shlex.split(step)[1:]
            if args[0] == "init":
                args.append("--yes")
            done = subprocess.run(
                [sys.executable, "-m", "builder", *args], cwd=cwd, capture_output=True, text=True, env=env
            )
        else:
            done = subprocess.run(step, shell=True, cwd=cwd, capture_output=True, text=True, env=env)
        assert done.returncode == 0, (step, done.stderr)
        ran.append(step)
    assert any(step.startswith("builder split") for step in ran) and "git init" in ran
    assert (cwd / "work" / "sentences.jsonl").is_file()  # the split wrote its sentences where the README says
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=cwd, capture_output=True)
    assert "sentences" not in status.stdout.decode(), status.stdout
    committed = subprocess.run(["git", "ls-files"], cwd=cwd, capture_output=True, text=True).stdout.split()
    assert "builder.toml" in committed and not [path for path in committed if path.startswith("work/")]


def test_init_says_git_init_outside_a_repository(tmp_path):
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = run_cli("init", tmp_path / "fresh", "--yes", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^  git init +releases are cut from what git holds", done.stdout, re.MULTILINE)
    git(tmp_path / "fresh", "init", "-q")
    done = run_cli("init", tmp_path / "fresh" / "inner", "--yes", cwd=tmp_path, env=env)
    assert "git init" not in done.stdout  # already inside a git work tree


def template_guidelines(tmp_path) -> str:
    init_project(
        tmp_path / "template", name="template", stance_labels=("support", "oppose"), entity_labels=("PER", "SHIP")
    )
    return (tmp_path / "template" / "guidelines.md").read_text(encoding="utf-8")


def test_the_template_placeholders_are_found_and_the_bundled_guidelines_have_none(tmp_path):
    text = template_guidelines(tmp_path)
    found = guideline_placeholders(text)
    assert any("describe it here" in line for _, line in found) and any(line == "- *...*" for _, line in found)
    for number, line in found:
        assert text.splitlines()[number - 1].strip() == line
    assert guideline_placeholders((ROOT / "guidelines.md").read_text(encoding="utf-8")) == []


def test_release_refuses_placeholders_unless_allowed_then_says_what_to_commit(tmp_path, monkeypatch):
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(20)))
    text = template_guidelines(tmp_path)
    (folder / "guidelines.md").write_text(text, encoding="utf-8")
    git(folder, "commit", "-qam", "the template's guidelines")
    refused = builder(folder, "release", "1.0.0")
    assert refused.returncode == 1
    first = guideline_placeholders(text)[0][0]
    assert refused.stderr.startswith(f"error: {folder / 'guidelines.md'}:{first}: still the template's placeholder")
    assert "--allow-placeholders" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert releases(project) == [] and not (folder / "CHANGELOG.md").exists()

    monkeypatch.chdir(folder)
    released = builder(folder, "release", "1.0.0", "--allow-placeholders")
    assert released.returncode == 0, released.stderr
    hint = released.stdout.strip().splitlines()[-1]
    assert hint == "next: commit the release: git add releases/1.0.0 CHANGELOG.md && git commit -m 'release 1.0.0'"
    command = hint.split(": ", 2)[2]
    subprocess.run(
        command, shell=True, cwd=folder, check=True, capture_output=True, env={**GIT_ENV, "PATH": "/usr/bin:/bin"}
    )
    status = subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True)
    assert status.stdout == ""  # exactly what the release wrote was committed
    assert verify_release(project, "1.0.0") == []


def test_release_outside_git_says_git_init(tmp_path):
    folder, _ = new_repo(tmp_path / "repo", synthetic_tasks(range(4)))
    shutil.rmtree(folder / ".git")
    refused = builder(folder, "release", "1.0.0")
    assert refused.returncode == 1
    assert "is not in a git work tree: run `git init` in the project folder" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_verify_outside_git_says_what_it_could_not_check(tmp_path):
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(20)))
    assert builder(folder, "release", "1.0.0").returncode == 0
    checked = builder(folder, "verify", "1.0.0")
    assert checked.returncode == 0 and "note:" not in checked.stderr  # in git: nothing to say
    shutil.rmtree(folder / ".git")
    unchecked = builder(folder, "verify", "1.0.0")
    assert unchecked.returncode == 0, unchecked.stderr
    assert unchecked.stderr.strip().splitlines() == [
        f"note: {project.root} is not in a git work tree: the snapshot's commits were not checked "
        "(releases are cut from git: `git init` and commit the project)"
    ]
