"""croissant.json: Croissant 1.0 + RAI metadata, read back with mlcroissant; hashed by a format-5 release.

From manifest format 9 it is Croissant 1.1 with provenance (tests/test_research_card.py)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from builder.dataset.build import build_dataset
from builder.dataset.croissant import CROISSANT
from builder.dataset.release import MANIFEST_FORMAT, cut_release, load_manifest, verify_release
from builder.dataset.splits import SPLITS, parquet_name
from builder.errors import BuilderError
from builder.jsonio import sha256_file
from builder.model import dataset_columns

from .conftest import ROOT
from .test_release import new_repo, synthetic_tasks

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@pytest.fixture(scope="module")
def built(project, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dist") / project.name
    facts = build_dataset(project, SNAPSHOT, folder)
    return folder, facts


def parquet_rows(folder, split):
    import pyarrow.parquet as pq

    return pq.read_table(folder / parquet_name(split)).to_pylist()


def test_mlcroissant_reads_every_record_set(project, built):
    import mlcroissant as mlc

    folder, facts = built
    dataset = mlc.Dataset(str(folder / CROISSANT))
    sets = {record_set.uuid for record_set in dataset.metadata.record_sets}
    # `articles`: their sources and licences (manifest format 9 on, tests/test_research_card.py)
    assert sets == {*SPLITS, "stance_names", "entities_label_names", "ner_tags_names", "articles"}
    for split in SPLITS:
        rows = parquet_rows(folder, split)
        records = list(dataset.records(split))
        assert len(records) == len(rows) == facts.counts[split]["records"] > 0
        by_id = {row["id"]: row for row in rows}
        for record in records:
            row = by_id[record[f"{split}/id"].decode()]
            # every column is a field, with the values the Parquet file holds
            assert {key.split("/", 1)[1] for key in record} == set(dataset_columns())
            assert record[f"{split}/stance"] == row["stance"]
            assert [t.decode() for t in record[f"{split}/tokens"]] == row["tokens"]
            assert record[f"{split}/ner_tags"] == row["ner_tags"]
            assert [
                (e[f"{split}/entities/start"], e[f"{split}/entities/end"], e[f"{split}/entities/label"])
                for e in record[f"{split}/entities"]
            ] == [(e["start"], e["end"], e["label"]) for e in row["entities"]]
            # how each span was decided (issue 24), and the spans the vote could not decide
            assert [e[f"{split}/entities/status"].decode() for e in record[f"{split}/entities"]] == [
                e["status"] for e in row["entities"]
            ]
            assert [
                (e[f"{split}/unresolved_entities/start"], e[f"{split}/unresolved_entities/label"])
                for e in record[f"{split}/unresolved_entities"]
            ] == [(e["start"], e["label"]) for e in row["unresolved_entities"]]
            annotators = [a[f"{split}/annotations/annotator"].decode() for a in record[f"{split}/annotations"]]
            assert annotators == [a["annotator"] for a in row["annotations"]]
    # the ClassLabel names, as the features hold them
    names = {s: [r[f"{s}/name"] for r in dataset.records(s)] for s in ("stance_names", "entities_label_names")}
    assert names == {"stance_names": project.stance_values, "entities_label_names": project.entity_values}
    assert [r["ner_tags_names/name"] for r in dataset.records("ner_tags_names")] == project.bio_tags


def test_files_types_and_rai_fields(project, built):
    folder, facts = built
    metadata = json.loads((folder / CROISSANT).read_text(encoding="utf-8"))
    assert "http://mlcommons.org/croissant/1.1" in metadata["conformsTo"]  # manifest format 9 on
    assert metadata["@context"]["rai"] == "http://mlcommons.org/croissant/RAI/"
    files = {d["contentUrl"]: d for d in metadata["distribution"] if d["@type"] == "cr:FileObject"}
    assert set(files) == {parquet_name(s) for s in SPLITS}
    for name, node in files.items():
        assert node["sha256"] == sha256_file(folder / name)
        assert node["encodingFormat"] == "application/x-parquet"
    train = next(r for r in metadata["recordSet"] if r["@id"] == "train")
    types = {f["name"]: f.get("dataType") for f in train["field"]}
    assert types["text"] == "sc:Text" and types["sentence_index"] == "sc:Integer"
    assert types["stance"] == ["sc:Integer", "cr:Label"] and types["agreement"] == "sc:Float"  # format 9 on
    entities = next(f for f in train["field"] if f["name"] == "entities")
    status = next(f for f in entities["subField"] if f["name"] == "status")
    assert status["dataType"] == "sc:Text" and status["source"]["transform"] == {"jsonPath": "status"}
    assert "`status`: `ground_truth`, `unanimous`, `majority` or `unresolved`" in entities["description"]
    stance = next(f for f in train["field"] if f["name"] == "stance")
    assert stance["references"] == {"field": {"@id": "stance_names/index"}}
    assert "0 = favor" in stance["description"]
    # what the build knows, in the RAI fields
    rai = {k: v for k, v in metadata.items() if k.startswith("rai:")}
    text = json.dumps(rai)
    assert "GUM corpus" in rai["rai:dataCollectionRawData"] and "CC BY" in rai["rai:dataCollectionRawData"]
    guidelines = hashlib.sha256(project.guidelines().encode("utf-8")).hexdigest()
    assert f"Annotation guidelines sha256 {guidelines}" in text
    assert "Krippendorff" in text and "Fleiss" in text
    assert f"{len(facts.annotators)} annotator(s), named by pseudonyms only" in rai["rai:annotatorDemographics"][0]
    assert "Aggregation method: `majority`" in text
    assert "Pre-annotations shown to annotators on" in text
    assert rai["rai:annotationsPerItem"].startswith(f"{project.annotators_per_sentence} annotators per sentence")
    # the card says the file is there
    assert "`croissant.json`, beside this card" in (folder / "README.md").read_text(encoding="utf-8")


def test_nothing_personal_and_deterministic(project, built, tmp_path):
    folder, facts = built
    text = (folder / CROISSANT).read_text(encoding="utf-8")
    assert not EMAIL.search(text)
    assert not any(name in text for name in facts.annotators)  # a count, never the pseudonyms
    assert not re.search(r"20\d\d-\d\d-\d\d", text)  # no date
    again = tmp_path / "again"
    build_dataset(project, SNAPSHOT, again)
    assert (again / CROISSANT).read_bytes() == (folder / CROISSANT).read_bytes()


def test_no_croissant_when_off(project, tmp_path):
    facts = build_dataset(project, SNAPSHOT, tmp_path / "off", croissant=False)
    assert not (tmp_path / "off" / CROISSANT).exists() and not facts.croissant
    assert "croissant.json" not in (tmp_path / "off" / "README.md").read_text(encoding="utf-8")


def test_a_format_5_release_hashes_it_and_verify_checks_it(tmp_path):
    folder, project = new_repo(tmp_path / "repo", synthetic_tasks(range(12)))
    result = cut_release(project, "1.0.0")
    manifest = result.manifest
    assert manifest["manifest_format"] == MANIFEST_FORMAT == 10  # format 5 on
    path = result.folder / CROISSANT
    assert manifest["files"][CROISSANT] == sha256_file(path)
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == "1.0.0"
    assert verify_release(project, "1.0.0") == []
    path.write_text(path.read_text(encoding="utf-8").replace("1.0.0", "1.0.1"), encoding="utf-8")
    assert any(p.startswith(f"{CROISSANT}: sha256") for p in verify_release(project, "1.0.0"))
    # a format-5 manifest must list it
    manifest_path = result.folder / "manifest.json"
    edited = json.loads(manifest_path.read_text(encoding="utf-8"))
    del edited["files"][CROISSANT]
    manifest_path.write_text(json.dumps(edited), encoding="utf-8")
    with pytest.raises(BuilderError, match="not a release manifest: files: 'croissant.json' is a required property"):
        load_manifest(manifest_path)


def test_release_1_0_0_has_none_and_rebuilds_byte_identical(project, tmp_path):
    from builder.dataset.release import build_release_folder, read_manifest
    from builder.dataset.release.provenance import committed_version

    # from the snapshot 1.0.0 was cut from (unkeyed names, renamed in 1.1.0), as git holds it
    snapshot = tmp_path / "snapshot.jsonl"
    committed_version(
        "snapshot", project.snapshot_path, read_manifest(project, "1.0.0")["hashes"]["snapshot"], snapshot
    )
    rebuilt = build_release_folder(project, "1.0.0", tmp_path / "1.0.0", snapshot=snapshot)
    assert rebuilt == read_manifest(project, "1.0.0")
    assert not (tmp_path / "1.0.0" / CROISSANT).exists()
    for name in rebuilt["files"]:
        assert (tmp_path / "1.0.0" / name).read_bytes() == (ROOT / "releases" / "1.0.0" / name).read_bytes()
