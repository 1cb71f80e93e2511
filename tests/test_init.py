"""`builder init`: a new project in one command, checked before anything is written, never over a user's file."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import jsonschema
import markdown
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from builder import cli as cli_module
from builder.cli import cli
from builder.errors import ConfigError
from builder.outputs import OutputError
from builder.project import load_project
from builder.resources import load_schema
from builder.scaffold import HOTKEYS, assign_hotkeys, init_project, toml_string

from .conftest import ROOT, cli_env, run_cli
from .test_outputs import _mount, one_line_error

EXPECTED = ["annotations", "annotations/.gitkeep", ".gitignore", "builder.toml", "guidelines.md"]


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.name != "filler"
    }


def invoke(*args, cwd: Path, input: str | None = None):
    """The CLI in process, in `cwd` (CliRunner: stdin is not a terminal)."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], input=input)
    finally:
        os.chdir(old)


def check_against_schema(path: Path) -> dict:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(load_schema("config")).validate(raw)
    return raw


# --- flags, defaults, prompts ------------------------------------------------------------------------------


def test_flags_only_write_a_project_that_loads(tmp_path):
    result = invoke(
        "init",
        "news",
        "--name",
        "climate-stance",
        "--target",
        "the new climate law",
        "--stance-labels",
        "support, oppose,none",
        "--entity-labels",
        "PERSON,PLACE,ORG",
        "--language",
        "de",
        "--license",
        "cc-by-sa-4.0",
        "--annotators-per-sentence",
        "3",
        "--project-title",
        "Climate law stance",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "news"
    assert sorted(tree(folder)) == sorted(EXPECTED)
    raw = check_against_schema(folder / "builder.toml")
    project = load_project(folder / "builder.toml")
    assert project.name == "climate-stance" and project.target == "the new climate law"
    assert project.stance_values == ["support", "oppose", "none"]
    assert project.entity_values == ["PERSON", "PLACE", "ORG"]
    assert (project.language, project.license, project.annotators_per_sentence) == ("de", "cc-by-sa-4.0", 3)
    assert project.project_title == "Climate law stance"
    assert project.guidelines_path == folder / "guidelines.md" and project.split_proportions["train"] == 0.8
    keys = [label.hotkey for label in project.stance_labels + project.entity_labels]
    assert keys == ["1", "2", "3", "p", "l", "o"]
    colors = [label.color for label in project.entity_labels]
    assert len(set(colors)) == len(colors)
    assert raw["annotation"]["entity_agreement"] == 0.5
    # the guidelines have a section per label, with its hotkey, and say how to use the context
    guidelines = project.guidelines()
    for label in project.stance_labels + project.entity_labels:
        assert f"### {label.value} (key `{label.hotkey}`)" in guidelines
    assert "the new climate law" in guidelines and "context" in guidelines
    assert (folder / "annotations" / ".gitkeep").read_bytes() == b""
    assert (folder / ".gitignore").read_text(encoding="utf-8") == "/.builder/\n/dist/\n/build/\n/work/\n"
    # it says what it wrote and what comes next
    assert f"in {folder}" in result.stdout and "builder.toml" in result.stdout
    steps = ("cd news", "builder split", "builder server start", "builder annotators add", "builder push")
    for step in steps + ("builder pull", "builder build"):
        assert step in result.stdout, step


def test_defaults_without_a_terminal_ask_nothing(tmp_path):
    folder = tmp_path / "My Dataset_2025"
    folder.mkdir()
    result = invoke("init", cwd=folder, input="")
    assert result.exit_code == 0, result.output
    assert "?" not in result.stdout and "[" not in result.stdout  # no prompt was shown
    assert "cd " not in result.stdout  # it wrote into the current folder
    project = load_project(folder / "builder.toml")
    assert project.name == "my-dataset_2025" and project.pretty_name == "My dataset 2025"
    assert project.stance_values == ["favor", "against", "neutral"]
    assert project.entity_values == ["PER", "ORG", "LOC", "MISC"]
    defaults = load_project(ROOT / "builder" / "defaults" / "builder.toml")
    # the bundled default's hotkeys, colours and descriptions for the labels it declares
    assert project.stance_labels == defaults.stance_labels and project.entity_labels == defaults.entity_labels
    assert (project.language, project.license, project.annotators_per_sentence) == ("en", "cc-by-4.0", 2)
    assert project.project_title == "My dataset 2025"


def test_prompts_ask_for_each_value_not_given(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "_stdin_is_terminal", lambda: True)
    answers = [
        "",  # name: the default from the folder's name
        'the "treaty" \\ of Ñice',  # target
        "pro,con,pro",  # refused, asked again
        "pro,con",
        "english",  # language: refused, asked again
        "fr",
        "",  # licence: default
        "zero",  # refused, asked again
        "4",
        "ab",  # title: too short, asked again
        "",  # title: the default
    ]
    result = invoke("init", "treaty", "--entity-labels", "GROUP", cwd=tmp_path, input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "Dataset name [treaty]:" in result.output
    assert "Stance labels [favor,against,neutral]:" in result.output
    assert "Entity labels" not in result.output  # given as a flag
    for refused in ("'pro' is given twice", "'english' is not valid", "'zero'", "3 to 50 characters"):
        assert refused in result.output, refused
    project = load_project(tmp_path / "treaty" / "builder.toml")
    assert project.name == "treaty" and project.target == 'the "treaty" \\ of Ñice'
    assert project.stance_values == ["pro", "con"] and project.entity_values == ["GROUP"]
    assert (project.language, project.license, project.annotators_per_sentence) == ("fr", "cc-by-4.0", 4)
    assert project.project_title == "Treaty"


def test_yes_asks_nothing_even_in_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "_stdin_is_terminal", lambda: True)
    result = invoke("init", "quiet", "--yes", "--target", "x", cwd=tmp_path, input="")
    assert result.exit_code == 0, result.output
    assert "[" not in result.output
    assert load_project(tmp_path / "quiet" / "builder.toml").stance_values == ["favor", "against", "neutral"]


def test_a_bad_flag_is_refused_before_anything_is_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "_stdin_is_terminal", lambda: True)
    result = invoke("init", "x", "--license", "CC BY", cwd=tmp_path, input="\n" * 10)
    one_line_error(result, "licence 'CC BY' is not valid")
    assert result.stdout == "" and not (tmp_path / "x").exists()


def run_in_terminal(args, answers: str, cwd: Path) -> tuple[int, str]:
    """`builder ARGS` with a pseudo-terminal as stdin, stdout and stderr, `answers` typed ahead."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "builder", *map(str, args)], stdin=slave, stdout=slave, stderr=slave, cwd=cwd
    )
    os.close(slave)
    os.write(master, answers.encode())
    output = b""
    try:
        while select.select([master], [], [], 60)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return process.wait(timeout=60), output.decode("utf-8", "replace")


def test_prompts_in_a_real_terminal(tmp_path):
    answers = "my-terminal-set\nthe harbour plan\nYes,no\nyes,no\nHARBOUR\n\n\n1\nHarbour plan\n"
    code, output = run_in_terminal(["init", "here"], answers, cwd=tmp_path)
    assert code == 0, output
    assert "Dataset name [here]:" in output and "stance label 'Yes' is not valid" in output
    project = load_project(tmp_path / "here" / "builder.toml")
    assert project.name == "my-terminal-set" and project.target == "the harbour plan"
    assert project.stance_values == ["yes", "no"] and project.entity_values == ["HARBOUR"]
    assert project.annotators_per_sentence == 1 and project.project_title == "Harbour plan"


# --- refusals: one line, exit 1, nothing written ------------------------------------------------------------


@pytest.mark.parametrize("existing", ["builder.toml", "guidelines.md"])
def test_refuses_a_folder_that_has_a_project_file_or_guidelines(tmp_path, existing):
    (tmp_path / existing).write_text("# mine\n", encoding="utf-8")
    (tmp_path / ".gitignore").write_text("mine\n", encoding="utf-8")
    before = tree(tmp_path)
    result = invoke("init", "--yes", cwd=tmp_path)
    one_line_error(result, f"{tmp_path / existing} already exists", "never replaces")
    assert tree(tmp_path) == before


def test_refuses_a_dangling_link_where_a_file_would_go(tmp_path):
    (tmp_path / "guidelines.md").symlink_to(tmp_path / "elsewhere.md")
    result = invoke("init", "--yes", cwd=tmp_path)
    one_line_error(result, "guidelines.md already exists")
    assert not (tmp_path / "elsewhere.md").exists() and [p.name for p in tmp_path.iterdir()] == ["guidelines.md"]


TOO_MANY = ",".join("E" + "_" * i for i in range(len(HOTKEYS) - 1))  # with 2 stance labels: one too many


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--stance-labels", "favor,favor"), "stance label 'favor' is given twice"),
        (("--stance-labels", ","), "stance label 1 is empty"),
        (("--stance-labels", ",,,"), "stance label 1 is empty"),
        (("--stance-labels", ""), "stance label 1 is empty"),
        (("--stance-labels", "favor, ,against"), "stance label 2 is empty"),
        (("--stance-labels", "favor"), "give at least 2"),
        (("--stance-labels", "Favor,against"), "stance label 'Favor' is not valid"),
        (("--entity-labels", "PER,,ORG"), "entity label 2 is empty"),
        (("--entity-labels", "PER,per"), "entity label 'per' is not valid"),
        (("--entity-labels", "ORG,ORG"), "entity label 'ORG' is given twice"),
        (("--entity-labels", TOO_MANY), "at most 35 in all"),
        (("--name", "My Dataset"), "dataset name 'My Dataset' is not valid"),
        (("--name", "-dash"), "is not valid"),
        (("--name", "x" * 97), "is not valid"),
        (("--language", "english"), "language 'english' is not valid"),
        (("--license", "CC BY 4.0"), "licence 'CC BY 4.0' is not valid"),
        (("--annotators-per-sentence", "0"), "from 1 to 20"),
        (("--annotators-per-sentence", "21"), "from 1 to 20"),
        (("--project-title", "ab"), "3 to 50 characters"),
        (("--project-title", "x" * 51), "3 to 50 characters"),
        (("--target", "  "), "the stance target must be 1 to 1000"),
        (("--target", "x" * 1001), "the stance target must be 1 to 1000"),
        (("--target", "two\nlines"), "one line of text"),
    ],
)
def test_invalid_values_are_one_line_and_write_nothing(tmp_path, args, needle):
    result = invoke("init", "new", "--yes", *args, cwd=tmp_path)
    one_line_error(result, needle)
    assert not (tmp_path / "new").exists()


def test_a_folder_name_that_makes_no_dataset_name(tmp_path):
    folder = tmp_path / "Проект"
    result = invoke("init", folder, "--yes", cwd=tmp_path)
    one_line_error(result, "cannot make a dataset name from the folder name", "pass --name")
    assert not folder.exists()
    assert invoke("init", folder, "--yes", "--name", "proekt", cwd=tmp_path).exit_code == 0


TARGETS = [
    'the "quoted" target',
    "a back\\slash and \\n and \\u0041 written out",
    "'''triple''' and " + '"' * 3 + "triple" + '"' * 3,
    "Ñandú, Čeština, 北朝鮮とロシア, مرحبا, emoji 🚢",
    "# not a comment = [not a table]",
    "<script>alert(1)</script> & *stars* _under_ | pipe `code`",
    '\\"',
    "ends with a backslash \\",
]


@pytest.mark.parametrize("target", TARGETS)
def test_a_target_round_trips(tmp_path, target):
    result = invoke("init", "t", "--yes", "--target", target, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    raw = check_against_schema(tmp_path / "t" / "builder.toml")
    assert raw["stance"]["target"] == target
    assert load_project(tmp_path / "t" / "builder.toml").target == target
    guidelines = (tmp_path / "t" / "guidelines.md").read_text(encoding="utf-8")
    assert "<script>" not in guidelines  # markdown passes HTML through: the target must stay text
    html = markdown.markdown(guidelines, extensions=["tables"])
    if "<script>" in target:
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; *stars* _under_ | pipe `code`" in html


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=60))
def test_any_text_is_a_toml_string_that_reads_back(text):
    assert tomllib.loads(f"x = {toml_string(text)}\n")["x"] == text


def test_many_labels_get_distinct_hotkeys_and_colours(tmp_path):
    stance = [f"s{'_' * i}" for i in range(12)]  # more than the ten digits
    entities = [f"E{'_' * i}" for i in range(len(HOTKEYS) - len(stance))]
    result = init_project(tmp_path / "many", stance_labels=stance, entity_labels=entities)
    check_against_schema(tmp_path / "many" / "builder.toml")
    labels = result.project.stance_labels + result.project.entity_labels
    keys = [label.hotkey for label in labels]
    assert len(set(keys)) == len(keys) == len(HOTKEYS) and "u" not in keys  # Label Studio's "unselect region"
    colors = [label.color for label in result.project.entity_labels]
    assert len(set(colors)) == len(colors)


def test_hotkeys_take_a_letter_of_the_label_first_never_u():
    stance_keys, entity_keys = assign_hotkeys(["a", "b"], ["PERSON", "PLACE", "UNIT", "P", "X_1"])
    assert stance_keys == ["1", "2"]
    assert entity_keys == ["p", "l", "n", "a", "x"]  # P: its only letter is taken, so the first free letter


# --- .gitignore, annotations/: added to, never replaced -----------------------------------------------------


def test_gitignore_is_appended_not_replaced(tmp_path):
    user = "# mine\n*.log\n.builder/\n!keep.log\nsecrets"  # no final newline; .builder/ unanchored
    (tmp_path / ".gitignore").write_text(user, encoding="utf-8")
    result = invoke("init", "--yes", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == user + "\n/dist/\n/build/\n/work/\n"
    assert "added /dist/, /build/, /work/ to .gitignore" in result.stdout


def test_a_linked_gitignore_is_left_alone(tmp_path):
    """Its target may be outside the project (and git does not read a linked .gitignore): never written."""
    (tmp_path / "shared.gitignore").write_bytes(b"*.log\r\n/dist/\r\ncaf\xe9\r\n")  # Latin-1, not UTF-8
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / ".gitignore").symlink_to(tmp_path / "shared.gitignore")
    result = invoke("init", "project", "--yes", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "project" / ".gitignore").is_symlink()
    assert (tmp_path / "shared.gitignore").read_bytes() == b"*.log\r\n/dist/\r\ncaf\xe9\r\n"
    assert "left .gitignore alone: it is a link" in result.stdout


def test_a_crlf_gitignore_gets_crlf_lines(tmp_path):
    (tmp_path / ".gitignore").write_bytes(b"*.log\r\n/dist/\r\ncaf\xe9\r\n")  # Latin-1, not UTF-8
    assert invoke("init", "--yes", cwd=tmp_path).exit_code == 0
    assert (
        tmp_path / ".gitignore"
    ).read_bytes() == b"*.log\r\n/dist/\r\ncaf\xe9\r\n/.builder/\r\n/build/\r\n/work/\r\n"


def test_a_gitignore_that_has_every_line_is_left_alone(tmp_path):
    user = b"/.builder\r\ndist/\r\n/build/\r\nwork\r\n"
    (tmp_path / ".gitignore").write_bytes(user)
    result = invoke("init", "--yes", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".gitignore").read_bytes() == user and ".gitignore" not in result.stdout


def test_existing_annotations_are_kept(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "snapshot.jsonl").write_text("{}\n", encoding="utf-8")
    assert invoke("init", "--yes", cwd=tmp_path).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "annotations").iterdir()) == ["snapshot.jsonl"]


# --- a failed write leaves nothing ------------------------------------------------------------------------


def test_a_file_where_a_folder_should_be(tmp_path):
    (tmp_path / "taken").write_text("a file\n", encoding="utf-8")
    before = tree(tmp_path)
    one_line_error(invoke("init", "taken", "--yes", cwd=tmp_path), "taken is not a folder")
    one_line_error(invoke("init", "taken/inside", "--yes", cwd=tmp_path), "cannot write", "nothing was written")
    assert tree(tmp_path) == before
    project = tmp_path / "project"
    project.mkdir()
    (project / "annotations").write_text("a file\n", encoding="utf-8")
    (project / ".gitignore").mkdir()
    before = tree(tmp_path)
    one_line_error(invoke("init", "project", "--yes", cwd=tmp_path), "annotations is not a folder")
    assert tree(tmp_path) == before
    (project / "annotations").unlink()
    before = tree(tmp_path)
    one_line_error(invoke("init", "project", "--yes", cwd=tmp_path), ".gitignore is not a file")
    assert tree(tmp_path) == before


@pytest.fixture
def tmpfs(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    if not _mount(folder):  # fails instead where a full disk is required (CI)
        pytest.skip("needs a tmpfs (root)")
    yield folder
    if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def fill_leaving(folder: Path, free: int) -> None:
    """Take every free byte of the tmpfs `folder`, then give `free` bytes back."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - free))
        os.close(fd)


@pytest.mark.parametrize("where", ["project", "project/new"])
def test_a_write_failing_at_any_point_leaves_the_folder_as_it_was(tmpfs, where):
    """On a full tmpfs, one page more free each time: each write in turn is the one that fails
    (into a folder with a .gitignore of the user's, and into a folder init makes)."""
    project = tmpfs / "project"
    project.mkdir()
    (project / ".gitignore").write_text("mine\n", encoding="utf-8")
    before = tree(tmpfs)
    failures = []
    for pages in range(16):
        fill_leaving(tmpfs, pages * 4096)
        try:
            init_project(tmpfs / where, target="t")
        except OutputError as exc:
            failures.append(str(exc))
            assert tree(tmpfs) == before, str(exc)  # no file, no temp file, no folder left
            continue
        break
    else:
        pytest.fail(f"init never succeeded: {failures}")
    assert all("(No space left on device); removed what this run had made (" in f for f in failures), failures
    failed = list(dict.fromkeys(f.split(" (No space")[0] for f in failures))  # a file over a page fails twice
    assert failed == [
        f"cannot write {tmpfs / where / name}" for name in ("guidelines.md", "builder.toml", ".gitignore")
    ]
    assert sorted(tree(tmpfs / where)) == sorted(EXPECTED)
    assert (
        (tmpfs / where / ".gitignore").read_text(encoding="utf-8").startswith("mine\n" if where == "project" else "/")
    )


def test_a_full_disk_through_the_cli_is_one_line(tmpfs):
    fill_leaving(tmpfs, 0)
    result = run_cli("init", tmpfs / "project", "--yes", cwd=tmpfs)
    folder = tmpfs / "project"
    one_line_error(result, f"cannot write {folder / 'guidelines.md'} (No space left on device); removed what")
    assert f"{folder}/, {folder / 'annotations'}/, {folder / 'annotations' / '.gitkeep'})" in result.stderr
    assert tree(tmpfs) == {}


def test_init_needs_no_project_and_is_the_advice_that_works(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "BUILDER_CONFIG"}
    refused = run_cli("schema", cwd=tmp_path, env=env)
    one_line_error(refused, "no builder.toml in", "run `builder init`")
    made = run_cli("init", "--yes", cwd=tmp_path, env={**env, "BUILDER_CONFIG": str(tmp_path / "nowhere.toml")})
    assert made.returncode == 0, made.stderr
    following = run_cli("schema", cwd=tmp_path, env=env)
    assert following.returncode == 0, following.stderr
    assert '"favor"' in (tmp_path / "schema" / "task.schema.json").read_text(encoding="utf-8")


def test_the_library_refuses_with_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="stance label 1 is empty"):
        init_project(tmp_path, stance_labels=[""])
    assert list(tmp_path.iterdir()) == []


# --- end to end: a project made by `builder init`, on the real Label Studio ------------------------------------

ARTICLES = {
    "port.txt": "City approves the new port\n\nMaria Lopez welcomed the new port in Valencia on Monday. "
    "She said it would bring jobs.\n",
    "protest.txt": "Fishermen protest port plan\n\nFishermen in Valencia said the port would ruin the bay. "
    "Juan Ortega led the march.\n",
}


def test_a_new_project_end_to_end_on_label_studio(ls, tmp_path):
    from datasets import load_dataset

    from builder.model import ENTITIES, SENTENCE, STANCE

    title = f"init e2e {uuid.uuid4().hex[:12]}"
    folder = tmp_path / "port-stance"
    made = run_cli(
        "init",
        folder,
        "--target",
        'the "new" port of Valencia',
        "--stance-labels",
        "support,oppose,none",
        "--entity-labels",
        "PERSON,PLACE",
        "--annotators-per-sentence",
        "1",
        "--project-title",
        title,
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    (folder / "articles").mkdir()
    for name, text in ARTICLES.items():
        (folder / "articles" / name).write_text(text, encoding="utf-8")
    env = cli_env(ls)
    steps = [("split", "articles", "-o", "work/sentences.jsonl"), ("push", "work/sentences.jsonl")]
    for step in steps:
        done = run_cli(*step, env=env, cwd=folder)
        assert done.returncode == 0, (step, done.stderr)

    client = ls.client()
    (project,) = [p for p in client.projects.list(title=title) if p.title == title]
    config = client.projects.get(project.id).label_config
    for label in ("support", "oppose", "none", "PERSON", "PLACE"):
        assert f'value="{label}"' in config, label
    tasks = {t.data["text"]: t.id for t in client.tasks.list(project=project.id)}
    first = "Maria Lopez welcomed the new port in Valencia on Monday."
    second = "Fishermen in Valencia said the port would ruin the bay."
    assert {first, second} <= tasks.keys(), tasks.keys()

    def annotate(text, spans, stance):
        result = [
            {
                "from_name": ENTITIES,
                "to_name": SENTENCE,
                "type": "labels",
                "value": {"start": text.index(s), "end": text.index(s) + len(s), "text": s, "labels": [label]},
            }
            for s, label in spans
        ]
        result.append({"from_name": STANCE, "to_name": SENTENCE, "type": "choices", "value": {"choices": [stance]}})
        client.annotations.create(id=tasks[text], result=result, lead_time=3.0)

    annotate(first, [("Maria Lopez", "PERSON"), ("Valencia", "PLACE")], "support")
    annotate(second, [("Valencia", "PLACE")], "oppose")

    for step in [("pull",), ("validate",), ("build",)]:
        done = run_cli(*step, env=env, cwd=folder)
        assert done.returncode == 0, (step, done.stdout, done.stderr)

    dataset = load_dataset(str(folder / "dist" / "port-stance"))
    rows = {}
    for split in dataset.values():
        features = split.features
        assert features["stance"].names == ["support", "oppose", "none"]
        assert features["entities"].feature["label"].names == ["PERSON", "PLACE"]
        assert features["ner_tags"].feature.names == ["O", "B-PERSON", "I-PERSON", "B-PLACE", "I-PLACE"]
        for row in split:
            rows[row["text"]] = (row, features)
    assert rows.keys() == {first, second}
    row, features = rows[first]
    assert row["target"] == 'the "new" port of Valencia'
    assert features["stance"].int2str(row["stance"]) == "support"
    names = features["entities"].feature["label"].names
    assert [(e["text"], names[e["label"]]) for e in row["entities"]] == [
        ("Maria Lopez", "PERSON"),
        ("Valencia", "PLACE"),
    ]
    row, features = rows[second]
    assert features["stance"].int2str(row["stance"]) == "oppose"


def test_every_commented_out_setting_is_valid_when_uncommented(tmp_path):
    """The written builder.toml shows optional settings as comments; uncommenting them (the file's own
    advice) gives a project file that still loads."""
    import re

    folder = tmp_path / "demo"
    assert CliRunner().invoke(cli, ["init", str(folder), "--yes"]).exit_code == 0
    path = folder / "builder.toml"
    text = path.read_text(encoding="utf-8")
    setting = re.compile(r"^# (\[\[?[a-z_.]+\]\]?|[a-z_]+ = .*)$", re.MULTILINE)  # tables too: [input]
    assert len(setting.findall(text)) >= 5
    path.write_text(setting.sub(r"\1", text), encoding="utf-8")
    project = load_project(path)  # no gold file is needed to load it: `builder push` and `builder quality` read it
    assert project.input_fields["id"] == "doc_id"
    assert project.aggregation == "majority"
    assert (project.gold_path, project.gold_rate, project.min_gold_accuracy) == (folder / "gold.jsonl", 0.05, 0.7)


def test_init_and_the_bundled_default_show_every_optional_setting_of_the_schema(tmp_path):
    """[annotation] aggregation and the [quality] keys are in the written builder.toml and in the bundled default,
    commented out, each under a line that explains it; uncommenting the bundled default's still loads."""
    import re

    from builder.project import default_project_file
    from builder.resources import load_schema

    folder = tmp_path / "demo"
    assert CliRunner().invoke(cli, ["init", str(folder), "--yes"]).exit_code == 0
    schema = load_schema("config")["properties"]
    wanted = ["aggregation", *schema["quality"]["properties"]]
    assert set(wanted) == {"aggregation", "gold", "gold_rate", "min_gold_accuracy"}
    for path in (folder / "builder.toml", default_project_file()):
        lines = path.read_text(encoding="utf-8").splitlines()
        for key in wanted:
            at = [i for i, line in enumerate(lines) if line.startswith(f"# {key} = ")]
            assert len(at) == 1, (path, key)
            explanation = lines[at[0] - 1]
            assert explanation.startswith("# ") and not re.match(r"# [a-z_]+ = ", explanation), (path, key)
        assert "[quality]" in lines
    text = default_project_file().read_text(encoding="utf-8")
    uncommented = tmp_path / "default" / "builder.toml"
    uncommented.parent.mkdir()
    (uncommented.parent / "guidelines.md").write_text("# Guidelines\n", encoding="utf-8")
    setting = re.compile(r"^# ([a-z_]+ = .*)$", re.MULTILINE)
    uncommented.write_text(setting.sub(r"\1", text), encoding="utf-8")
    assert load_project(uncommented).gold_rate == 0.05


def test_the_cd_it_suggests_is_quoted_for_the_shell(tmp_path):
    result = invoke("init", "My Dataset", "--yes", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "cd 'My Dataset'" in result.stdout


def test_the_split_hint_names_every_kind_of_file_split_reads(tmp_path):
    """Issue 27 point 9: the "next" hint named .txt, .jsonl and .html but not .parquet, which `split` reads too."""
    from builder.sentences.articles import SUPPORTED_SUFFIXES

    result = invoke("init", "news", "--yes", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    [hint] = [line for line in result.stdout.splitlines() if "builder split" in line]
    assert ".parquet" in hint and all(suffix in hint for suffix in SUPPORTED_SUFFIXES), hint


def shortcuts_section(guidelines: str) -> str:
    """The table under the guidelines' '## Keyboard shortcuts' heading."""
    assert "\n## Keyboard shortcuts\n\n" in guidelines, "the guidelines list no keyboard shortcuts"
    section = guidelines.split("\n## Keyboard shortcuts\n\n", 1)[1]
    return section.split("\n\n", 1)[0].strip()


def listed_keys(table: str) -> dict[str, str]:
    """key -> what it does, from a shortcuts table's rows."""
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    return {key.strip().split(" ")[0].strip("`"): what.strip() for key, what in rows}


def test_init_guidelines_list_every_key_the_scheme_and_label_studio_give(tmp_path):
    """The guidelines `init` writes list each label's key (from the scheme's hotkeys, as the labeling config
    binds them) and Label Studio 1.23's own keys: submit, skip and undo."""
    from builder.labeling_config import labeling_config, project_keyboard_shortcuts

    result = invoke(
        "init", "t", "--yes", "--stance-labels", "support,oppose,none", "--entity-labels", "PERSON,PLACE", cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    project = load_project(tmp_path / "t" / "builder.toml")
    guidelines = (tmp_path / "t" / "guidelines.md").read_text(encoding="utf-8")
    table = shortcuts_section(guidelines)
    assert table == project_keyboard_shortcuts(project)
    keys = listed_keys(table)
    config = labeling_config(project)
    for label in (*project.stance_labels, *project.entity_labels):
        assert label.value in keys[label.hotkey] and f'value="{label.value}"' in config
        assert f'hotkey="{label.hotkey}"' in config
    assert {"Ctrl+Enter", "Ctrl+Space", "Ctrl+Z"} <= set(keys)
    assert "submit" in keys["Ctrl+Enter"] and "skip" in keys["Ctrl+Space"] and "undo" in keys["Ctrl+Z"]
    assert len(keys) == len(project.stance_labels) + len(project.entity_labels) + 3


@pytest.mark.parametrize("toml", ["builder.toml", "builder/defaults/builder.toml"])
def test_bundled_guidelines_list_the_keys_of_their_scheme(toml):
    """The guidelines bundled with the sample (and with the default project) list the keys their scheme's
    hotkeys bind, and Label Studio's submit, skip and undo: a hotkey changed in the scheme fails this."""
    from builder.labeling_config import LABEL_STUDIO_KEYS, project_keyboard_shortcuts

    project = load_project(ROOT / toml)
    table = shortcuts_section(project.guidelines())
    assert table == project_keyboard_shortcuts(project)
    keys = listed_keys(table)
    assert {label.hotkey for label in (*project.stance_labels, *project.entity_labels)} | {
        key for key, _, _ in LABEL_STUDIO_KEYS
    } == set(keys)
