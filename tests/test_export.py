"""`builder export`: each format read back with the toolkit that owns it and compared with the dataset."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from click.testing import CliRunner

from builder.cli import cli
from builder.dataset.bio import non_overlapping
from builder.dataset.build import build_dataset
from builder.dataset.export import REPORT, export_dataset, read_rows, stance_mapping
from builder.errors import BuilderError
from builder.outputs import MARKER

from .conftest import ROOT, make_project

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"
# What an adjudicator may mark that a flat view cannot hold: (label, first word, last word) per span, words
# counted from 0 in the sentence; `entities` overlap only where ground truth puts them (dataset format 3).
ADJUDICATED = {
    "same extent with another label": [("ORG", 0, 0), ("MISC", 0, 0)],
    "nested in or around another span": [("ORG", 0, 1), ("PER", 0, 0)],
    "crossing another span": [("ORG", 0, 1), ("LOC", 1, 2)],
}


def adjudicated_snapshot(path):
    """The sample snapshot with three sentences adjudicated (a ground-truth annotation) with spans of each
    kind in ADJUDICATED; returns (path, {sentence id: kind})."""
    import re

    from builder.jsonio import read_jsonl, write_jsonl
    from builder.model import ENTITIES, region

    tasks = list(read_jsonl(SNAPSHOT))
    kinds = iter(ADJUDICATED.items())
    adjudicated = {}
    for task in tasks:
        words = list(re.finditer(r"\w+", task["data"]["text"]))
        if len(words) < 3 or task["annotations"][0].get("was_cancelled"):
            continue
        kind, spans = next(kinds, (None, None))
        if kind is None:
            break
        text = task["data"]["text"]
        first = task["annotations"][0]
        items = [
            region(words[a].start(), words[b].end(), text[words[a].start() : words[b].end()], label)
            for label, a, b in spans
        ]
        first["result"] = [item for item in first["result"] if item["from_name"] != ENTITIES] + items
        first["ground_truth"] = True
        adjudicated[task["data"]["sentence_id"]] = kind
    write_jsonl(path, tasks)
    return path, adjudicated


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A project with its dataset built at its default output, and the dataset's rows by split (three
    sentences adjudicated with overlapping spans, `adjudicated_snapshot`)."""
    folder = tmp_path_factory.mktemp("export") / "project"
    snapshot, _ = adjudicated_snapshot(folder.parent / "snapshot.jsonl")
    project = make_project(folder, "export", snapshot)
    build_dataset(project, snapshot, project.dataset_path)
    return project, dataset_rows(project.dataset_path)


def dataset_rows(folder):
    """The dataset's rows by split as `datasets` loads them, labels as names, ordered as exports order them."""
    import datasets

    loaded = datasets.load_dataset(str(folder))
    rows = {}
    for split in loaded:
        features = loaded[split].features
        stance, label = features["stance"], features["entities"].feature["label"]
        tags = features["ner_tags"].feature
        rows[split] = sorted(
            (
                {
                    **row,
                    "stance": stance.int2str(row["stance"]) if row["stance"] >= 0 else None,
                    "entities": [{**e, "label": label.int2str(e["label"])} for e in row["entities"]],
                    "unresolved_entities": [
                        {**e, "label": label.int2str(e["label"])} for e in row["unresolved_entities"]
                    ],
                    "ner_tags": [tags.int2str(t) for t in row["ner_tags"]],
                    "annotations": [
                        {
                            **a,
                            "stance": stance.int2str(a["stance"]) if a["stance"] >= 0 else None,
                            "entities": [{**e, "label": label.int2str(e["label"])} for e in a["entities"]],
                        }
                        for a in row["annotations"]
                    ],
                }
                for row in loaded[split]
            ),
            key=lambda r: (r["article_id"], r["sentence_index"], r["id"]),
        )
    return rows


def spans(entities):
    return sorted((e["start"], e["end"], e["label"]) for e in entities)


def read_conll(path):
    """A CoNLL-2003 reader: documents (split at -DOCSTART-) of sentences of (token, tag)."""
    documents, sentence = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("-DOCSTART-"):
            documents.append([])
        elif not line.strip():
            if sentence:
                documents[-1].append(sentence)
            sentence = []
        else:
            token, tag = line.split(" ")
            sentence.append((token, tag))
    assert not sentence
    return documents


def test_conll_tags_equal_the_dataset(built, tmp_path):
    project, rows = built
    result = export_dataset(project, "conll", tmp_path / "conll")
    assert set(result.rows) == set(rows)
    overlapping = []
    for split, split_rows in rows.items():
        documents = read_conll(tmp_path / "conll" / f"{split}.conll")
        assert len(documents) == len({r["article_id"] for r in split_rows})  # one -DOCSTART- per article
        sentences = [s for d in documents for s in d]
        assert len(sentences) == len(split_rows)
        for sentence, row in zip(sentences, split_rows):
            assert [t for t, _ in sentence] == row["tokens"]
            assert [tag for _, tag in sentence] == row["ner_tags"]
            overlapping += [row["id"] for _ in non_overlapping(row["entities"])[1]]
    # the spans BIO cannot hold are counted by their real kind and named, never dropped silently
    _, kinds = adjudicated_snapshot(tmp_path / "again.jsonl")
    assert sorted(overlapping) == sorted(kinds), "only the adjudicated sentences have overlapping spans"
    report = json.loads((tmp_path / "conll" / REPORT).read_text(encoding="utf-8"))
    for sentence, kind in kinds.items():
        note = next(n for n in result.notes if kind in n)
        assert note.startswith(f"conll: 1 entity span(s) {kind}, which BIO tags cannot hold") and sentence in note
        key = f"entity span(s) {kind}, which BIO tags cannot hold, left out"
        assert [x["id"] for x in report["not_held"][key]] == [sentence]
    assert not any("longer span" in n for n in result.notes)
    card = (project.dataset_path / "README.md").read_text(encoding="utf-8")
    assert (
        "3 entity span(s) of `entities` cannot be held by the BIO view (`ner_tags`), which tags the longest, then "
        "the earliest, of overlapping spans (1 same extent with another label, 1 nested in or around another span, "
        "1 crossing another span)"
    ) in card.replace("\n", " ")


def test_semeval_tsv_parses_with_csv(built, tmp_path):
    project, rows = built
    result = export_dataset(project, "semeval", tmp_path / "semeval")
    assert result.stance_map == {"favor": "FAVOR", "against": "AGAINST", "neutral": "NONE"}
    unresolved = []
    for split, split_rows in rows.items():
        with open(tmp_path / "semeval" / f"{split}.tsv", encoding="utf-8", newline="") as handle:
            table = list(csv.reader(handle, delimiter="\t"))
        assert table[0] == ["ID", "Target", "Text", "Stance"]
        resolved = [r for r in split_rows if r["stance"] is not None]
        unresolved += [r["id"] for r in split_rows if r["stance"] is None]
        assert table[1:] == [[r["id"], r["target"], r["text"], result.stance_map[r["stance"]]] for r in resolved]
    assert unresolved
    note = next(n for n in result.notes if "unresolved" in n)
    assert note.startswith(f"semeval: {len(unresolved)} sentence(s) with an unresolved stance")
    assert all(i in note for i in unresolved)


def test_spacy_docbin_holds_ents_spans_and_cats(built, tmp_path):
    import spacy
    from spacy.tokens import DocBin

    project, rows = built
    result = export_dataset(project, "spacy", tmp_path / "spacy")
    vocab = spacy.blank("en").vocab
    dropped = []
    for split, split_rows in rows.items():
        docs = list(DocBin().from_disk(tmp_path / "spacy" / f"{split}.spacy").get_docs(vocab))
        assert len(docs) == len(split_rows)
        for doc, row in zip(docs, split_rows):
            assert doc.user_data["id"] == row["id"] and doc.text == row["text"]
            kept, lost = non_overlapping(row["entities"])
            dropped += lost
            assert spans({"start": e.start_char, "end": e.end_char, "label": e.label_} for e in doc.ents) == spans(kept)
            assert [e.text for e in sorted(doc.ents, key=lambda e: e.start_char)] == [e["text"] for e in kept]
            group = doc.spans["entities"]
            assert spans({"start": s.start_char, "end": s.end_char, "label": s.label_} for s in group) == spans(
                row["entities"]
            )
            assert doc.cats == {label: float(label == row["stance"]) for label in project.stance_values}
    assert len(dropped) == 3
    for kind in ADJUDICATED:
        assert any(n.startswith(f"spacy: 1 entity span(s) {kind}, not in Doc.ents") for n in result.notes)


def test_jsonl_spans_match_text(built, tmp_path):
    project, rows = built
    export_dataset(project, "jsonl", tmp_path / "jsonl")
    for split, split_rows in rows.items():
        lines = (tmp_path / "jsonl" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert [r["id"] for r in records] == [r["id"] for r in split_rows]
        for record, row in zip(records, split_rows):
            assert record["stance"] == row["stance"] and record["stance"] in (*project.stance_values, None)
            assert record["entities"] == row["entities"]
            for entity in record["entities"]:
                assert record["text"][entity["start"] : entity["end"]] == entity["text"]
                assert entity["label"] in project.entity_values


def test_read_rows_decodes_as_datasets_does(built):
    project, rows = built
    assert dict(read_rows(project.dataset_path)) == rows


def test_a_release_exports_as_its_rows(project, tmp_path):
    result = export_dataset(project, "jsonl", tmp_path / "out", version="1.0.0")
    assert result.source == ROOT / "releases" / "1.0.0"
    total = sum(len((tmp_path / "out" / f"{s}.jsonl").read_text().splitlines()) for s in result.rows)
    manifest = json.loads((ROOT / "releases" / "1.0.0" / "manifest.json").read_text(encoding="utf-8"))
    assert total == sum(split["records"] for split in manifest["splits"].values())
    with pytest.raises(BuilderError, match="no release 9.9.9"):
        export_dataset(project, "jsonl", tmp_path / "other", version="9.9.9")


def test_output_rules(built, tmp_path):
    project, _ = built
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(BuilderError, match="not written by builder"):
        export_dataset(project, "jsonl", foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(BuilderError, match="holds the output of `builder build`"):
        export_dataset(project, "jsonl", project.dataset_path)  # never over the dataset itself
    out = tmp_path / "again"
    export_dataset(project, "conll", out)
    export_dataset(project, "jsonl", out)  # an earlier export is replaced whole
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, REPORT, *(f"{s}.jsonl" for s in ("train", "validation", "test"))]
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    default = export_dataset(project, "conll")
    assert default.folder == project.dataset_path.parent / f"{project.name}-conll"


def test_stance_mapping():
    assert stance_mapping(["support", "oppose", "none"]) == {"support": "FAVOR", "oppose": "AGAINST", "none": "NONE"}
    with pytest.raises(BuilderError, match=r"pass --stance-map pro-x=FAVOR\|AGAINST\|NONE"):
        stance_mapping(["pro-x", "neutral"])
    assert stance_mapping(["pro-x", "neutral"], {"pro-x": "FAVOR"}) == {"pro-x": "FAVOR", "neutral": "NONE"}
    with pytest.raises(BuilderError, match="map each label to one of FAVOR, AGAINST, NONE"):
        stance_mapping(["pro-x"], {"pro-x": "YES"})


def invoke(project, *args):
    return CliRunner().invoke(cli, ["--config", str(project.source), "export", *map(str, args)])


def test_cli_states_the_mapping_and_losses_on_stderr(built, tmp_path):
    project, _ = built
    result = invoke(project, "--format", "semeval", "-o", tmp_path / "tsv")
    assert result.exit_code == 0, result.stderr
    assert "stance mapping: favor -> FAVOR, against -> AGAINST, neutral -> NONE" in result.stderr
    assert "semeval: 3 sentence(s) with an unresolved stance" in result.stderr
    assert result.stdout.startswith("exported ")
    help_text = CliRunner().invoke(cli, ["export", "--help"]).stdout
    assert "Example:" in help_text and "FAVOR" in help_text


def test_spacy_missing_is_one_line(built, tmp_path, monkeypatch):
    project, _ = built
    monkeypatch.setitem(sys.modules, "spacy", None)  # `import spacy` raises ImportError
    result = invoke(project, "--format", "spacy", "-o", tmp_path / "docs")
    assert result.exit_code == 1
    assert result.stderr == "error: --format spacy needs spaCy: pip install spacy\n"
    assert not (tmp_path / "docs").exists()


def test_no_build_is_one_line(tmp_path):
    project = make_project(tmp_path / "empty", "empty")
    result = invoke(project, "--format", "conll")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "run `builder build` first" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_an_empty_split_is_counted_as_zero_in_the_report(tmp_path):
    """A split with no rows (a small dataset, a hand-pruned folder) is said to hold 0 sentences, not left out."""
    from builder.dataset.splits import parquet_pattern

    project = make_project(tmp_path / "project", "export empty split", SNAPSHOT)
    build_dataset(project, SNAPSHOT, project.dataset_path)
    for path in project.dataset_path.glob(parquet_pattern("test")):
        path.unlink()
    result = export_dataset(project, "jsonl", tmp_path / "out")
    report = json.loads((tmp_path / "out" / REPORT).read_text(encoding="utf-8"))
    assert report["sentences"]["test"] == 0 and report["sentences"]["train"] == result.rows["train"] > 0
    assert not (tmp_path / "out" / "test.jsonl").exists()


def test_unresolved_spans_a_project_keeps_are_in_no_bio_tag_and_counted(tmp_path):
    """`keep_unresolved_entities`: the spans the vote could not decide stay in `entities` (status unresolved),
    but the BIO tags, CoNLL and spaCy take the resolved spans only, and count what they leave out."""
    import spacy
    from spacy.tokens import DocBin

    folder = tmp_path / "project"
    make_project(folder, "keep", SNAPSHOT)
    toml = folder / "builder.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            "entity_agreement = 0.5\n", "entity_agreement = 0.5\nkeep_unresolved_entities = true\n"
        ),
        encoding="utf-8",
    )
    from builder.project import load_project

    project = load_project(toml)
    facts = build_dataset(project, SNAPSHOT, project.dataset_path)
    assert facts.overlaps == []  # unresolved spans overlap each other, but are not in the BIO view
    rows = dataset_rows(project.dataset_path)
    kept = [
        (r["id"], e) for split in rows.values() for r in split for e in r["entities"] if e["status"] == "unresolved"
    ]
    assert kept
    for row in (r for split in rows.values() for r in split):
        resolved = [e for e in row["entities"] if e["status"] != "unresolved"]
        assert [e["status"] for e in row["entities"]].count("unresolved") == len(row["unresolved_entities"])
        assert spans(non_overlapping(resolved)[0]) == spans(resolved)  # resolved spans never overlap
        tags = [t for t in row["ner_tags"] if t != "O" and t.startswith("B-")]
        assert len(tags) == len(resolved)
    result = export_dataset(project, "conll", tmp_path / "conll")
    note = next(n for n in result.notes if "unresolved entity span(s)" in n)
    assert note.startswith(f"conll: {len(kept)} unresolved entity span(s) (status unresolved), left out")
    result = export_dataset(project, "spacy", tmp_path / "spacy")
    assert any(n.startswith(f"spacy: {len(kept)} unresolved entity span(s)") for n in result.notes)
    vocab = spacy.blank("en").vocab
    ids = {i for i, _ in kept}
    for split in rows:
        for doc in DocBin().from_disk(tmp_path / "spacy" / f"{split}.spacy").get_docs(vocab):
            if doc.user_data["id"] in ids:
                row = next(r for r in rows[split] if r["id"] == doc.user_data["id"])
                resolved = [e for e in row["entities"] if e["status"] != "unresolved"]
                assert spans({"start": s.start_char, "end": s.end_char, "label": s.label_} for s in doc.ents) == spans(
                    resolved
                )
