"""Outputs: builder replaces only what it wrote, refuses every other folder, and a full disk is one line."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from builder.cli import cli
from builder.dataset.build import build_dataset
from builder.errors import BuilderError
from builder.outputs import MARKER, OutputError, read_marker
from builder.project import default_project_file, find_project_file

from .conftest import ROOT, SAMPLE, cli_env, in_ci, make_project, run_cli

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"


def tree(folder) -> dict[str, str]:
    """Every file under `folder` (symlinks not followed) with the sha256 of its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(folder))] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def one_line_error(result, *needles, after_output: bool = False) -> str:
    """`result` (subprocess or CliRunner) failed with exit 1 and one `error:` line holding `needles`
    (`after_output`: the last line, after what the command printed before it failed)."""
    code = getattr(result, "returncode", getattr(result, "exit_code", None))
    assert code == 1, (code, result.stdout, result.stderr)
    last = result.stderr.splitlines()[-1] + "\n" if after_output else result.stderr
    assert last.startswith("error: ") and result.stderr.endswith(last) and last.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


@pytest.fixture
def project_copy(tmp_path):
    """A project folder with a snapshot, a published release, a folder of the user's and a link to the root."""
    root = tmp_path / "project"
    project = make_project(root, "outputs", snapshot=SNAPSHOT)
    (root / "releases" / "1.0.0").mkdir(parents=True)
    (root / "releases" / "1.0.0" / "manifest.json").write_text("{}\n", encoding="utf-8")
    (root / "notes").mkdir()
    (root / "notes" / "ideas.txt").write_text("mine\n", encoding="utf-8")
    (root / "link-to-root").symlink_to(root)
    return root, project


def cli_in(folder, monkeypatch, *args):
    monkeypatch.chdir(folder)
    return CliRunner().invoke(cli, [str(a) for a in args])


# --- 1. an output folder may only replace a previous output of builder's ---------------------------


def test_build_refuses_every_folder_it_did_not_create(project_copy, monkeypatch):
    root, project = project_copy
    before = tree(root)
    monkeypatch.chdir(root)
    refused = {
        ".": "contains the project folder",
        "..": "contains the project folder",
        str(root): "contains the project folder",
        "link-to-root": "contains the project folder",
        "/": "root of the file system",
        "annotations": "which builder never replaces",
        "annotations/new": "which builder never replaces",
        "releases": "which builder never replaces",
        "releases/1.0.0": "which builder never replaces",
        "releases/2.0.0": "which builder never replaces",
        "notes": f"not empty and was not written by builder (no {MARKER})",
        "builder.toml": "it is a file",
    }
    for output, why in refused.items():
        with pytest.raises(BuilderError, match=re.escape(why)):
            build_dataset(project, SNAPSHOT, output)
    assert tree(root) == before
    assert sorted(p.name for p in root.parent.iterdir()) == ["project"]  # no staging folder left beside it
    for output in (".", "..", "annotations"):  # through the CLI: one line naming the folder, no traceback
        result = cli_in(root, monkeypatch, "build", "-o", output)
        one_line_error(
            result, "refusing to write into", str((root / output).resolve()), "pass -o a new or empty folder"
        )
    assert tree(root) == before


def test_build_never_replaces_a_trained_model(project_copy, monkeypatch):
    """A `builder train` folder carries builder's marker too: a build must not take it for an old dataset."""
    from builder.learn.train import train_model

    root, project = project_copy
    monkeypatch.chdir(root)
    model = train_model(project, SNAPSHOT, root / "dist" / "model").folder
    before = tree(model)
    result = cli_in(root, monkeypatch, "build", "-o", "dist/model")
    one_line_error(result, "refusing to write into", "it holds the output of `builder train`")
    assert tree(model) == before


def test_run_refuses_its_output_folder_before_any_work(project_copy, monkeypatch):
    root, _ = project_copy
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    result = cli_in(root, monkeypatch, "run", "--output", "annotations")
    one_line_error(result, f"refusing to write into {root / 'annotations'}", "pass --output a new or empty folder")
    assert not (root / ".builder").exists() and not (root / "build").exists()


def test_build_replaces_only_its_own_output(project, tmp_path):
    output = tmp_path / "empty"
    output.mkdir()
    build_dataset(project, SNAPSHOT, output)  # an empty folder is fine
    marker = read_marker(output)
    assert marker["command"] == "builder build"
    assert marker["files"] == sorted(
        str(p.relative_to(output)) for p in output.rglob("*") if p.is_file() and p.name != MARKER
    )
    first = tree(output)
    link = tmp_path / "link"
    link.symlink_to(output)
    build_dataset(project, SNAPSHOT, link)  # its own output, through a symlink: replaced, the link stays a link
    assert link.is_symlink() and tree(output) == first
    (output / "data" / "my-notes.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(BuilderError, match=r"holds files builder did not write \(data/my-notes.txt\)"):
        build_dataset(project, SNAPSHOT, output)
    assert (output / "data" / "my-notes.txt").read_text(encoding="utf-8") == "mine\n"
    (output / "data" / "my-notes.txt").unlink()
    (output / MARKER).write_text("not json", encoding="utf-8")
    with pytest.raises(BuilderError, match="not empty and was not written by builder"):
        build_dataset(project, SNAPSHOT, output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link"]


def test_marker_is_not_data_and_releases_carry_none(project, tmp_path):
    import datasets

    from builder.dataset.release import build_release_folder

    datasets.disable_progress_bars()
    marked = tmp_path / "marked"
    build_dataset(project, SNAPSHOT, marked)
    plain = tmp_path / "plain"
    shutil.copytree(marked, plain)
    (plain / MARKER).unlink()
    with_marker, without = datasets.load_dataset(str(marked)), datasets.load_dataset(str(plain))
    assert set(with_marker) == set(without) == {"train", "validation", "test"}
    for split in without:
        assert with_marker[split].to_dict() == without[split].to_dict()
        assert not any(MARKER in f for f in with_marker[split].info.download_checksums or {})
    manifest = build_release_folder(project, "1.0.0", tmp_path / "release" / "1.0.0")
    assert not (tmp_path / "release" / "1.0.0" / MARKER).exists() and MARKER not in manifest["files"]


@pytest.mark.parametrize(
    "args",
    [
        ("split", SAMPLE, "-o", "."),
        ("split", SAMPLE, "-o", "some-folder"),
        ("split", SAMPLE, "-o", "../"),
        ("split", SAMPLE, "-o", "x.jsonl", "--report", "some-folder"),
        ("validate", "-o", "."),
        ("validate", "-o", "r.jsonl", "--report", "some-folder"),
        ("pull", "-o", "../"),
    ],
)
def test_file_outputs_that_are_folders_are_one_line(project_copy, monkeypatch, args):
    root, _ = project_copy
    (root / "some-folder").mkdir()
    before = tree(root)
    result = cli_in(root, monkeypatch, *args)
    one_line_error(result, "is a folder; name a file")
    assert tree(root) == before


def test_a_file_output_under_a_file_is_one_line(project_copy, monkeypatch):
    root, _ = project_copy
    result = cli_in(root, monkeypatch, "validate", "-o", "builder.toml/records.jsonl")
    one_line_error(
        result, "cannot write builder.toml/records.jsonl (builder.toml is not a folder); nothing was written"
    )


# --- 2. a full disk is one line; the previous output is kept; no temp file is left --------------------


class SmallDisk:
    """A folder on a 1 MiB tmpfs (as root), else a plain folder whose CLI children may write only 1 KiB per file."""

    def __init__(self, folder, mounted: bool) -> None:
        self.folder = folder
        self.mounted = mounted

    def fill(self) -> None:
        """Take every free byte of the tmpfs (a no-op under the file size limit)."""
        if not self.mounted:
            return
        fd = os.open(self.folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    def run(self, *args, env=None, cwd=None):
        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # Python ignores SIGXFSZ: writes fail with EFBIG

        return subprocess.run(
            [sys.executable, "-m", "builder", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            check=False,
            preexec_fn=None if self.mounted else limit,
        )

    def tree(self) -> dict[str, str]:
        return {name: digest for name, digest in tree(self.folder).items() if name != "filler"}

    def files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.name != "filler")

    def reason(self) -> str:
        return "No space left on device" if self.mounted else "File too large"


def full_disk_required() -> bool:
    """CI (`in_ci()`), or BUILDER_REQUIRE_FULL_DISK=1, must exercise a real "No space left on device": there
    a tmpfs that cannot be mounted fails the test instead of falling back to a file size limit or skipping,
    so a green run means the promised condition was tested."""
    return in_ci() or os.environ.get("BUILDER_REQUIRE_FULL_DISK") == "1"


def _mount(folder) -> bool:
    """Mount a 1 MiB tmpfs on `folder`; False where that is impossible (not root, no mount), unless
    `full_disk_required()`: then the test fails, naming why."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        why = "not root" if os.geteuid() != 0 else "no mount command"
        mounted = None
    else:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=False, capture_output=True, text=True
        )
        mounted, why = result.returncode == 0, (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
    if mounted:
        return True
    if full_disk_required():
        pytest.fail(f"a full disk must be tested here but no tmpfs could be mounted on {folder}: {why}")
    return False


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    disk = SmallDisk(folder, _mount(folder))
    yield disk
    if disk.mounted and subprocess.run(["umount", str(folder)], check=False).returncode != 0:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)  # a file still open: detach now, free later


@pytest.fixture
def size_limited(tmp_path):
    """The fallback where mounting is impossible, exercised even as root."""
    folder = tmp_path / "limited"
    folder.mkdir()
    return SmallDisk(folder, mounted=False)


def test_a_tmpfs_that_cannot_be_mounted_fails_where_a_full_disk_is_required(tmp_path, monkeypatch):
    """In CI a failed mount is a failure, not a quiet fallback to the file size limit or a skip."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mount").write_text("#!/bin/sh\necho 'mount: permission denied' >&2\nexit 32\n")
    (fake / "mount").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    for name in ("CI", "BUILDER_CI", "BUILDER_REQUIRE_FULL_DISK"):
        monkeypatch.delenv(name, raising=False)
    assert _mount(tmp_path) is False  # a developer's machine: the file size limit stands in
    for name, value in (("CI", "true"), ("BUILDER_CI", "1"), ("BUILDER_REQUIRE_FULL_DISK", "1")):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(pytest.fail.Exception, match="no tmpfs could be mounted.*permission denied"):
                _mount(tmp_path)


PREVIOUS = {  # a previous output of each kind, as builder writes it (only those may be replaced)
    "sentences.articles.jsonl": '{"id": "previous", "source": {}, "splitter": "lines+segtok/1"}\n',
    "sentences.jsonl": '{"article_id": "previous", "id": "x", "sentence_index": 0}\n',
    "records.jsonl": '{"article_id": "previous", "id": "x", "sentence_index": 0}\n',
    "snapshot.jsonl": '{"annotations": [], "data": {"sentence_id": "previous"}, "task_id": 1}\n',
    "report.json": '{"problems": [], "stage": "previous"}\n',
}


def previous(disk, *names) -> dict[str, str]:
    for name in names:
        (disk.folder / name).write_text(PREVIOUS[name], encoding="utf-8")
    return disk.tree()


def test_split_on_a_full_disk(small_disk):
    before = previous(small_disk, "sentences.jsonl", "sentences.articles.jsonl")
    small_disk.fill()
    result = small_disk.run("split", SAMPLE, "-o", small_disk.folder / "sentences.jsonl", cwd=ROOT)
    one_line_error(result, "cannot write", small_disk.reason(), "the previous", "was kept")
    assert small_disk.tree() == before
    assert small_disk.files() == ["sentences.articles.jsonl", "sentences.jsonl"]


def test_split_under_a_file_size_limit(size_limited):
    """Where no tmpfs can be mounted, RLIMIT_FSIZE gives the same failure (EFBIG)."""
    before = previous(size_limited, "sentences.jsonl", "sentences.articles.jsonl")
    result = size_limited.run("split", SAMPLE, "-o", size_limited.folder / "sentences.jsonl", cwd=ROOT)
    one_line_error(result, "cannot write", "(File too large); the previous", "was kept")
    assert size_limited.tree() == before


def test_validate_on_a_full_disk(small_disk):
    before = previous(small_disk, "records.jsonl", "report.json")
    small_disk.fill()
    result = small_disk.run(
        "validate", "-o", small_disk.folder / "records.jsonl", "--report", small_disk.folder / "report.json", cwd=ROOT
    )
    one_line_error(result, f"cannot write {small_disk.folder / 'records.jsonl'} ({small_disk.reason()}); the previous")
    assert small_disk.tree() == before
    assert small_disk.files() == ["records.jsonl", "report.json"]


def test_validate_report_on_a_full_disk_names_the_report(small_disk, tmp_path):
    if not small_disk.mounted:
        pytest.skip("needs a tmpfs (root): under the file size limit the report is small enough to be written")
    before = previous(small_disk, "report.json")
    small_disk.fill()
    result = small_disk.run(
        "validate", "-o", tmp_path / "records.jsonl", "--report", small_disk.folder / "report.json", cwd=ROOT
    )
    one_line_error(
        result,
        f"cannot write {small_disk.folder / 'report.json'} (No space left on device); the previous",
        after_output=True,
    )
    assert small_disk.tree() == before


def test_build_on_a_full_disk(small_disk, project):
    output = small_disk.folder / "dataset"
    build_dataset(project, SNAPSHOT, output)
    before = small_disk.tree()
    small_disk.fill()
    result = small_disk.run("build", "-o", output, cwd=ROOT)
    one_line_error(result, f"cannot write {output} ({small_disk.reason()}); the previous {output} was kept")
    assert small_disk.tree() == before
    assert small_disk.files() == ["dataset"]


def test_build_on_a_full_disk_with_no_previous_output(small_disk):
    small_disk.fill()
    result = small_disk.run("build", "-o", small_disk.folder / "dataset", cwd=ROOT)
    one_line_error(result, f"({small_disk.reason()}); nothing was written")
    assert small_disk.files() == []


def test_server_state_on_a_full_disk(small_disk):
    from builder.labelstudio import server

    if not small_disk.mounted:
        pytest.skip("needs a tmpfs (root)")
    state = server.ServerState(
        url="http://127.0.0.1:1", pid=0, port=1, token="t", username="u", password="p", data_dir="d", version="v"
    )
    server.write_state(small_disk.folder, state)
    before = small_disk.tree()
    small_disk.fill()
    with pytest.raises(
        OutputError, match=r"cannot write .*server.json \(No space left on device\); the previous .* was kept"
    ):
        server.write_state(small_disk.folder, server.ServerState(**{**vars(state), "token": "x" * 8192}))
    assert small_disk.tree() == before


def test_pull_on_a_full_disk(ls, small_disk, tmp_path):
    from builder.labelstudio.push import push_sentences

    from .test_labelstudio import annotate, synthetic_sentences

    project = make_project(tmp_path / "project", "full disk pull")
    pushed = push_sentences(ls, project, synthetic_sentences(3, "f"))
    for task in ls.client().tasks.list(project=pushed.project_id):  # a snapshot of more than 1 KiB
        annotate(ls, task.id, [], "neutral", 1.0)
    before = previous(small_disk, "snapshot.jsonl")
    small_disk.fill()
    result = small_disk.run(
        "pull", "-o", small_disk.folder / "snapshot.jsonl", env=cli_env(ls), cwd=tmp_path / "project"
    )
    one_line_error(
        result,
        f"cannot write {small_disk.folder / 'snapshot.jsonl'} ({small_disk.reason()}); the previous",
        after_output=True,
    )
    assert ls.api_key not in result.stderr
    assert small_disk.tree() == before
    assert not (tmp_path / "project" / ".builder" / "pull-state.json").exists()


# --- 3. outside a project, nothing is written into the installed package -------------------------------


@pytest.fixture
def outside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUILDER_CONFIG", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    if find_project_file(tmp_path) is not None:
        pytest.skip("a builder.toml above the temporary folder")
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ("pull",),
        ("release", "1.0.0"),
        ("validate",),
        ("build",),
        ("run",),
        ("server", "start"),
        ("schema",),
        ("schema", "--check"),
    ],
)
def test_commands_outside_a_project_refuse_to_write_into_the_package(outside, args):
    """Every file of the package keeps its bytes (a rewritten builder.toml or guidelines.md counts, not
    only a new file), and nothing is added or removed; bytecode caches aside."""
    package = default_project_file().parents[1]

    def contents() -> dict[str, str]:
        return {path: digest for path, digest in tree(package).items() if "__pycache__" not in path.split(os.sep)}

    before = contents()
    result = CliRunner().invoke(cli, list(args))
    one_line_error(result, f"no builder.toml in {outside} or above: run this in your project folder, or pass --config")
    assert contents() == before


def test_outside_a_project_explicit_outputs_still_work(outside):
    runner = CliRunner()
    validated = runner.invoke(
        cli, ["validate", "--snapshot", str(SNAPSHOT), "-o", "records.jsonl", "--report", "report.json"]
    )
    assert validated.exit_code == 0, validated.stderr
    built = runner.invoke(cli, ["build", "--snapshot", str(SNAPSHOT), "-o", "dataset"])
    assert built.exit_code == 0, built.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["dataset", "records.jsonl", "report.json"]


def test_missing_project_file_says_what_to_do_today(tmp_path):
    result = run_cli("--config", tmp_path / "nope.toml", "stats")
    message = one_line_error(result, "project file not found; pass --config", "run `builder init`")
    assert str(default_project_file()) not in message


# --- file outputs replace only builder's own outputs of the same kind --------------------------------


def test_file_outputs_never_overwrite_inputs_or_files_builder_did_not_write(tmp_path):
    project_dir = tmp_path / "project"
    make_project(project_dir, "file outputs", snapshot=SNAPSHOT)
    articles = project_dir / "articles"
    shutil.copytree(SAMPLE, articles)
    user_article = articles / "gum_news_sample.jsonl"
    notes = project_dir / "notes.md"
    notes.write_text("my notes\n", encoding="utf-8")
    snapshot = project_dir / "annotations" / "snapshot.jsonl"
    before = tree(project_dir)
    closed = {**os.environ, "LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "x" * 40}
    cases = [
        (("split", articles, "-o", user_article), "builder did not write it"),  # an input article file
        (("split", articles / "ri-chang-dae-moscow.txt", "-o", notes), "builder did not write it"),
        (("split", articles, "-o", project_dir / "s.jsonl", "--report", snapshot), "it holds Label Studio tasks"),
        (("validate", "-o", snapshot), "it holds Label Studio tasks"),  # the snapshot it reads
        (("validate", "--report", notes), "builder did not write it"),
        (("pull", "-o", user_article), "builder did not write it"),
    ]
    for args, expected in cases:
        result = run_cli(*args, cwd=project_dir, env=closed)
        one_line_error(result, "refusing to overwrite", expected)
    assert tree(project_dir) == before
    # builder's own outputs of the same kind are replaced as before
    for _ in range(2):
        assert (
            run_cli(
                "split",
                articles,
                "-o",
                project_dir / "out" / "s.jsonl",
                "--report",
                project_dir / "out" / "r.json",
                cwd=project_dir,
            ).returncode
            == 0
        )
        assert (
            run_cli(
                "validate",
                "-o",
                project_dir / "out" / "records.jsonl",
                "--report",
                project_dir / "out" / "v.json",
                cwd=project_dir,
            ).returncode
            == 0
        )


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_device_or_fifo_is_never_replaced_by_an_output(tmp_path, kind):
    """`-o /dev/null` (as root) must not turn /dev/null into a file: any existing path that is neither a
    file nor a folder is refused, by the command and by the atomic write underneath."""
    import stat as stat_codes

    from builder.jsonio import atomic_write
    from builder.outputs import OutputError

    target = tmp_path / kind
    if kind == "fifo":
        os.mkfifo(target)
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(target, 0o666 | stat_codes.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    before = target.lstat()
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    for path in (target, link):
        result = run_cli("split", SAMPLE, "-o", path, cwd=tmp_path)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert "not a file builder may replace" in result.stderr
        with pytest.raises(OutputError, match="not a file builder may replace"):
            with atomic_write(path) as handle:
                handle.write(b"x")
    after = target.lstat()
    assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev, before.st_ino)
