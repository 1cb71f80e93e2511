"""The published dataset: typed features, BIO, leak-free stable splits, card, Hub call sequence, notebook."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.dataset.bio import bio_to_spans, non_overlapping, spans_to_bio
from builder.dataset.build import Encoder, build_dataset
from builder.dataset.splits import ARTICLE_HASH, SENTENCE_SHARES, SPLIT_METHODS, assign_splits, hash_split
from builder.errors import BuilderError, InputError
from builder.jsonio import read_jsonl, sha256_file
from builder.outputs import MARKER
from builder.sentences.segmenter import splitter_name

from .conftest import ROOT, make_project

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"


@pytest.fixture(scope="module")
def built(project, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dist") / project.name
    facts = build_dataset(project, SNAPSHOT, folder)
    return folder, facts


def test_load_dataset_gives_typed_features(project, built):
    import datasets

    folder, facts = built
    ds = datasets.load_dataset(str(folder))
    assert set(ds) == {"train", "validation", "test"}
    features = ds["train"].features
    assert isinstance(features["stance"], datasets.ClassLabel) and features["stance"].names == project.stance_values
    assert features["ner_tags"].feature.names == project.bio_tags
    assert features["entities"].feature["label"].names == project.entity_values
    assert features["annotations"].feature["stance"].names == project.stance_values
    rows = [row for split in ds.values() for row in split]
    assert len(rows) == facts.validation.records == 65
    unresolved = [row for row in rows if row["stance"] == -1]
    assert len(unresolved) == 3 and all(row["stance_status"] == "tie" for row in unresolved)
    row = next(r for r in rows if "Ri Chang Dae" in r["text"] and r["entities"])
    span = next(e for e in row["entities"] if row["text"][e["start"] : e["end"]] == "Ri Chang Dae")
    assert features["entities"].feature["label"].int2str(span["label"]) == "PER"
    assert len(row["tokens"]) == len(row["ner_tags"]) and row["num_annotators"] == 2


def test_bio_is_lossless_on_the_sample(built):
    import datasets

    folder, facts = built
    ds = datasets.load_dataset(str(folder))
    names = ds["train"].features["ner_tags"].feature.names
    labels = ds["train"].features["entities"].feature["label"].names
    overlapping = {o["id"] for o in facts.overlaps}
    for row in (r for split in ds.values() for r in split):
        spans = [
            {"start": e["start"], "end": e["end"], "label": labels[e["label"]], "text": e["text"]}
            for e in row["entities"]
        ]
        kept, _ = non_overlapping(spans)
        back = bio_to_spans(row["text"], row["tokens"], [names[t] for t in row["ner_tags"]])
        assert back == sorted(kept, key=lambda s: s["start"])
        if row["id"] not in overlapping:
            assert len(kept) == len(spans)
    # resolved entities (dataset format 3) never overlap without ground truth: the sample's BIO view holds them all
    assert facts.overlaps == []
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "cannot be held by the BIO view" not in card and "overlap a longer span" not in card


def test_entity_status_is_a_feature_and_bio_tags_only_resolved_spans(built, project):
    """Each span of `entities` says how it was decided; `ner_tags` are the resolved spans' alone."""
    import datasets

    folder, facts = built
    ds = datasets.load_dataset(str(folder))
    assert ds["train"].features["entities"].feature["status"] == datasets.Value("string")
    statuses = {e["status"] for split in ds.values() for row in split for e in row["entities"]}
    assert statuses <= {"ground_truth", "unanimous", "majority"} and "unanimous" in statuses
    unresolved = [row for split in ds.values() for row in split if row["unresolved_entities"]]
    assert unresolved and facts.validation.report.kept["unresolved entity spans"] == sum(
        len(row["unresolved_entities"]) for row in unresolved
    )
    names = ds["train"].features["ner_tags"].feature.names
    labels = ds["train"].features["entities"].feature["label"].names
    for row in unresolved:
        back = bio_to_spans(row["text"], row["tokens"], [names[t] for t in row["ner_tags"]])
        assert [(s["start"], s["end"], s["label"]) for s in back] == [
            (e["start"], e["end"], labels[e["label"]]) for e in row["entities"]
        ]


@st.composite
def text_and_spans(draw):
    words = draw(
        st.lists(
            st.sampled_from(["Kim", "Jong-un", "met", "Putin", "in", "Pyongyang", ",", "U.S.", "’s", "🙂", "x"]),
            min_size=1,
            max_size=20,
        )
    )
    text = " ".join(words)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=8))))
    spans = []
    for start, end in zip(cuts[::2], cuts[1::2]):
        piece = text[start:end]
        if piece.strip() == piece and piece:
            spans.append({"start": start, "end": end, "label": draw(st.sampled_from(["PER", "LOC"])), "text": piece})
    return text, spans


@settings(max_examples=300, deadline=None)
@given(text_and_spans())
def test_spans_to_bio_to_spans_round_trip(case):
    text, spans = case
    tokens, tags, dropped = spans_to_bio(text, spans)
    assert dropped == []
    assert bio_to_spans(text, tokens, tags) == sorted(spans, key=lambda s: s["start"])


def reference_bio(text, spans):
    """The plain algorithm: token offsets cut at span boundaries, then tag tokens inside each span."""
    import re

    word_or_punctuation = re.compile(r"\w+|[^\w\s]")
    kept, _ = non_overlapping(spans)
    offsets, start = [], 0
    for cut in sorted({s["start"] for s in kept} | {s["end"] for s in kept} | {len(text)}):
        offsets += [m.span() for m in word_or_punctuation.finditer(text, start, cut)]
        start = cut
    tags = ["O"] * len(offsets)
    for span in kept:
        inside = [i for i, (a, b) in enumerate(offsets) if a >= span["start"] and b <= span["end"]]
        for n, i in enumerate(inside):
            tags[i] = ("B-" if n == 0 else "I-") + span["label"]
    return [text[a:b] for a, b in offsets], tags


@settings(max_examples=300, deadline=None)
@given(text_and_spans())
def test_spans_to_bio_matches_the_plain_algorithm_with_names_and_ids(case):
    text, spans = case
    tokens, tags, _ = spans_to_bio(text, spans)
    assert (tokens, tags) == reference_bio(text, spans)
    ids = {t: i for i, t in enumerate(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])}
    assert spans_to_bio(text, spans, ids)[1] == [ids[t] for t in tags]


def test_encoder_turns_label_names_into_ids_and_refuses_unknown_ones(project):
    encoder = Encoder(project)
    record = {
        "id": "s1",
        "article_id": "a",
        "sentence_index": 0,
        "text": "Kim met Putin.",
        "target": "t",
        "stance": None,
        "stance_status": "tie",
        "stance_distribution": [0.5, 0.5, 0.0],
        "entities": [{"start": 8, "end": 13, "label": "PER", "text": "Putin", "status": "unanimous"}],
        "unresolved_entities": [],
        "annotations": [
            {
                "annotator": "annotator-0123456789ab",
                "stance": "against",
                "entities": [],
                "lead_time": None,
                "ground_truth": False,
            }
        ],
        "num_annotators": 1,
        "agreement": None,
    }
    columns = encoder.new_columns()
    encoder.add(record, columns)
    row = encoder.table(columns).to_pylist()[0]
    assert row["stance"] == -1 and row["annotations"][0]["stance"] == project.stance_values.index("against")
    assert row["entities"][0]["label"] == project.entity_values.index("PER")
    assert row["tokens"] == ["Kim", "met", "Putin", "."] and row["ner_tags"][2] == project.bio_tags.index("B-PER")
    with pytest.raises(BuilderError, match="s1: entity label 'ANIMAL' is not in the label scheme"):
        encoder.add({**record, "entities": [{**record["entities"][0], "label": "ANIMAL"}]}, encoder.new_columns())
    columns = encoder.new_columns()
    encoder.add({**record, "annotations": [{**record["annotations"][0], "stance": "bored"}]}, columns)
    with pytest.raises(BuilderError, match=r"annotations.stance: label\(s\) \['bored'\]"):
        encoder.table(columns)


def test_encoder_refuses_an_annotator_that_is_not_a_pseudonym_without_echoing_it(project):
    encoder = Encoder(project)
    annotation = {
        "annotator": "annotator-0123456789ab",
        "stance": "neutral",
        "entities": [],
        "lead_time": 1.0,
        "ground_truth": False,
    }
    record = {
        "id": "s1",
        "article_id": "a",
        "sentence_index": 0,
        "text": "Kim met Putin.",
        "target": "t",
        "stance": "neutral",
        "stance_status": "unanimous",
        "stance_distribution": [0.0, 1.0, 0.0],
        "entities": [],
        "unresolved_entities": [],
        "annotations": [annotation],
        "num_annotators": 1,
        "agreement": None,
    }
    encoder.add(record, encoder.new_columns())
    encoder.add(
        {**record, "annotations": [{**annotation, "annotator": "annotator-0123abcd"}]}, encoder.new_columns()
    )  # release 1.0.0's scheme
    for name in ("kim.jong@example.com", "annotator-0123456789AB", "annotator-", None, ["annotator-0123456789ab"]):
        with pytest.raises(BuilderError) as caught:
            encoder.add(
                {**record, "annotations": [annotation, {**annotation, "annotator": name}]}, encoder.new_columns()
            )
        assert str(caught.value) == "s1: an annotator is not a pseudonym; validate the records first"


def test_splits_are_by_article_stable_and_keep_shared_text_together(project, built):
    import datasets

    folder, facts = built
    ds = datasets.load_dataset(str(folder))
    seen = {}
    for split, part in ds.items():
        for article in set(part["article_id"]):
            assert seen.setdefault(article, split) == split
    proportions = {"train": 0.6, "validation": 0.2, "test": 0.2}
    articles = [f"article-{i}" for i in range(300)]
    added = [f"new-{i}" for i in range(300)]
    # the old method (releases before manifest format 6): adding articles never moves an existing one
    before, _ = assign_splits(((a, f"{a} text") for a in articles), proportions, salt="s", method=ARTICLE_HASH)
    after, _ = assign_splits(((a, f"{a} text") for a in articles + added), proportions, salt="s", method=ARTICLE_HASH)
    assert all(after[a] == before[a] for a in articles)
    # the new one: exact shares in sentences, and adding 10 one-sentence articles moves at most 2 * (10 + 1)
    now, facts_ = assign_splits(((a, f"{a} text") for a in articles), proportions, salt="s")
    assert facts_["sentences"] == {"train": 180, "validation": 60, "test": 60}
    more, _ = assign_splits(((a, f"{a} text") for a in articles + added[:10]), proportions, salt="s")
    assert sum(1 for a in articles if more[a] != now[a]) <= 22
    for method in SPLIT_METHODS:
        splits, _ = assign_splits(((a, f"{a} text") for a in articles), proportions, salt="s", method=method)
        test_article = next(a for a in articles if splits[a] == "test")
        train_article = next(a for a in articles if splits[a] == "train")
        shared, facts_ = assign_splits(
            [(train_article, "Same wire copy."), (test_article, "Same wire copy."), (train_article, "own")],
            proportions,
            salt="s",
            method=method,
        )
        assert shared[train_article] == shared[test_article] and facts_["shared_text_groups"] == 1
        assert method == SENTENCE_SHARES or shared[test_article] == "test"  # the most held-out of the group
        frozen, _ = assign_splits(
            [(train_article, "x")], proportions, frozen_test={train_article}, salt="s", method=method
        )
        assert frozen[train_article] == "test"
    assert hash_split("a", proportions, "one") in ("train", "validation", "test")


@st.composite
def corpora(draw):
    """Articles of 1 to 40 sentences, some sharing a sentence text (so grouped), some frozen in test, and shares."""
    sizes = draw(st.lists(st.integers(1, 40), min_size=1, max_size=30))
    links = draw(st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=6))
    pairs = [(f"a{i}", f"a{i} sentence {k}") for i, n in enumerate(sizes) for k in range(n - 1)]
    shared = {i: f"a{i} last" for i in range(len(sizes))}  # each article's last sentence, or one it shares
    for j, (x, y) in enumerate(links):
        if x < len(sizes) and y < len(sizes):
            shared[max(x, y)] = shared[min(x, y)]
    pairs += [(f"a{i}", shared[i]) for i in range(len(sizes))]
    frozen = {f"a{i}" for i in draw(st.sets(st.integers(0, len(sizes) - 1), max_size=3))}
    train, validation = sorted(draw(st.lists(st.integers(0, 20), min_size=2, max_size=2)))
    proportions = {"train": train / 20, "validation": (validation - train) / 20, "test": (20 - validation) / 20}
    return pairs, frozen, proportions


def _groups_of(pairs):
    """Articles linked by a shared sentence text, as sets (the test's own union of them)."""
    by_text: dict[str, set] = {}
    for article, text in pairs:
        by_text.setdefault(text, set()).add(article)
    groups: list[set] = []
    for articles in by_text.values():
        joined = [g for g in groups if g & articles]
        merged = set(articles).union(*joined)
        groups = [g for g in groups if not g & articles] + [merged]
    return groups


@settings(max_examples=300, deadline=None)
@given(corpora(), st.randoms(use_true_random=False))
def test_sentence_shares_are_kept_within_one_article_and_deterministic(corpus, rng):
    """Each split's sentence count is within half a group (train, test) or one group (validation, which has two
    cuts) of its share, the largest group counting; groups and frozen test articles are kept; any input order
    gives the same splits. When the frozen test sentences alone exceed test's share, test holds just them."""
    pairs, frozen, proportions = corpus
    splits, facts = assign_splits(pairs, proportions, frozen_test=frozen, salt="s")
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    assert assign_splits(shuffled, proportions, frozen_test=frozen, salt="s") == (splits, facts)
    sizes: dict[str, int] = {}
    for article, _ in pairs:
        sizes[article] = sizes.get(article, 0) + 1
    counts = {s: sum(n for a, n in sizes.items() if splits[a] == s) for s in ("train", "validation", "test")}
    assert facts["sentences"] == counts and facts["split_method"] == SENTENCE_SHARES
    groups = _groups_of(pairs)
    assert all(len({splits[a] for a in group}) == 1 for group in groups)
    assert all(splits[a] == "test" for a in frozen)
    forced = sum(sizes[a] for g in groups if g & frozen for a in g)
    largest = max((sum(sizes[a] for a in g) for g in groups if not g & frozen), default=0)
    total = sum(sizes.values())
    if forced <= proportions["test"] * total:
        targets = {s: p * total for s, p in proportions.items()}
    else:  # test holds the frozen articles alone; train and validation share the rest in ratio
        assert counts["test"] == forced
        rest, held = total - forced, proportions["train"] + proportions["validation"]
        targets = {"train": rest * proportions["train"] / held, "test": forced}
        targets["validation"] = rest - targets["train"]
    slack = {"train": largest / 2, "validation": largest, "test": largest / 2}
    assert all(abs(counts[s] - targets[s]) <= slack[s] + 1e-9 for s in counts), (counts, targets, largest)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=40), st.lists(st.integers(1, 30), max_size=5))
def test_adding_articles_moves_at_most_their_sentences_at_each_cut(sizes, added):
    """Adding articles of M sentences moves existing articles of at most M + the largest article's sentences at
    each of the two cuts (existing articles keep their order; the cuts and their positions shift by at most M)."""
    proportions = {"train": 0.6, "validation": 0.2, "test": 0.2}
    old = [(f"a{i}", f"a{i} {k}") for i, n in enumerate(sizes) for k in range(n)]
    new = [(f"new{i}", f"new{i} {k}") for i, n in enumerate(added) for k in range(n)]
    before, _ = assign_splits(old, proportions, salt="s")
    after, _ = assign_splits(old + new, proportions, salt="s")
    moved = sum(n for i, n in enumerate(sizes) if before[f"a{i}"] != after[f"a{i}"])
    assert moved <= 2 * (sum(added) + max(sizes + added))


def test_card_passes_huggingface_hub_checks(project, built):
    from huggingface_hub import DatasetCard

    folder, _ = built
    card = DatasetCard.load(folder / "README.md")
    data = card.data.to_dict()
    for key in (
        "license",
        "language",
        "pretty_name",
        "task_categories",
        "task_ids",
        "annotations_creators",
        "language_creators",
        "size_categories",
        "source_datasets",
        "configs",
        "dataset_info",
    ):
        assert data.get(key), key
    assert data["configs"][0]["data_files"][0]["path"].startswith("data/")
    splits = {s["name"]: s["num_examples"] for s in data["dataset_info"]["splits"]}
    assert sum(splits.values()) == 65
    text = card.text
    for section in (
        "## Splits and label distribution",
        "## Agreement",
        "## How it was made",
        "## Sources and licences",
        "## Known limitations",
        "## Citation",
        "load_dataset(",
        "Krippendorff",
        "CC BY 2.5",
        splitter_name(),
    ):
        assert section in text, section


def test_card_names_the_splitter_of_its_release_format(project, built, tmp_path):
    """A new build names this builder's splitter; a release from before manifest format 5 names lines+segtok/1,
    the splitter it was made with, as its card always did (so it rebuilds byte for byte)."""
    folder, _ = built
    assert (
        f"with `{splitter_name()}` (newlines, datelines and photo credits first" in (folder / "README.md").read_text()
    )
    build_dataset(project, SNAPSHOT, tmp_path / "old", current_splitter=False)
    card = (tmp_path / "old" / "README.md").read_text(encoding="utf-8")
    assert "   with `lines+segtok/1` (newlines first, then segtok).\n" in card
    assert splitter_name() not in card


def test_build_is_deterministic(project, built, tmp_path):
    folder, _ = built
    again = tmp_path / project.name
    build_dataset(project, SNAPSHOT, again)
    files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for relative in files:
        assert sha256_file(folder / relative) == sha256_file(again / relative), relative


def test_failed_build_leaves_previous_output(project, built, tmp_path):
    folder = tmp_path / "out"
    build_dataset(project, SNAPSHOT, folder)
    before = {p.name: sha256_file(p) for p in folder.rglob("*.parquet")}
    with pytest.raises(InputError, match="cannot open"):
        build_dataset(project, tmp_path / "missing.jsonl", folder)
    assert {p.name: sha256_file(p) for p in folder.rglob("*.parquet")} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


class FakeHub:
    """Answers the Hub's HTTP API as far as huggingface_hub's upload and tag calls need; records calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append((request.method, path))
        if path == "/api/validate-yaml":
            self.validated_yaml = json.loads(request.content)
            return httpx.Response(200, json={})
        if path == "/api/repos/create":
            return httpx.Response(200, json={"url": "https://huggingface.co/datasets/org/sample", "name": "org/sample"})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return httpx.Response(
                200,
                json={
                    "files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files],
                    "commitOid": "0" * 40,
                },
            )
        if "/commit/" in path:
            lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
            self.committed = sorted(line["value"]["path"] for line in lines if line.get("key") == "file")
            return httpx.Response(
                200,
                json={
                    "commitUrl": "https://huggingface.co/datasets/org/sample/commit/" + "a" * 40,
                    "commitOid": "a" * 40,
                    "success": True,
                },
            )
        if "/tag/" in path:
            self.tag = json.loads(request.content)
            return httpx.Response(200, json={})
        if request.method == "GET" and "/revision/" in path:
            return httpx.Response(200, json={"id": "org/sample", "sha": "a" * 40, "siblings": []})
        return httpx.Response(404, json={"error": f"fake hub: unexpected {request.method} {path}"})


def test_push_to_hub_call_sequence_with_fake_transport(built, monkeypatch):
    from huggingface_hub import HfApi, set_client_factory
    from huggingface_hub.utils import _http

    from builder.dataset.hub import push_folder

    folder, _ = built
    fake = FakeHub()
    set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(fake)))
    try:
        url = push_folder(
            folder, "org/sample", tag="v1.0.0", api=HfApi(token="hf_fake", endpoint="https://huggingface.co")
        )
    finally:
        _http.close_session()
        set_client_factory(_http.default_client_factory)
    assert url == "https://huggingface.co/datasets/org/sample"
    methods = [c for c in fake.calls if c[0] == "POST"]
    assert methods[0] == ("POST", "/api/repos/create")
    assert any("/preupload/" in p for _, p in methods) and any("/commit/" in p for _, p in methods)
    assert methods[-1][1].endswith("/tag/" + "a" * 40) or "/tag/" in methods[-1][1]
    assert fake.tag["tag"] == "v1.0.0"
    assert "dataset_info" in fake.validated_yaml["content"]
    assert fake.committed == sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MARKER
    )


def test_push_without_token_is_a_clean_error(built, monkeypatch):
    from builder.dataset.hub import push_folder
    from builder.errors import BuilderError

    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(BuilderError, match="HF_TOKEN is not set"):
        push_folder(built[0], "org/sample")


def test_notebook_executes(built, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    folder, _ = built
    notebook = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit the notebook without outputs"
    )
    import os

    os.environ["BUILDER_DATASET"] = str(folder)
    path_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)  # the kernel imports this checkout's builder, whichever is installed
    try:
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
        ).execute()
    finally:
        os.environ.pop("BUILDER_DATASET")
        if path_before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = path_before
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("<mark" in o.get("data", {}).get("text/html", "") for o in outputs)
    assert any("gold_accuracy" in o.get("data", {}).get("text/html", "") for o in outputs)  # the annotators' table


def test_records_hash_is_stable_across_runs(project, tmp_path):
    from builder.records.from_snapshot import validate_snapshot

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    validate_snapshot(project, SNAPSHOT, a)
    validate_snapshot(project, SNAPSHOT, b)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert len(list(read_jsonl(a))) == 65


def test_build_reads_the_snapshot_and_the_gold_file_once_each(tmp_path):
    """`builder build` validates, hashes, measures quality and the control arms, and counts the
    pre-annotations from one read of the snapshot, and reads the gold file once (issue 25)."""
    import os
    import sys

    from builder.dataset.release import build_project_dataset
    from builder.project import load_project
    from builder.records.steering import ARM_FIELD, SHOWN, WITHHELD

    tasks = [json.loads(line) for line in SNAPSHOT.read_text(encoding="utf-8").splitlines()]
    for n, task in enumerate(tasks):  # a control arm and pre-annotations, so every reader has work
        task["data"][ARM_FIELD] = SHOWN if n % 2 else WITHHELD
        if n % 2:
            task["predictions"] = [{"model_version": "builder-crf/2+x", "score": 0.9, "result": []}]
    gold = []
    for task in tasks[:3]:  # gold questions, answered as their first annotator did
        data = task["data"]
        stance = task["annotations"][0]["result"][0]["value"]["choices"][0]
        fields = ("article_id", "sentence_index", "text", "start", "end")
        gold.append({"id": data["sentence_id"], **{k: data[k] for k in fields}, "stance": stance, "entities": []})
    folder = tmp_path / "p"
    project = make_project(folder, "Read once")
    text = (folder / "builder.toml").read_text(encoding="utf-8")
    (folder / "builder.toml").write_text(f'{text}\n[quality]\ngold = "gold.jsonl"\n', encoding="utf-8")
    (folder / "gold.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gold), encoding="utf-8")
    snapshot = folder / "annotations" / "snapshot.jsonl"
    snapshot.parent.mkdir()
    snapshot.write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks), encoding="utf-8")
    project = load_project(folder / "builder.toml")

    watched = {str(snapshot.resolve()): "snapshot", str((folder / "gold.jsonl").resolve()): "gold"}
    opens: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event == "open" and opens is not None and isinstance(args[0], (str, bytes, os.PathLike)):
            name = watched.get(os.path.realpath(os.fsdecode(args[0])))
            if name:
                opens.append(name)

    sys.addaudithook(audit)  # cannot be removed: `opens = None` below switches it off
    try:
        facts = build_project_dataset(project, snapshot, tmp_path / "built")  # what `builder build` calls
    finally:
        counted, opens = opens, None
    assert counted.count("snapshot") == 1, counted
    assert counted.count("gold") == 1, counted
    # what each read fed is there: the hash, the gold questions, the arms and the pre-annotations
    assert facts.snapshot_hash == sha256_file(snapshot)
    assert facts.gold_questions == 3
    assert set(facts.quality["suggestion_arms"]["arms"]) == {SHOWN, WITHHELD}
    assert facts.predictions["tasks_with"] == len(tasks) // 2


def test_lead_times_read_back_as_label_studio_gave_them(project, built):
    """Issue 27 point 9: float32 read 15.6 s back as 15.600000381469727. From dataset format 4 the dataset stores
    lead_time as float64: every lead time loads as the snapshot holds it, the card's features say float64, and
    an older format (release 1.1.0's 3) still writes float32 (its rebuild stays byte for byte)."""
    import datasets
    import numpy as np
    import pyarrow.parquet as pq

    from builder.model import features, lead_time_dtype

    folder, facts = built
    given = {
        (task["data"]["sentence_id"], a["annotator"]): a["lead_time"]
        for task in read_jsonl(SNAPSHOT)
        for a in task["annotations"]
    }
    assert any(value != float(np.float32(value)) for value in given.values() if value is not None)  # float32 noise
    rows = [row for split in datasets.load_dataset(str(folder)).values() for row in split]
    loaded = {(row["id"], a["annotator"]): a["lead_time"] for row in rows for a in row["annotations"]}
    assert loaded and all(loaded[key] == given[key] for key in loaded)
    assert (lead_time_dtype(3), lead_time_dtype(4)) == ("float32", "float64")
    [parquet, *_] = sorted((folder / "data").glob("*.parquet"))
    assert str(pq.read_schema(parquet).field("annotations").type.value_type.field("lead_time").type) == "double"
    assert "dtype: float64" in (folder / "README.md").read_text(encoding="utf-8")
    assert features(project, 3)["annotations"].feature["lead_time"].dtype == "float32"
