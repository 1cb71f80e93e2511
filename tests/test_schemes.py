"""Stance-only and entities-only schemes (issue 30.1): builder.toml may leave out [stance] or [entities], and
everything generated from the scheme follows: labeling config, JSON Schemas, features, records, card, exports,
`init --scheme`; the whole loop runs on the real Label Studio for each."""

from __future__ import annotations

import json
import secrets
import shutil
import tomllib

import jsonschema
import pyarrow.parquet as pq
import pytest

from builder import model, scaffold
from builder.errors import ConfigError
from builder.labeling_config import labeling_config
from builder.project import load_project, project_from_dict

from .conftest import ROOT, cli_env, make_project, run_cli, scheme_text

STANCE_ONLY_COLUMNS = [
    "id",
    "article_id",
    "sentence_index",
    "text",
    "target",
    "stance",
    "stance_status",
    "stance_distribution",
    "annotations",
    "num_annotators",
    "agreement",
]
ENTITIES_ONLY_COLUMNS = [
    "id",
    "article_id",
    "sentence_index",
    "text",
    "entities",
    "unresolved_entities",
    "tokens",
    "ner_tags",
    "annotations",
    "num_annotators",
]


def scheme_project(tmp_path, scheme):
    return make_project(tmp_path / scheme, f"scheme {scheme}", scheme=scheme)


def test_a_project_file_needs_stance_or_entities(tmp_path):
    raw = tomllib.loads(scheme_text((ROOT / "builder.toml").read_text(encoding="utf-8"), "stance"))
    del raw["stance"]
    with pytest.raises(ConfigError, match=r"declare \[stance\], \[entities\] or both"):
        project_from_dict(raw, tmp_path / "builder.toml")


@pytest.mark.parametrize(("scheme", "columns"), [("stance", STANCE_ONLY_COLUMNS), ("entities", ENTITIES_ONLY_COLUMNS)])
def test_features_schemas_and_config_follow_the_scheme(tmp_path, scheme, columns):
    project = scheme_project(tmp_path, scheme)
    assert project.scheme == scheme
    assert model.dataset_columns(model.DATASET_FORMAT, project) == columns
    features = model.features(project)
    assert list(features) == columns
    annotation = features["annotations"].feature
    assert ("stance" in annotation) == (scheme == "stance") and ("entities" in annotation) == (scheme == "entities")
    record = model.record_schema(project)
    assert set(record["properties"]) == {c for c in columns if c not in ("tokens", "ner_tags")}
    items = model.task_schema(project)["$defs"]["result_item"]
    assert items["properties"]["from_name"]["enum"] == [scheme]
    config = labeling_config(project)
    assert ('<Choices name="stance"' in config) == (scheme == "stance")
    assert ('<Labels name="entities"' in config) == (scheme == "entities")
    assert ("Target: $target" in config) == (scheme == "stance")
    table = model.card_field_table(project)
    assert ("`ner_tags`" in table) == (scheme == "entities") and ("`stance`" in table) == (scheme == "stance")
    # an annotation with a result item of the other half's control is not valid for this scheme
    other = "entities" if scheme == "stance" else "stance"
    validator = jsonschema.Draft202012Validator(model.task_schema(project))
    task = json.loads((ROOT / "annotations" / "snapshot.jsonl").read_text(encoding="utf-8").splitlines()[0])
    task["annotations"][0]["result"] = [{"from_name": other, "to_name": "sentence", "type": "x", "value": {}}]
    assert not validator.is_valid(task)
    task["annotations"][0]["result"] = []
    assert validator.is_valid(task)


def test_both_scheme_outputs_are_those_of_the_full_shape(project):
    """A both-scheme project's columns are every field of the format, as before stance-only schemes existed."""
    for dataset_format in range(1, model.DATASET_FORMAT + 1):
        assert model.dataset_columns(dataset_format, project) == model.RECORD.of_format(dataset_format).names
    assert project.scheme == "both"


@pytest.mark.parametrize("scheme", ["stance", "entities", "both"])
def test_init_writes_the_scheme_asked(tmp_path, scheme):
    result = scaffold.init_project(tmp_path / scheme, scheme=scheme)
    project = load_project(tmp_path / scheme / "builder.toml")
    assert project.scheme == scheme == result.project.scheme
    raw = tomllib.loads((tmp_path / scheme / "builder.toml").read_text(encoding="utf-8"))
    assert ("stance" in raw) == (scheme != "entities") and ("entities" in raw) == (scheme != "stance")
    guidelines = (tmp_path / scheme / "guidelines.md").read_text(encoding="utf-8")
    assert ("Stance (required)" in guidelines) == (scheme != "entities")
    assert ("Entities" in guidelines) == (scheme != "stance")
    assert ("Spans already drawn" in guidelines) == (scheme != "stance")  # a stance-only task shows no span


def test_init_flag_scheme_from_the_cli(tmp_path):
    done = run_cli("init", tmp_path / "claims", "--scheme", "stance", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "entities" not in done.stdout.splitlines()[1]
    assert load_project(tmp_path / "claims" / "builder.toml").scheme == "stance"


def _filtered_snapshot(folder, scheme):
    """The committed snapshot with only `scheme`'s result items: what a project of that scheme would pull."""
    (folder / "annotations").mkdir(exist_ok=True)
    with open(ROOT / "annotations" / "snapshot.jsonl", encoding="utf-8") as lines:
        tasks = [json.loads(line) for line in lines]
    for task in tasks:
        for annotation in task["annotations"]:
            annotation["result"] = [item for item in annotation["result"] if item["from_name"] == scheme]
    text = "".join(json.dumps(task) + "\n" for task in tasks)
    (folder / "annotations" / "snapshot.jsonl").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("scheme", "columns"), [("stance", STANCE_ONLY_COLUMNS), ("entities", ENTITIES_ONLY_COLUMNS)])
def test_build_card_and_exports_of_one_half(tmp_path, scheme, columns):
    project = scheme_project(tmp_path, scheme)
    _filtered_snapshot(project.root, scheme)
    built = run_cli("build", cwd=project.root)
    assert built.returncode == 0, built.stderr
    assert "65 tasks in = 65 records + 0 quarantined" in built.stderr
    shards = sorted((project.dataset_path / "data").glob("*.parquet"))
    assert shards and all(pq.read_schema(shard).names == columns for shard in shards)
    card = (project.dataset_path / "README.md").read_text(encoding="utf-8")
    assert ("Krippendorff's alpha (nominal), stance" in card) == (scheme == "stance")
    assert ("pairwise exact-span F1, entities" in card) == (scheme == "entities")
    # the agreement evidence's reading notes speak of the scheme's own half only
    assert ("prevalence paradox" in card) == (scheme == "stance")
    assert ("Span F1 counts only exact matches" in card) == (scheme == "entities")
    stats = run_cli("stats", "--format", "json", cwd=project.root)
    assert stats.returncode == 0, stats.stderr
    evidence = json.loads(stats.stdout)["agreement_evidence"]  # the scheme's own half only, as on the card
    assert ("stance" in evidence) == (scheme == "stance") and ("span_f1" in evidence) == (scheme == "entities")
    croissant = json.loads((project.dataset_path / "croissant.json").read_text(encoding="utf-8"))
    fields = {f["name"] for record_set in croissant["recordSet"] for f in record_set.get("field", [])}
    assert ("ner_tags" in fields) == (scheme == "entities") and ("stance" in fields) == (scheme == "stance")
    refused = "conll" if scheme == "stance" else "semeval"
    export = run_cli("export", "--format", refused, cwd=project.root)
    assert export.returncode != 0
    assert f"--format {refused} needs {'entities' if scheme == 'stance' else 'stance'}" in export.stderr
    assert len(export.stderr.strip().splitlines()) == 1 and "Traceback" not in export.stderr
    exported = run_cli("export", "--format", "jsonl", cwd=project.root)
    assert exported.returncode == 0, exported.stderr
    trained = run_cli("train", cwd=project.root)
    assert trained.returncode == 0, trained.stderr


@pytest.mark.parametrize("scheme", ["stance", "entities"])
def test_whole_loop_of_one_half_on_label_studio(ls, tmp_path, scheme):
    """`builder run` in a stance-only or entities-only copy of the repository's sample: its labeling config has one
    half, the bundled annotations are replayed for that half only, and the dataset has only its columns."""
    project = scheme_project(tmp_path, scheme)
    (project.root / "examples").mkdir()
    shutil.copytree(ROOT / "examples" / "sample", project.root / "examples" / "sample")
    shutil.copy(ROOT / "examples" / "sample-annotators.json", project.root / "examples")
    (project.root / "annotations").mkdir(exist_ok=True)
    shutil.copy(ROOT / "annotations" / "snapshot.jsonl", project.root / "annotations")
    env = {**cli_env(ls), "BUILDER_PSEUDONYM_KEY": secrets.token_hex(32)}
    done = run_cli("run", env=env, cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert "61 tasks = 61 records + 0 quarantined" in done.stderr
    features = "features: stance ['favor', 'against', 'neutral']" if scheme == "stance" else "features: ner_tags ['O',"
    assert features in done.stdout
    columns = STANCE_ONLY_COLUMNS if scheme == "stance" else ENTITIES_ONLY_COLUMNS
    shards = sorted((project.dataset_path / "data").glob("*.parquet"))
    assert shards and all(pq.read_schema(shard).names == columns for shard in shards)
    pulled = [json.loads(line) for line in open(project.root / "build" / "run" / "snapshot.jsonl", encoding="utf-8")]
    controls = {item["from_name"] for task in pulled for a in task["annotations"] for item in a["result"]}
    assert controls == {scheme}


def test_claims_example_replays_the_corpus_labels_into_a_multi_target_dataset(ls, tmp_path):
    """Issue 30.3: `builder run` in examples/claims (a copy) pushes the claims, replays IBM's own labels, pulls,
    validates and builds a stance-only dataset with one target per motion, which loads with `datasets`."""
    import datasets

    corpus_path = ROOT.parent / "shared" / "corpora" / "claim_stance.jsonl"
    if not corpus_path.is_file():
        pytest.skip("the IBM Claim Stance corpus is not beside the repository (../shared/corpora)")
    folder = tmp_path / "claims"
    shutil.copytree(ROOT / "examples" / "claims", folder, ignore=shutil.ignore_patterns("build", "dist", ".builder"))
    project = load_project(folder / "builder.toml")
    assert project.scheme == "stance"
    env = {**cli_env(ls), "BUILDER_PSEUDONYM_KEY": secrets.token_hex(32)}
    done = run_cli("run", env=env, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "96 tasks = 96 records + 0 quarantined" in done.stderr
    assert "features: stance ['favor', 'against']" in done.stdout
    loaded = datasets.load_dataset(str(project.dataset_path), download_mode="force_redownload")
    rows = [row for split in loaded.values() for row in split]
    assert len(rows) == 96 and "ner_tags" not in loaded["train"].features
    assert len({row["target"] for row in rows}) == 8  # each claim keeps its own motion as its target
    names = loaded["train"].features["stance"].names
    corpus = {
        json.loads(line)["id"]: json.loads(line)["stance_orig"]
        for line in corpus_path.read_text(encoding="utf-8").splitlines()
    }
    assert all({"PRO": "favor", "CON": "against"}[corpus[row["article_id"]]] == names[row["stance"]] for row in rows)
    card = (project.dataset_path / "README.md").read_text(encoding="utf-8")
    assert "The stance labels are the corpus's own" in card and "CC BY-SA 3.0" in card
    assert "no new annotation was made" in card


def test_claims_example_builds_offline_with_each_target_its_own_population(tmp_path):
    """Issue 30.2: the claims' own motions are their targets: stored in `target`, and the card gives each target's
    stance counts and agreement; the card says the labels are the corpus's own, with the licence."""
    folder = tmp_path / "claims"
    shutil.copytree(ROOT / "examples" / "claims", folder, ignore=shutil.ignore_patterns("build", "dist", ".builder"))
    built = run_cli("build", cwd=folder)
    assert built.returncode == 0, built.stderr
    project = load_project(folder / "builder.toml")
    table = pq.read_table(project.dataset_path / "data", columns=["target", "stance"])
    assert len(set(table.column("target").to_pylist())) == 8
    card = (project.dataset_path / "README.md").read_text(encoding="utf-8")
    assert "Stance by target (8 targets, each its own population" in card
    assert "| This house would ban boxing | 12 | 8 | 4 | 0 | n/a |" in card
    assert "named-entity-recognition" not in card and "The scheme has no entities." in card
    assert "The stance labels are the corpus's own" in card and "CC BY-SA 3.0" in card
    # every pushed sentence carries its own motion (the task shows it: the config's `Target: $target`)
    tasks = [json.loads(line) for line in open(folder / "annotations" / "snapshot.jsonl", encoding="utf-8")]
    assert all(task["data"]["target"].startswith("This house") for task in tasks)


@pytest.mark.parametrize("scheme", ["stance", "entities"])
def test_gold_questions_answer_the_scheme_s_own_half(tmp_path, scheme):
    from builder.errors import InputError
    from builder.gold.answers import read_gold

    project = scheme_project(tmp_path, scheme)
    task = json.loads((ROOT / "annotations" / "snapshot.jsonl").read_text(encoding="utf-8").splitlines()[0])
    sentence = {("id" if key == "sentence_id" else key): value for key, value in task["data"].items()}
    own = {"stance": "neutral"} if scheme == "stance" else {"entities": [{"start": 0, "end": 5, "label": "LOC"}]}
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({**sentence, **own}) + "\n", encoding="utf-8")
    (answer,) = read_gold(path, project).values()
    assert (answer.stance is None) == (scheme == "entities") and bool(answer.entities) == (scheme == "entities")
    other = {"entities": [{"start": 0, "end": 5, "label": "LOC"}]} if scheme == "stance" else {"stance": "neutral"}
    path.write_text(json.dumps({**sentence, **own, **other}) + "\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=f"this project's scheme has no {'entities' if scheme == 'stance' else 'stance'}"
    ):
        read_gold(path, project)


@pytest.mark.parametrize("scheme", ["stance", "entities"])
def test_release_and_verify_of_one_half(tmp_path, scheme):
    """A stance-only or entities-only project cuts a release whose manifest counts its own half, and verifies it."""
    import subprocess

    project = scheme_project(tmp_path, scheme)
    _filtered_snapshot(project.root, scheme)

    def git(*args):
        subprocess.run(
            ["git", "-c", "user.email=t@builder.local", "-c", "user.name=t", *args],
            cwd=project.root,
            check=True,
            capture_output=True,
        )

    git("init", "-q", ".")
    git("add", "-A")
    git("commit", "-qm", "annotations")
    released = run_cli("release", "1.0.0", cwd=project.root)
    assert released.returncode == 0, released.stderr
    git("add", "-A")
    git("commit", "-qm", "release 1.0.0")
    verified = run_cli("verify", "1.0.0", cwd=project.root)
    assert verified.returncode == 0, verified.stderr
    manifest = json.loads((project.root / "releases" / "1.0.0" / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["agreement"]) == {scheme}
