"""Aggregation (issue 13): Dawid-Skene over a snapshot, stance_distribution, reliability-weighted spans,
gold questions left out of the records and the dataset, and the dataset format of old and new releases."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest

from builder.jsonio import read_jsonl, write_jsonl
from builder.project import load_project
from builder.records.aggregate import aggregate_entities, stance_shares, task_to_record
from builder.records.from_snapshot import load_records, validate_snapshot, validate_to_files
from builder.sentences.segmenter import sentence_id

from .conftest import make_project
from .test_release import builder, commit_snapshot, edit_toml, new_repo

LABELS = ["favor", "against", "neutral"]  # the repository scheme's stance labels, in order
GOOD, FAIR, SPAMMER = "annotator-00000000000a", "annotator-00000000000b", "annotator-00000000000c"


def sentence(i: int, article: str = "article") -> dict:
    text = f"Sentence {i} says Kim Jong Un met officials in Pyongyang."
    return {
        "id": sentence_id(f"{article}-{i // 5}", text, 0),
        "article_id": f"{article}-{i // 5}",
        "sentence_index": i % 5,
        "occurrence": 0,
        "text": text,
        "start": 0,
        "end": len(text),
    }


def annotation(n: int, annotator: str, stance: str, spans=(), ground_truth=False, cancelled=False) -> dict:
    result = [
        {
            "from_name": "entities",
            "to_name": "sentence",
            "type": "labels",
            "value": {"start": s, "end": e, "text": text[s:e], "labels": [label]},
        }
        for text, s, e, label in spans
    ]
    result.append({"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}})
    return {
        "id": n,
        "annotator": annotator,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "lead_time": 4.0,
    }


def task(n: int, s: dict, annotations: list[dict]) -> dict:
    data = {k: s[k] for k in ("article_id", "sentence_index", "occurrence", "text")}
    return {"task_id": n, "data": {**data, "sentence_id": s["id"], "target": "t"}, "annotations": annotations}


def simulated(n_tasks=300, gold_every=10, seed=11):
    """Three annotators on every task: 95% right, 70% right, and one answering at random; every
    `gold_every`-th sentence is a gold question. Returns (tasks sorted by sentence id, truth by
    sentence id, gold sentences with their answers)."""
    rng = random.Random(seed)
    tasks, truth, gold = [], {}, []
    for i in range(n_tasks):
        s = sentence(i)
        right = rng.choice(LABELS)
        truth[s["id"]] = right
        answers = []
        for k, (who, accuracy) in enumerate(((GOOD, 0.95), (FAIR, 0.7), (SPAMMER, None))):
            if accuracy is None:
                stance = rng.choice(LABELS)
            else:
                stance = right if rng.random() < accuracy else rng.choice([x for x in LABELS if x != right])
            answers.append(annotation(10 * i + k, who, stance))
        tasks.append(task(i, s, answers))
        if i % gold_every == 0:
            gold.append({**s, "stance": right, "entities": []})
    tasks.sort(key=lambda t: t["data"]["sentence_id"])
    return tasks, truth, gold


def project_with(folder, aggregation="majority", gold=None, gold_rate=0.05):
    project = make_project(folder, "aggregate")
    toml = folder / "builder.toml"
    text = toml.read_text(encoding="utf-8").replace(
        "entity_agreement = 0.5\n", f'entity_agreement = 0.5\naggregation = "{aggregation}"\n'
    )
    if gold is not None:
        write_jsonl(folder / "gold.jsonl", gold)
        text += f'\n[quality]\ngold = "gold.jsonl"\ngold_rate = {gold_rate}\n'
    toml.write_text(text, encoding="utf-8")
    project = load_project(toml)
    assert project.stance_values == LABELS
    return project


def write_snapshot(folder, tasks):
    path = folder / "annotations" / "snapshot.jsonl"
    path.parent.mkdir(exist_ok=True)
    write_jsonl(path, tasks)
    return path


def records_of(project, snapshot, tmp_path, name="records.jsonl"):
    result = validate_snapshot(project, snapshot, tmp_path / name)
    return result, {r["id"]: r for r in read_jsonl(tmp_path / name)}


# --- majority (the default): today's records plus the shares


def test_majority_distribution_is_the_share_of_each_stance_and_ground_truth_is_one_hot(project):
    s = sentence(0)
    record = task_to_record(
        task(1, s, [annotation(1, GOOD, "favor"), annotation(2, FAIR, "favor"), annotation(3, SPAMMER, "neutral")]),
        project,
    )
    assert (record["stance"], record["stance_status"]) == ("favor", "majority")
    assert record["stance_distribution"] == [0.666667, 0.0, 0.333333]
    starred = task_to_record(
        task(1, s, [annotation(1, GOOD, "against", ground_truth=True), annotation(2, FAIR, "favor")]), project
    )
    assert (starred["stance"], starred["stance_status"], starred["stance_distribution"]) == (
        "against",
        "ground_truth",
        [0.0, 1.0, 0.0],
    )
    assert stance_shares(["favor", "against"], LABELS) == [0.5, 0.5, 0.0]


def test_weighted_entity_vote():
    a = {"start": 0, "end": 3, "label": "PER", "text": "Kim"}
    b = {"start": 5, "end": 8, "label": "LOC", "text": "Seo"}
    # one reliable annotator outweighs two unreliable ones; unweighted, the two win
    assert aggregate_entities([[a], [b], [b]], 0.5, [0.95, 0.3, 0.3]) == [a]
    assert aggregate_entities([[a], [b], [b]], 0.5) == [b]
    assert aggregate_entities([[a], [b], [b]], 0.5, [1.0, 1.0, 1.0]) == [b]


# --- Dawid-Skene over a snapshot


def test_dawid_skene_is_closer_to_the_truth_than_majority_and_a_spammer_cannot_outvote_two(tmp_path):
    tasks, truth, gold = simulated()
    majority = project_with(tmp_path / "m", "majority", gold)
    reliable = project_with(tmp_path / "d", "dawid-skene", gold)
    snapshot = write_snapshot(tmp_path, tasks)
    result_m, by_majority = records_of(majority, snapshot, tmp_path, "m.jsonl")
    result_d, by_model = records_of(reliable, snapshot, tmp_path, "d.jsonl")
    assert result_m.gold == result_d.gold == 30 and result_m.records == result_d.records == 270
    assert set(by_majority) == set(by_model) and not set(by_model) & {g["id"] for g in gold}

    def right(records):
        return sum(r["stance"] == truth[i] for i, r in records.items())

    assert right(by_model) > right(by_majority)
    for i, r in by_model.items():
        distribution = r["stance_distribution"]
        assert len(distribution) == 3 and sum(distribution) == pytest.approx(1, abs=1e-5)
        if r["stance"] is not None:
            assert LABELS[int(np.argmax(distribution))] == r["stance"]
        stances = {a["annotator"]: a["stance"] for a in r["annotations"]}
        if stances[GOOD] == stances[FAIR] != stances[SPAMMER]:
            assert r["stance"] == stances[GOOD]  # two accurate annotators are never outvoted by the spammer
    ties_m = sum(r["stance"] is None for r in by_majority.values())
    ties_d = sum(r["stance"] is None for r in by_model.values())
    assert ties_m > 0 and ties_d < ties_m  # three different answers: majority cannot decide, the model can


def test_dawid_skene_keeps_ground_truth(tmp_path):
    """A starred annotation wins under Dawid-Skene too, even the spammer's against two others."""
    tasks, truth, gold = simulated(n_tasks=120)
    gold_ids = {g["id"] for g in gold}
    starred = next(t for t in tasks if t["data"]["sentence_id"] not in gold_ids)
    text = starred["data"]["text"]
    kim = (text, text.index("Kim"), text.index("Kim") + 11, "PER")
    starred["annotations"] = [
        annotation(9004, SPAMMER, "against", [kim], ground_truth=True),
        annotation(9005, GOOD, "favor"),
        annotation(9006, FAIR, "favor"),
    ]
    project = project_with(tmp_path, "dawid-skene", gold)
    _, records = records_of(project, write_snapshot(tmp_path, tasks), tmp_path)
    record = records[starred["data"]["sentence_id"]]
    assert (record["stance"], record["stance_status"], record["stance_distribution"]) == (
        "against",
        "ground_truth",
        [0.0, 1.0, 0.0],
    )
    assert [e["label"] for e in record["entities"]] == ["PER"]
    assert record["agreement"] == pytest.approx(1 / 3, abs=1e-4)
    del truth


def test_a_spammer_span_is_dropped_where_majority_keeps_it(tmp_path):
    """Two annotators: one reliable, one random. Where only the spammer marked a span, majority cannot
    decide it (one of two against one who marked nothing: unresolved, for review); the weighted vote
    outvotes it (the reliable annotator who marked nothing weighs more), so it is not even unresolved."""
    rng = random.Random(5)
    tasks, gold = [], []
    for i in range(200):
        s = sentence(i)
        right = rng.choice(LABELS)
        text = s["text"]
        span = (text, text.index("Kim"), text.index("Kim") + 11, "PER")
        tasks.append(
            task(i, s, [annotation(2 * i, GOOD, right), annotation(2 * i + 1, SPAMMER, rng.choice(LABELS), [span])])
        )
        if i % 5 == 0:
            gold.append({**s, "stance": right, "entities": []})
    tasks.sort(key=lambda t: t["data"]["sentence_id"])
    snapshot = write_snapshot(tmp_path, tasks)
    _, by_majority = records_of(project_with(tmp_path / "m", "majority", gold), snapshot, tmp_path, "m.jsonl")
    _, by_model = records_of(project_with(tmp_path / "d", "dawid-skene", gold), snapshot, tmp_path, "d.jsonl")
    assert all(r["entities"] == [] and len(r["unresolved_entities"]) == 1 for r in by_majority.values())
    assert all(r["entities"] == [] and r["unresolved_entities"] == [] for r in by_model.values())
    # and the reliable annotator's stance wins every disagreement
    for r in by_model.values():
        good = next(a["stance"] for a in r["annotations"] if a["annotator"] == GOOD)
        assert r["stance"] == good


def test_gold_questions_are_counted_apart_in_the_report_and_the_cli(tmp_path):
    tasks, _, gold = simulated(n_tasks=40)
    project = project_with(tmp_path, "majority", gold)
    write_snapshot(tmp_path, tasks)
    result = validate_to_files(project)
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["gold_questions"] == 4 and report["records"] == 36 and report["tasks_in"] == 40
    assert report["tasks_in"] == report["records"] + report["gold_questions"] + report["quarantined"]
    ran = builder(tmp_path, "validate")
    assert ran.returncode == 0, ran.stderr
    assert "validate: 40 tasks in = 36 records + 4 gold questions + 0 quarantined" in ran.stderr
    assert "gold questions: 4 tasks, not in the dataset" in ran.stderr
    records, _ = load_records(project, project.snapshot_path)  # stats and review see no gold question either
    assert len(records) == 36


def test_without_gold_the_accounting_line_is_as_before(tmp_path):
    tasks, _, _ = simulated(n_tasks=10)
    project_with(tmp_path)
    write_snapshot(tmp_path, tasks)
    ran = builder(tmp_path, "validate")
    assert "validate: 10 tasks in = 10 records + 0 quarantined" in ran.stderr
    assert "gold questions" not in ran.stderr


def test_a_built_dataset_holds_no_gold_question_and_a_soft_label_column(tmp_path):
    import datasets

    tasks, _, gold = simulated(n_tasks=100)
    project = project_with(tmp_path, "dawid-skene", gold, gold_rate=0.1)
    write_snapshot(tmp_path, tasks)
    ran = builder(tmp_path, "build", "-o", tmp_path / "dist")
    assert ran.returncode == 0, ran.stderr
    assert "10 gold questions in the snapshot, left out" in ran.stdout
    loaded = datasets.load_dataset(str(tmp_path / "dist"))
    ids = {i for split in loaded.values() for i in split["id"]}
    assert len(ids) == 90 and not ids & {g["id"] for g in gold}
    train = loaded["train"]
    assert train.features["stance_distribution"].feature.dtype == "float32"
    assert train.features["stance"].names == LABELS
    for row in train:
        assert len(row["stance_distribution"]) == 3 and sum(row["stance_distribution"]) == pytest.approx(1, abs=1e-4)
    card = (tmp_path / "dist" / "README.md").read_text(encoding="utf-8")
    assert "Aggregation method: `dawid-skene`" in card
    assert "gold rate 0.1 of the pushed tasks; 10 gold question(s) in the snapshot, left out of the dataset" in card
    accuracy = next(line for line in card.splitlines() if line.startswith("- Gold stance accuracy per annotator"))
    assert "not measured" not in accuracy  # builder.records.quality measured it on the gold questions
    assert "`stance_distribution`" in card and "(`favor`, `against`, `neutral`)" in card
    assert project.dataset_path  # the project's own default is untouched


# --- dataset formats across releases


def test_an_older_format_release_rebuilds_without_the_new_field_and_a_new_one_has_it(tmp_path):
    import pyarrow.parquet as pq

    from builder.dataset.release import build_release_folder, compare, read_manifest, verify_release
    from builder.model import dataset_columns

    tasks, _, _ = simulated(n_tasks=60)
    folder, project = new_repo(tmp_path / "repo", tasks)
    old = build_release_folder(project, "1.0.0", folder / "releases" / "1.0.0", manifest_format=2)
    assert old["manifest_format"] == 2 and "dataset_format" not in old and "aggregation" not in old
    for parquet in (folder / "releases" / "1.0.0" / "data").glob("*.parquet"):
        assert pq.read_schema(parquet).names == dataset_columns(1)
        assert "stance_distribution" not in pq.read_schema(parquet).names
    card = (folder / "releases" / "1.0.0" / "README.md").read_text(encoding="utf-8")
    assert "Quality control" not in card and "stance_distribution" not in card
    assert "Aggregation: a ground-truth annotation wins; otherwise the\nmajority stance" in card
    digest = hashlib.sha256((folder / "releases" / "1.0.0" / "manifest.json").read_bytes()).hexdigest()
    (folder / "CHANGELOG.md").write_text(f"# Changelog\n\n## 1.0.0\n\nmanifest sha256 `{digest}`\n", encoding="utf-8")
    assert verify_release(project, "1.0.0") == []
    # a newer builder rebuilds it as it was, byte for byte
    again = build_release_folder(project, "1.0.0", tmp_path / "again")
    assert again == old
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (
        folder / "releases" / "1.0.0" / "manifest.json"
    ).read_bytes()

    commit_snapshot(folder, tasks, "release 1.0.0")
    # 1.0.0's test articles (split by article hash) hold 20 of the 60 sentences, 13 points over test's share
    refused = builder(folder, "release", "1.1.0")
    assert refused.returncode == 1 and "split test holds 20 of 60 sentences (33%)" in refused.stderr
    project = edit_toml(folder, "test = 0.2\n", "test = 0.2\nallow_uneven = true\n")
    ran = builder(folder, "release", "1.1.0")
    assert ran.returncode == 0, ran.stderr
    new = read_manifest(project, "1.1.0")
    assert (new["manifest_format"], new["dataset_format"], new["aggregation"]) == (10, 4, "majority")
    for parquet in (folder / "releases" / "1.1.0" / "data").glob("*.parquet"):
        assert pq.read_schema(parquet).names == dataset_columns(4)
    assert verify_release(project, "1.1.0") == []
    lines = builder(folder, "diff", "1.0.0", "1.1.0").stdout
    assert "- aggregation: majority (unchanged)" in lines
    assert compare(project, "1.0.0", "1.1.0")["quality_control"][0] is None


def test_verify_catches_a_dataset_format_that_does_not_match_the_files(tmp_path):
    from builder.dataset.release import build_release_folder, verify_release

    tasks, _, _ = simulated(n_tasks=30)
    folder, project = new_repo(tmp_path / "repo", tasks)
    build_release_folder(project, "1.0.0", folder / "releases" / "1.0.0")
    path = folder / "releases" / "1.0.0" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**manifest, "dataset_format": 1}), encoding="utf-8")
    problems = verify_release(project, "1.0.0")
    assert any("the manifest says dataset format 1 but the file has dataset format 4" in p for p in problems)
    path.write_text(json.dumps({**manifest, "aggregation": "dawid-skene"}), encoding="utf-8")
    problems = verify_release(project, "1.0.0")
    assert any(p.startswith("aggregation: the manifest says 'dawid-skene'") for p in problems)


def test_quality_summary_reaches_card_manifest_and_diff(tmp_path, monkeypatch):
    """What builder.records.quality summarises (here replaced by known figures) is printed in the
    card, recorded in the manifest and compared by diff."""
    from builder.dataset import build
    from builder.dataset.release import read_manifest, verify_release

    tasks, _, gold = simulated(n_tasks=60)
    folder, project = new_repo(tmp_path / "repo", tasks)
    ran = builder(folder, "release", "1.0.0")
    assert ran.returncode == 0, ran.stderr
    card = (folder / "releases" / "1.0.0" / "README.md").read_text(encoding="utf-8")
    assert "Anchoring rate (pre-annotated spans kept unchanged): not measured." in card
    summary = {"annotators": 3, "gold_accuracy": [0.41, 0.72, 0.95], "anchoring_rate": 0.25, "flagged": 1}
    as_pandas_gives_it = {**summary, "annotators": np.int64(3), "flagged": np.int64(1)}
    monkeypatch.setattr(build, "_quality_summary", lambda project, *read: as_pandas_gives_it)
    ran = builder(folder, "release", "1.1.0")
    assert ran.returncode == 0, ran.stderr
    assert read_manifest(project, "1.1.0")["quality"] == summary
    card = (folder / "releases" / "1.1.0" / "README.md").read_text(encoding="utf-8")
    assert "3 annotator(s): 0.410, 0.720, 0.950 (min 0.410, median 0.720, max 0.950)" in card
    assert "Anchoring rate (pre-annotated spans kept unchanged): 0.250." in card
    assert "Annotators below the minimum gold accuracy (0.7): 1." in card
    assert verify_release(project, "1.1.0") == []
    diff = builder(folder, "diff", "1.0.0", "1.1.0").stdout
    assert "median n/a -> 0.72" in diff and "anchoring rate n/a -> 0.25" in diff
    assert "flagged 0 -> 1" in diff  # 1.0.0 was measured too: no gold, none flagged
    del gold


def test_describe_accuracies_for_many_annotators():
    from builder.dataset.card import describe_accuracies

    text = describe_accuracies([i / 100 for i in range(40, 100)])
    assert text.startswith("60 annotators: min 0.400, median 0.695, max 0.990, quartiles")
    assert describe_accuracies([None]) == "no annotator answered a gold question"


def test_dawid_skene_on_an_unsorted_snapshot_gives_the_same_records(tmp_path):
    """A hand-edited, unsorted snapshot is validated again from the start: the model is fitted once
    on the whole of it, and the records are those of the sorted snapshot."""
    tasks, _, gold = simulated(n_tasks=80)
    project = project_with(tmp_path, "dawid-skene", gold)
    _, in_order = records_of(project, write_snapshot(tmp_path, tasks), tmp_path, "sorted.jsonl")
    result, shuffled = records_of(project, write_snapshot(tmp_path, tasks[::-1]), tmp_path, "unsorted.jsonl")
    assert result.gold == 8 and result.records == 72
    assert shuffled.keys() == in_order.keys()
    for i, record in in_order.items():
        assert shuffled[i]["stance"] == record["stance"]
        assert shuffled[i]["stance_distribution"] == pytest.approx(record["stance_distribution"], abs=1e-4)


def test_dawid_skene_never_puts_in_a_stance_nobody_gave(tmp_path):
    """One annotator who errs the same way on every gold question (favor for against, against for
    neutral, neutral for favor) keeps their own answers: the model weighs answers, it does not swap them.
    The posterior in stance_distribution still says what the model makes of them."""
    from builder.records.quality import annotator_report  # the report's aggregate follows the records

    shift = {"favor": "neutral", "against": "favor", "neutral": "against"}  # truth -> what they answer
    rng = random.Random(5)
    tasks, gold = [], []
    for i in range(60):
        s = sentence(i)
        right = rng.choice(LABELS)
        tasks.append(task(i, s, [annotation(i, GOOD, shift[right])]))
        if i % 5 == 0:
            gold.append({**s, "stance": right, "entities": []})
    tasks.sort(key=lambda t: t["data"]["sentence_id"])
    project = project_with(tmp_path, "dawid-skene", gold)
    snapshot = write_snapshot(tmp_path, tasks)
    _, records = records_of(project, snapshot, tmp_path)
    assert len(records) == 48
    for record in records.values():
        given = record["annotations"][0]["stance"]
        assert record["stance"] == given and record["stance_status"] == "unanimous"
        assert max(record["stance_distribution"]) > record["stance_distribution"][LABELS.index(given)]
    assert annotator_report(snapshot, project, project_gold_of(project)).loc[0, "gold_accuracy"] == 0.0


def project_gold_of(project):
    from builder.gold.answers import project_gold

    return project_gold(project)


def test_a_snapshot_of_gold_questions_only_builds_nothing_and_says_why(tmp_path):
    """With no record, no Parquet file could be written and `load_dataset` would fail on the folder."""
    tasks, _, gold = simulated(n_tasks=10, gold_every=1)
    project_with(tmp_path, "majority", gold, gold_rate=0.5)
    write_snapshot(tmp_path, tasks)
    ran = builder(tmp_path, "build", "-o", tmp_path / "dist")
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert (
        ran.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "no sentence to build a dataset of (10 tasks: 10 gold questions, 0 quarantined); "
            "annotate and `builder pull` first"
        )
    )
    assert not (tmp_path / "dist").exists()


# --- entity conflicts (issue 24): one resolved label per extent, each span saying how it was decided

NATO_TEXT = "NATO said Kim Jong Un met officials in Pyongyang."
A, B, C = GOOD, FAIR, SPAMMER


def nato_sentence(i: int = 0) -> dict:
    article = f"nato-{i}"
    return {
        "id": sentence_id(article, NATO_TEXT, 0),
        "article_id": article,
        "sentence_index": 0,
        "occurrence": 0,
        "text": NATO_TEXT,
        "start": 0,
        "end": len(NATO_TEXT),
    }


def span(piece: str, label: str, text: str = NATO_TEXT) -> tuple:
    start = text.index(piece)
    return text, start, start + len(piece), label


def resolved(start: int, end: int, label: str, status: str) -> dict:
    return {"start": start, "end": end, "label": label, "text": NATO_TEXT[start:end], "status": status}


def plain(piece: str, label: str) -> dict:
    start = NATO_TEXT.index(piece)
    return {"start": start, "end": start + len(piece), "label": label, "text": piece}


def entity_case(spans_per_annotator, ground_truth=(), i: int = 0) -> dict:
    """A task of the NATO sentence whose k-th annotator (A, B, C) marked `spans_per_annotator[k]`."""
    annotations = [
        annotation(10 * i + k, who, "neutral", spans, ground_truth=k in ground_truth)
        for k, (who, spans) in enumerate(zip((A, B, C), spans_per_annotator))
    ]
    return task(i, nato_sentence(i), annotations)


def both_paths(project, tasks, tmp_path) -> list[dict]:
    """The records of `tasks` (in their order) through `builder validate` (the msgspec fast path where it
    applies), checked equal to task_to_record's."""
    snapshot = write_snapshot(tmp_path, sorted(tasks, key=lambda t: t["data"]["sentence_id"]))
    _, records = records_of(project, snapshot, tmp_path)
    for t in tasks:
        assert records[t["data"]["sentence_id"]] == task_to_record(json.loads(json.dumps(t)), project)
    return [records[t["data"]["sentence_id"]] for t in tasks]


def test_two_annotators_one_extent_two_labels_is_unresolved_not_two_spans(project, tmp_path):
    """The issue's case: `builder init` defaults (2 annotators, entity_agreement 0.5), "NATO" ORG against
    MISC. Neither label is kept (no two labels on one extent); both are unresolved, for review."""
    nato = [span("NATO", "ORG")], [span("NATO", "MISC")]
    (record,) = both_paths(project, [entity_case(nato)], tmp_path)
    assert record["entities"] == []
    assert record["unresolved_entities"] == [plain("NATO", "MISC"), plain("NATO", "ORG")]
    assert record["stance_status"] == "unanimous"  # the stance's own status, apart from the spans'


def test_with_two_annotators_a_span_needs_both(project, tmp_path):
    agreed = [span("NATO", "ORG"), span("Kim Jong Un", "PER")], [span("NATO", "ORG")]
    (record,) = both_paths(project, [entity_case(agreed)], tmp_path)
    assert record["entities"] == [resolved(0, 4, "ORG", "unanimous")]
    # one of two against one who marked nothing there: not agreed, and not outvoted either
    assert record["unresolved_entities"] == [plain("Kim Jong Un", "PER")]


def test_a_strict_majority_decides_and_the_outvoted_are_not_unresolved(project, tmp_path):
    three = [span("NATO", "ORG")], [span("NATO", "ORG")], [span("NATO", "MISC"), span("Pyongyang", "LOC")]
    (record,) = both_paths(project, [entity_case(three)], tmp_path)
    assert record["entities"] == [resolved(0, 4, "ORG", "majority")]
    assert record["unresolved_entities"] == []  # MISC lost 2 to 1; Pyongyang 1 to 2 who left it unmarked
    tie = [span("NATO", "ORG")], [span("NATO", "MISC")], []
    (tmp_path / "tie").mkdir()
    (record,) = both_paths(project, [entity_case(tie, i=1)], tmp_path / "tie")
    assert record["entities"] == [] and len(record["unresolved_entities"]) == 2


def test_crossing_and_nested_spans_are_never_both_kept(project, tmp_path):
    crossing = [span("Kim Jong", "PER")], [span("Jong Un", "PER")]
    nested = [span("Kim Jong Un", "PER"), span("Kim", "PER")], [span("Kim Jong Un", "PER"), span("Kim", "PER")]
    majority = [span("Kim Jong Un", "PER")], [span("Kim Jong Un", "PER")], [span("Kim", "PER")]
    records = both_paths(
        project, [entity_case(crossing, i=0), entity_case(nested, i=1), entity_case(majority, i=2)], tmp_path
    )
    assert [r["entities"] for r in records[:2]] == [[], []]
    assert records[0]["unresolved_entities"] == [plain("Kim Jong", "PER"), plain("Jong Un", "PER")]
    assert records[1]["unresolved_entities"] == [plain("Kim", "PER"), plain("Kim Jong Un", "PER")]
    assert records[2]["entities"] == [resolved(10, 21, "PER", "majority")]
    for record in records:
        spans = record["entities"]
        assert all(a["end"] <= b["start"] for a, b in zip(spans, spans[1:]))


def test_dawid_skene_weights_decide_a_conflict():
    from builder.records.aggregate import resolve_entities

    org, misc = plain("NATO", "ORG"), plain("NATO", "MISC")
    # one reliable annotator outweighs two unreliable ones on the same extent; unweighted, the two win
    kept, unresolved = resolve_entities([[org], [misc], [misc]], 0.3, [0.95, 0.3, 0.3])
    assert (kept, unresolved) == ([{**org, "status": "majority"}], [])
    kept, _ = resolve_entities([[org], [misc], [misc]], 0.5)
    assert kept == [{**misc, "status": "majority"}]
    # entity_agreement is a share of the summed reliability: 0.95 of 1.55 is below 0.7
    assert resolve_entities([[org], [misc], [misc]], 0.7, [0.95, 0.3, 0.3]) == ([], [org])


def test_dawid_skene_records_resolve_entities_with_the_reliabilities(tmp_path):
    """Over a snapshot: the reliable annotator's label wins the extent the random one labels otherwise."""
    tasks, _, gold = simulated(n_tasks=100)
    for t in tasks:
        text = t["data"]["text"]
        for a in t["annotations"]:
            label = "MISC" if a["annotator"] == SPAMMER else "PER"
            a["result"].insert(
                0, annotation(0, a["annotator"], "neutral", [span("Kim Jong Un", label, text)])["result"][0]
            )
        t["annotations"] = [a for a in t["annotations"] if a["annotator"] != FAIR]  # two annotators
    snapshot = write_snapshot(tmp_path, tasks)
    _, by_majority = records_of(project_with(tmp_path / "m", "majority", gold), snapshot, tmp_path, "m.jsonl")
    _, by_model = records_of(project_with(tmp_path / "d", "dawid-skene", gold), snapshot, tmp_path, "d.jsonl")
    assert all(r["entities"] == [] and len(r["unresolved_entities"]) == 2 for r in by_majority.values())
    labels = {tuple((e["label"], e["status"]) for e in r["entities"]) for r in by_model.values()}
    assert labels == {(("PER", "majority"),)}
    assert all(r["unresolved_entities"] == [] for r in by_model.values())


def test_ground_truth_is_adjudicated(project, tmp_path):
    """A starred annotation (an adjudicator's) decides the spans, nested ones included: status ground_truth."""
    starred = [span("NATO", "ORG")], [span("NATO", "MISC"), span("Kim Jong Un", "PER"), span("Kim", "PER")]
    record = task_to_record(entity_case(starred, ground_truth=(1,)), project)
    assert record["entities"] == [
        resolved(0, 4, "MISC", "ground_truth"),
        resolved(10, 13, "PER", "ground_truth"),
        resolved(10, 21, "PER", "ground_truth"),
    ]
    assert record["unresolved_entities"] == []
    # two adjudicators: what both marked; what only one marked stays unresolved
    both = [span("NATO", "ORG"), span("Pyongyang", "LOC")], [span("NATO", "ORG")]
    record = task_to_record(entity_case(both, ground_truth=(0, 1)), project)
    assert record["entities"] == [resolved(0, 4, "ORG", "ground_truth")]
    assert record["unresolved_entities"] == [plain("Pyongyang", "LOC")]


def test_a_project_may_keep_unresolved_spans_marked_so(tmp_path):
    project = make_project(tmp_path / "keep", "keep")
    toml = tmp_path / "keep" / "builder.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            "entity_agreement = 0.5\n", "entity_agreement = 0.5\nkeep_unresolved_entities = true\n"
        ),
        encoding="utf-8",
    )
    project = load_project(toml)
    nato = [span("NATO", "ORG")], [span("NATO", "MISC")]
    (record,) = both_paths(project, [entity_case(nato)], tmp_path)
    assert record["entities"] == [resolved(0, 4, "MISC", "unresolved"), resolved(0, 4, "ORG", "unresolved")]
    assert record["unresolved_entities"] == [plain("NATO", "MISC"), plain("NATO", "ORG")]


def test_older_dataset_formats_keep_their_rule(project):
    """Release 1.0.0 (dataset format 1) and format 2 were aggregated by share alone: rebuilt as they were."""
    nato = [span("NATO", "ORG")], [span("NATO", "MISC")]
    for old in (1, 2):
        record = task_to_record(entity_case(nato), project, dataset_format=old)
        assert record["entities"] == [plain("NATO", "MISC"), plain("NATO", "ORG")]
        assert "unresolved_entities" not in record


def test_validate_reports_the_unresolved_spans(project, tmp_path):
    nato = [span("NATO", "ORG")], [span("NATO", "MISC")]
    snapshot = write_snapshot(tmp_path, [entity_case(nato)])
    result = validate_snapshot(project, snapshot)
    assert result.report.kept["unresolved entity spans"] == 2
