"""Manifest format 9 (issue 28, points 5 and 6): croissant.json is Croissant 1.1 with provenance (each label
attributed to its annotator, an adjudicator or the software agent whose suggestion was accepted unchanged; each
sentence derived from its article; the licence per article), read back record by record with mlcroissant; the
card says `machine-generated` where suggestions were shown and has a data statement from builder.toml."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from builder.dataset.build import build_dataset
from builder.dataset.croissant import CROISSANT
from builder.dataset.label_provenance import ACCEPTED_FILE, CROISSANT_1_1, UNKNOWN_LICENCE
from builder.dataset.release import MANIFEST_FORMAT, cut_release, verify_release
from builder.dataset.splits import SPLITS, parquet_name
from builder.errors import ConfigError
from builder.project import load_project

from .test_release import new_repo, synthetic_tasks

MODEL = "builder-gazetteer/7"
SOURCES = """
[[dataset.sources]]
name = "Agency wire"
articles = "article-00*"
license = "CC BY 4.0"
url = "https://wire.example/"

[dataset.data_statement]
curation_rationale = "Sentences on the target, from two wires, to study stance."
language_variety = "en-GB"
language_variety_description = "British English news prose"
annotator_min_group_size = 2
annotator_groups = [
  { description = "graduate students of political science", annotators = 2 },
  { description = "a lone expert", annotators = 1 },
]
"""


def suggested_tasks() -> list[dict]:
    """Synthetic tasks (two annotators each) with a suggestion on every other one: it proposes the annotators'
    span and stance "neutral", which the annotators accept on articles below 10 and overrule (favor) above; task 0's
    second annotation is a ground-truth (adjudicator's) one."""
    tasks = synthetic_tasks(range(20), stance=lambda a: "neutral" if a < 10 else "favor")
    for task in tasks[::2]:
        spans = [item for item in task["annotations"][0]["result"] if item["from_name"] == "entities"]
        stance = {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["neutral"]}}
        task["predictions"] = [{"model_version": MODEL, "result": [*spans, stance]}]
    tasks[0]["annotations"][1]["ground_truth"] = True
    return tasks


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder, _ = new_repo(tmp_path_factory.mktemp("research") / "repo", suggested_tasks())
    toml = folder / "builder.toml"
    text = toml.read_text(encoding="utf-8").replace("[stance]", SOURCES.strip() + "\n\n[stance]", 1)
    toml.write_text(text, encoding="utf-8")
    import subprocess

    subprocess.run(["git", "-C", str(folder), "commit", "-qam", "sources"], check=True)
    project = load_project(toml)
    result = cut_release(project, "1.0.0")
    return project, result


def test_croissant_1_1_read_back_record_by_record(release):
    import mlcroissant as mlc

    project, result = release
    folder = result.folder
    assert result.manifest["manifest_format"] == MANIFEST_FORMAT == 10
    metadata = json.loads((folder / CROISSANT).read_text(encoding="utf-8"))
    assert metadata["conformsTo"][0] == CROISSANT_1_1 == "http://mlcommons.org/croissant/1.1"
    assert metadata["@context"]["prov"] == "http://www.w3.org/ns/prov#"
    dataset = mlc.Dataset(str(folder / CROISSANT))
    # every sentence, as the Parquet files hold it, with its annotators (the attribution of their labels)
    for split in SPLITS:
        rows = {r["id"]: r for r in pq.read_table(folder / parquet_name(split)).to_pylist()}
        records = list(dataset.records(split))
        assert len(records) == len(rows) > 0
        for record in records:
            row = rows[record[f"{split}/id"].decode()]
            assert record[f"{split}/article_id"].decode() == row["article_id"]
            assert [
                (a[f"{split}/annotations/annotator"].decode(), a[f"{split}/annotations/ground_truth"])
                for a in record[f"{split}/annotations"]
            ] == [(a["annotator"], a["ground_truth"]) for a in row["annotations"]]
    # the suggestions accepted unchanged, attributed to the software agent, row by row as the file holds them
    accepted = pq.read_table(folder / ACCEPTED_FILE).to_pylist()
    read = [
        {key.split("/", 1)[1]: value.decode() if isinstance(value, bytes) else value for key, value in r.items()}
        for r in dataset.records("accepted_suggestions")
    ]
    assert read == accepted
    # articles below 10 (5 suggested tasks each: 2 annotators x stance + entities), above 10 entities only
    assert {r["model_version"] for r in accepted} == {MODEL}
    assert sum(r["label"] == "stance" for r in accepted) == 2 * 15  # tasks 0, 2, ... of articles 0-9
    assert sum(r["label"] == "entities" for r in accepted) == 2 * 30
    # the adjudicator accepted task 0's suggestion unchanged: attributed to the model, flagged as ground truth
    adjudicated = [r for r in accepted if r["ground_truth"]]
    assert [(r["annotator"], r["label"]) for r in adjudicated] == [
        ("annotator-0000000b", "entities"),
        ("annotator-0000000b", "stance"),
    ]

    # the licence per article, as a column
    def text(value):  # inline data reads back as str, file data as bytes
        return value.decode() if isinstance(value, bytes) else value

    articles = {text(r["articles/article_id"]): r for r in dataset.records("articles")}
    assert len(articles) == 20
    assert text(articles["article-003"]["articles/license"]) == "CC BY 4.0"
    assert text(articles["article-003"]["articles/url"]) == "https://wire.example/"
    assert text(articles["article-013"]["articles/license"]) == UNKNOWN_LICENCE
    assert {u["name"] for u in metadata["usageInfo"]} == {"CC BY 4.0", UNKNOWN_LICENCE}
    # field-level provenance: the aggregated labels are builder's, derived from the annotations; each
    # annotator's labels are attributed to the annotator; each sentence is derived from its article
    train = next(r for r in metadata["recordSet"] if r["@id"] == "train")
    fields = {f["name"]: f for f in train["field"]}
    assert "cr:Label" in fields["stance"]["dataType"]
    assert fields["stance"]["prov:wasDerivedFrom"] == {"@id": "train/annotations"}
    assert fields["stance"]["prov:wasAttributedTo"]["prov:label"].endswith("aggregation `majority`")
    annotator = next(f for f in fields["annotations"]["subField"] if f["name"] == "annotator")
    assert annotator["equivalentProperty"] == "prov:wasAttributedTo"
    assert fields["text"]["annotation"]["equivalentProperty"] == "prov:wasDerivedFrom"
    assert fields["text"]["annotation"]["references"] == {"field": {"@id": "articles/article_id"}}
    assert MODEL in [a["prov:label"] for a in metadata["prov:wasAttributedTo"]]
    assert verify_release(project, "1.0.0") == []


def test_card_machine_generated_and_data_statement(release):
    project, result = release
    card = (result.folder / "README.md").read_text(encoding="utf-8")
    header = card.split("---")[1]
    assert "- machine-generated" in header and "- expert-generated" in header
    statement = card.split("## Data statement", 1)[1].split("\n## ", 1)[0]
    assert "Sentences on the target, from two wires" in statement
    assert "`en-GB` (BCP-47): British English news prose" in statement
    # annotators in aggregate: the group under the minimum size is pooled, never described
    assert "2: graduate students of political science" in statement
    assert "lone expert" not in statement and "1 in groups smaller than 2" in statement
    assert "Speaker demographic** (the articles' authors): unknown" in statement
    assert "60 sentence(s) of 20 news article(s)" in statement
    # the extra Parquet file beside the card is not taken for a split
    from datasets import load_dataset

    loaded = load_dataset(str(result.folder), download_mode="force_redownload")
    assert sum(len(loaded[split]) for split in loaded) == 60 and set(loaded) <= set(SPLITS)
    assert "Croissant 1.1" in card and "the 90 label(s) submitted exactly as a shown" in card


def test_unknowns_stated_and_no_suggestions_no_machine(tmp_path):
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(12)))
    facts = build_dataset(project, project.snapshot_path, tmp_path / "dist")
    card = (tmp_path / "dist" / "README.md").read_text(encoding="utf-8")
    assert facts.research_notes and "machine-generated" not in card.split("---")[1]
    assert not (tmp_path / "dist" / ACCEPTED_FILE).exists()
    statement = card.split("## Data statement", 1)[1].split("\n## ", 1)[0]
    assert "Curation rationale**: unknown" in statement
    assert "`en` (the language only; the variety is unknown" in statement
    assert "their demographics are unknown (not collected)" in statement
    metadata = json.loads((tmp_path / "dist" / CROISSANT).read_text(encoding="utf-8"))
    assert "usageInfo" not in metadata  # every article: the same (unknown) licence
    assert ACCEPTED_FILE not in json.dumps(metadata["distribution"])


def test_language_variety_must_be_bcp47(tmp_path):
    folder, _ = new_repo(tmp_path / "repo", synthetic_tasks(range(2)))
    toml = folder / "builder.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            "[stance]", '[dataset.data_statement]\nlanguage_variety = "British English"\n\n[stance]', 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="dataset.data_statement.language_variety"):
        load_project(toml)


def test_an_older_release_format_keeps_croissant_1_0_and_no_statement(tmp_path):
    from builder.dataset.release import build_release_folder

    folder, project = new_repo(tmp_path / "repo", suggested_tasks())
    manifest = build_release_folder(project, "1.0.0", tmp_path / "old", manifest_format=8)
    assert manifest["manifest_format"] == 8 and ACCEPTED_FILE not in manifest["files"]
    metadata = json.loads((tmp_path / "old" / CROISSANT).read_text(encoding="utf-8"))
    assert metadata["conformsTo"][0] == "http://mlcommons.org/croissant/1.0" and "prov" not in metadata["@context"]
    card = (tmp_path / "old" / "README.md").read_text(encoding="utf-8")
    assert "## Data statement" not in card and "machine-generated" not in card
