"""Validation, records and agreement: every malformed snapshot gets its own reason; nothing is lost."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from builder.jsonio import read_jsonl
from builder.model import record_schema, task_schema
from builder.preannotate import GazetteerPredictor
from builder.pseudonyms import is_pseudonym
from builder.records.aggregate import aggregate_entities, aggregate_stance, task_to_record
from builder.records.agreement import span_agreement, stance_agreement
from builder.records.from_snapshot import validate_snapshot
from builder.records.validate import NOT_A_PSEUDONYM
from builder.resources import load_schema
from builder.sentences.segmenter import sentence_id

from .conftest import ROOT, run_cli

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"


@pytest.fixture(scope="module")
def base_tasks():
    tasks = list(read_jsonl(SNAPSHOT))
    seed = [t for t in tasks if t["data"]["article_id"] == "ri-chang-dae-moscow" and len(t["annotations"]) == 2]
    two_entities = next(
        t for t in seed if sum(i["from_name"] == "entities" for i in t["annotations"][0]["result"]) >= 2
    )
    neighbour = next(t for t in seed if t is not two_entities)
    return two_entities, neighbour


def entity_items(annotation):
    return [i for i in annotation["result"] if i["from_name"] == "entities"]


def stance_item(annotation):
    return next(i for i in annotation["result"] if i["from_name"] == "stance")


def with_text(task, text):
    data = task["data"]
    data["text"] = text
    data["sentence_id"] = sentence_id(data["article_id"], text)


def emoji_text(t):
    """Valid: offsets count code points, also after emoji."""
    item = entity_items(t["annotations"][0])[0]
    value = item["value"]
    prefix = "🇰🇵🙂 "
    with_text(t, prefix + t["data"]["text"])
    for annotation in t["annotations"]:
        for i in entity_items(annotation):
            i["value"]["start"] += len(prefix)
            i["value"]["end"] += len(prefix)
    assert t["data"]["text"][value["start"] : value["end"]] == value["text"]


# (name, mutation, expected reason or None if the task stays valid, annotations kept)
CASES = [
    ("wrong type task_id", lambda t: t.update(task_id="12"), "schema", 0),
    ("wrong type start", lambda t: entity_items(t["annotations"][0])[0]["value"].update(start="3"), "schema", 1),
    ("negative start", lambda t: entity_items(t["annotations"][0])[0]["value"].update(start=-1), "schema", 1),
    ("missing sentence id", lambda t: t["data"].pop("sentence_id"), "schema", 0),
    ("annotation not an object", lambda t: t["annotations"].__setitem__(0, "oops"), "schema", 0),
    (
        "offset off by one",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(
            end=entity_items(t["annotations"][0])[0]["value"]["end"] + 1
        ),
        "span text mismatch",
        1,
    ),
    (
        "end past text",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(end=len(t["data"]["text"]) + 5),
        "span out of range",
        1,
    ),
    (
        "start after end",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(
            start=entity_items(t["annotations"][0])[0]["value"]["end"]
        ),
        "span out of range",
        1,
    ),
    (
        "unknown label",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(labels=["GPE"]),
        "unknown label",
        1,
    ),
    (
        "two labels on a span",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(labels=["PER", "LOC"]),
        "schema",
        1,
    ),
    (
        "unknown choice",
        lambda t: stance_item(t["annotations"][0])["value"].update(choices=["support"]),
        "unknown choice",
        1,
    ),
    ("unknown control", lambda t: stance_item(t["annotations"][0]).update(from_name="sentiment"), "unknown control", 1),
    (
        "unknown object",
        lambda t: stance_item(t["annotations"][0]).update(to_name="context_before"),
        "unknown object",
        1,
    ),
    ("empty result", lambda t: t["annotations"][0].update(result=[]), "empty result", 1),
    (
        "missing stance",
        lambda t: t["annotations"][0].update(result=entity_items(t["annotations"][0])),
        "missing stance",
        1,
    ),
    (
        "two stances",
        lambda t: t["annotations"][0]["result"].append(copy.deepcopy(stance_item(t["annotations"][0]))),
        "several stances",
        1,
    ),
    (
        "duplicate span",
        lambda t: t["annotations"][0]["result"].append(copy.deepcopy(entity_items(t["annotations"][0])[0])),
        "duplicate span",
        1,
    ),
    ("cancelled annotation", lambda t: t["annotations"][0].update(was_cancelled=True), "cancelled annotation", 1),
    ("skipped task", lambda t: [a.update(was_cancelled=True) for a in t["annotations"]], "skipped task", 0),
    ("no annotations", lambda t: t.update(annotations=[]), "no annotations", 0),
    (
        "changed sentence text",
        lambda t: t["data"].update(text=t["data"]["text"].replace(" ", "  ", 1)),
        "changed sentence text",
        0,
    ),
    ("CRLF text", lambda t: t["data"].update(text=t["data"]["text"] + "\r\n"), "changed sentence text", 0),
    ("whitespace around span", lambda t: None, "trimmed span", 2),  # set up below
    ("text with emoji", emoji_text, None, 2),
    # Hostile or odd values: each a reason, never a traceback (in validate, stats, build, release, the gazetteer).
    (
        "float start",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(
            start=float(entity_items(t["annotations"][0])[0]["value"]["start"])
        ),
        "not an integer",
        1,
    ),
    (
        "float end",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(
            end=float(entity_items(t["annotations"][0])[0]["value"]["end"])
        ),
        "not an integer",
        1,
    ),
    (
        "float sentence_index",
        lambda t: t["data"].update(sentence_index=float(t["data"]["sentence_index"])),
        "not an integer",
        0,
    ),
    ("float data.start", lambda t: t["data"].update(start=float(t["data"]["start"])), "not an integer", 0),
    ("float task_id", lambda t: t.update(task_id=float(t["task_id"])), "not an integer", 0),
    (
        "float annotation id",
        lambda t: t["annotations"][0].update(id=float(t["annotations"][0]["id"])),
        "not an integer",
        1,
    ),
    ("sentence_index past int32", lambda t: t["data"].update(sentence_index=2**31), "schema", 0),
    (
        "sentence_index past int64",
        lambda t: t["data"].update(sentence_index=1e30),
        "schema",
        0,
    ),  # how orjson reads 10**30
    (
        "start past int32",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(start=2**31, end=2**31 + 3),
        "schema",
        1,
    ),
    ("negative lead time", lambda t: t["annotations"][0].update(lead_time=-5), "bad lead time", 2),
    ("lead time 1e308", lambda t: t["annotations"][0].update(lead_time=1e308), "bad lead time", 2),
    ("lead time 'NaN'", lambda t: t["annotations"][0].update(lead_time="NaN"), "bad lead time", 2),
    (
        "bad lead time on a dropped annotation",
        lambda t: t["annotations"][0].update(lead_time=-5, result=[]),
        "empty result",
        1,
    ),
    (
        "e-mail as annotator",
        lambda t: t["annotations"][0].update(annotator="kim.jong@example.com"),
        "not a pseudonym",
        1,
    ),
    (
        "annotator not a string",
        lambda t: t["annotations"][0].update(annotator=["kim.jong@example.com"]),
        "not a pseudonym",
        1,
    ),
    ("null annotations", lambda t: t.update(annotations=None), "schema", 0),
    ("null annotation", lambda t: t["annotations"].append(None), "schema", 0),
    ("null result", lambda t: t["annotations"][0].update(result=None), "schema", 1),
    ("null result item", lambda t: t["annotations"][0]["result"].append(None), "schema", 1),
    ("null value", lambda t: entity_items(t["annotations"][0])[0].update(value=None), "schema", 1),
    ("null labels", lambda t: entity_items(t["annotations"][0])[0]["value"].update(labels=None), "schema", 1),
    (
        "list as label",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(labels=[["PER"]]),
        "unknown label",
        1,
    ),
    (
        "object as label",
        lambda t: entity_items(t["annotations"][0])[0]["value"].update(labels=[{"PER": 1}]),
        "unknown label",
        1,
    ),
    ("occurrence given", lambda t: t["data"].update(occurrence=0), None, 2),
    ("wrong occurrence", lambda t: t["data"].update(occurrence=1), "changed sentence text", 0),
    ("float occurrence", lambda t: t["data"].update(occurrence=0.0), "not an integer", 0),
    ("negative occurrence", lambda t: t["data"].update(occurrence=-1), "schema", 0),
]


def widen_span(task):
    """Make the first span include the space after it (the UI allows sloppy selections)."""
    text = task["data"]["text"]
    value = entity_items(task["annotations"][0])[0]["value"]
    if value["end"] < len(text) and text[value["end"]] == " ":
        value["end"] += 1
        value["text"] = text[value["start"] : value["end"]]
        return True
    return False


def write_snapshot(path, lines):
    path.write_bytes(
        b"".join(
            line if isinstance(line, bytes) else orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n"
            for line in lines
        )
    )


@pytest.mark.parametrize(("name", "mutate", "reason", "kept_annotations"), CASES, ids=[c[0] for c in CASES])
def test_each_malformed_snapshot_has_its_own_reason_and_neighbours_are_untouched(
    project, tmp_path, base_tasks, name, mutate, reason, kept_annotations
):
    broken, neighbour = copy.deepcopy(base_tasks[0]), copy.deepcopy(base_tasks[1])
    if name == "whitespace around span":
        assert widen_span(broken)
    else:
        mutate(broken)
    snapshot = tmp_path / "snapshot.jsonl"
    write_snapshot(snapshot, [neighbour, broken])
    result = validate_snapshot(project, snapshot, tmp_path / "records.jsonl")
    gazetteer = GazetteerPredictor.from_snapshot(
        snapshot, project.entity_values
    )  # `builder push` reads the same snapshot
    assert set(GazetteerPredictor.from_snapshot(write_one(tmp_path, neighbour), project.entity_values).entries) <= set(
        gazetteer.entries
    )
    records = {r["id"]: r for r in read_jsonl(tmp_path / "records.jsonl")}
    assert records[neighbour["data"]["sentence_id"]] == task_to_record(base_tasks[1], project)
    reasons = [p.reason for p in result.report.problems]
    if reason is None:
        assert reasons == []
    else:
        assert reason in reasons, reasons
        assert len(set(reasons)) == 1, reasons
    assert result.tasks_in == 2 == result.records + result.quarantined
    if kept_annotations:
        sid = broken["data"].get("sentence_id")
        assert records[sid]["num_annotators"] == kept_annotations
    else:
        assert result.quarantined == 1
    problem = result.report.problems[0] if result.report.problems else None
    if problem is not None and problem.fields.get("scope") == "annotation":
        annotator = broken["annotations"][0]["annotator"]
        assert problem.fields["annotation_id"] == broken["annotations"][0]["id"]
        assert problem.fields["annotator"] == (annotator if is_pseudonym(annotator) else NOT_A_PSEUDONYM)
        assert problem.fields["task_id"] == broken["task_id"] and problem.fields["field"]
    assert "@" not in json.dumps(result.report.as_dict())  # a hand-edited e-mail is never echoed


def write_one(tmp_path, task):
    path = tmp_path / "one.jsonl"
    write_snapshot(path, [task])
    return path


def test_truncated_file_and_duplicate_task(project, tmp_path, base_tasks):
    good, other = base_tasks
    lines = [
        orjson.dumps(other, option=orjson.OPT_SORT_KEYS) + b"\n",
        orjson.dumps(good, option=orjson.OPT_SORT_KEYS) + b"\n",
        orjson.dumps(dict(good, task_id=999), option=orjson.OPT_SORT_KEYS) + b"\n",
        orjson.dumps(good, option=orjson.OPT_SORT_KEYS)[:-40],
    ]
    snapshot = tmp_path / "snapshot.jsonl"
    write_snapshot(snapshot, lines)
    result = validate_snapshot(project, snapshot)
    assert sorted(p.reason for p in result.report.problems) == ["duplicate task", "unreadable line"]
    assert f"{snapshot}:4" in result.report.by_reason("unreadable line")[0].where
    assert result.tasks_in == 4 and result.records == 2 and result.quarantined == 2


def test_sorted_snapshot_checks_duplicates_in_one_streaming_pass(project, tmp_path, base_tasks, monkeypatch):
    from builder.records import from_snapshot

    passes = []  # assume_sorted of each pass over the snapshot: one streaming pass when sorted
    streaming = from_snapshot._validate_snapshot
    monkeypatch.setattr(
        from_snapshot,
        "_validate_snapshot",
        lambda *args, assume_sorted, **options: (
            passes.append(assume_sorted) or streaming(*args, assume_sorted=assume_sorted, **options)
        ),
    )
    ordered = sorted(base_tasks, key=lambda t: t["data"]["sentence_id"])
    snapshot = tmp_path / "snapshot.jsonl"
    write_snapshot(snapshot, [ordered[0], dict(ordered[0], task_id=999), ordered[1]])
    result = validate_snapshot(project, snapshot)
    assert passes == [True] and [p.reason for p in result.report.problems] == ["duplicate task"]
    passes.clear()
    write_snapshot(snapshot, [ordered[1], ordered[0], dict(ordered[1], task_id=999)])
    result = validate_snapshot(project, snapshot)
    assert passes == [True, False] and [p.reason for p in result.report.problems] == ["duplicate task"]
    assert result.records == 2 and result.tasks_in == 3
    passes.clear()
    validate_snapshot(project, SNAPSHOT)
    assert passes == [True]  # as `builder pull` writes it


def many_tasks(template: dict, n: int) -> list[bytes]:
    """`n` valid tasks as snapshot lines, sorted by sentence id as `builder pull` writes them."""
    lines = []
    for i in range(n):
        task = copy.deepcopy(template)
        task["task_id"] = 10_000_000 + i
        task["data"]["article_id"] = f"memory-{i:07d}"
        with_text(task, task["data"]["text"])
        for number, annotation in enumerate(task["annotations"]):
            annotation["id"] = 20_000_000 + 10 * i + number
        lines.append((task["data"]["sentence_id"], orjson.dumps(task, option=orjson.OPT_SORT_KEYS) + b"\n"))
    return [line for _, line in sorted(lines)]


def test_sorted_snapshot_is_validated_in_constant_memory(project, tmp_path, base_tasks):
    """Measured, not assumed: the peak of Python allocations while validating 4N sorted tasks (records
    written to a file) is that of N, within noise; remembering every sentence id adds ~115 bytes a task."""
    import tracemalloc

    peaks = {}
    for n in (2_500, 10_000):
        snapshot = tmp_path / f"snapshot-{n}.jsonl"
        write_snapshot(snapshot, many_tasks(base_tasks[1], n))
        tracemalloc.start()
        try:
            result = validate_snapshot(project, snapshot, tmp_path / f"records-{n}.jsonl")
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (result.tasks_in, result.records, result.quarantined) == (n, n, 0), result.report.problems[:3]
    assert peaks[10_000] - peaks[2_500] < 300_000, peaks  # measured: no growth; every id kept: +860 KB


def test_validate_command_table_report_and_exit_code(project, tmp_path, base_tasks):
    broken = copy.deepcopy(base_tasks[0])
    entity_items(broken["annotations"][0])[0]["value"]["labels"] = ["GPE"]
    snapshot = tmp_path / "snapshot.jsonl"
    write_snapshot(snapshot, [base_tasks[1], broken])
    report = tmp_path / "report.json"
    result = run_cli("validate", "--snapshot", snapshot, "-o", tmp_path / "records.jsonl", "--report", report, cwd=ROOT)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "unknown label" in result.stderr and f"task {broken['task_id']} annotation" in result.stderr
    assert "2 tasks in = 2 records + 0 quarantined" in result.stderr
    problems = json.loads(report.read_text())["problems"]
    assert problems[0]["annotator"] == broken["annotations"][0]["annotator"] and problems[0]["field"].endswith(
        "labels.0"
    )
    ok = run_cli("validate", "--snapshot", SNAPSHOT, "-o", tmp_path / "r.jsonl", "--report", report, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr


def test_committed_snapshot_is_valid_and_records_match_schema(project, tmp_path):
    import jsonschema

    result = validate_snapshot(project, SNAPSHOT, tmp_path / "records.jsonl")
    assert not result.report.errors() and result.quarantined == 0
    validator = jsonschema.Draft202012Validator(record_schema(project))
    records = list(read_jsonl(tmp_path / "records.jsonl"))
    assert len(records) == result.records == result.tasks_in
    for record in records:
        validator.validate(record)
        assert all(a["annotator"].startswith("annotator-") for a in record["annotations"])
        assert "@" not in json.dumps(record)


def test_committed_schemas_are_generated_from_the_scheme(project):
    assert load_schema("task") == task_schema(project)
    assert load_schema("record") == record_schema(project)
    enums = json.dumps(load_schema("task"))
    for value in project.stance_values + project.entity_values:
        assert f'"{value}"' in enums
    result = run_cli("schema", "--check", cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_aggregation_rules(project):
    assert aggregate_stance(["favor", "favor", "against"]) == ("favor", "majority")
    assert aggregate_stance(["favor", "against"]) == (None, "tie")
    assert aggregate_stance(["neutral"] * 3) == ("neutral", "unanimous")
    a = {"start": 0, "end": 5, "label": "PER", "text": "Alice"}
    b = {"start": 10, "end": 13, "label": "LOC", "text": "Rome"}
    assert aggregate_entities([[a, b], [a], [a]], 0.5) == [a]
    assert aggregate_entities([[a, b], [a]], 0.5) == [a, b]
    assert aggregate_entities([[a, b], [a]], 1.0) == [a]


def annotation(aid, who, stance, spans=(), truth=False):
    result = [
        {
            "from_name": "entities",
            "to_name": "sentence",
            "type": "labels",
            "value": {"start": s, "end": e, "text": "x" * (e - s), "labels": [label]},
        }
        for s, e, label in spans
    ]
    result.append({"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}})
    return {
        "id": aid,
        "annotator": who,
        "result": result,
        "was_cancelled": False,
        "ground_truth": truth,
        "lead_time": 1.0,
    }


def test_ground_truth_wins(project):
    task = {
        "task_id": 1,
        "data": {"sentence_id": "s", "article_id": "a", "sentence_index": 0, "text": "x" * 20},
        "annotations": [
            annotation(1, "annotator-a", "favor", [(0, 3, "PER")]),
            annotation(2, "annotator-b", "favor"),
            annotation(3, "annotator-c", "against", [(5, 9, "LOC")], truth=True),
        ],
    }
    record = task_to_record(task, project)
    assert record["stance"] == "against" and record["stance_status"] == "ground_truth"
    assert [(e["start"], e["label"]) for e in record["entities"]] == [(5, "LOC")]


def test_agreement_figures_on_known_cases():
    def rec(*pairs):
        return {
            "annotations": [
                {"stance": s, "entities": [{"start": 0, "end": 1, "label": label}] if label else []}
                for s, label in pairs
            ]
        }

    perfect = [
        rec(("favor", "PER"), ("favor", "PER")),
        rec(("against", None), ("against", None)),
        rec(("neutral", "LOC"), ("neutral", "LOC")),
    ]
    result = stance_agreement(perfect, ["favor", "against", "neutral"])
    assert result["krippendorff_alpha"] == 1.0 and result["fleiss_kappa"] == 1.0 and result["units"] == 3
    spans = span_agreement(perfect, ["PER", "LOC"])
    assert spans["f1"] == 1.0 and spans["per_label"] == {"PER": 1.0, "LOC": 1.0}
    mixed = span_agreement([rec(("favor", "PER"), ("favor", "LOC"))], ["PER", "LOC"])
    assert mixed["f1"] == 0.0


def hostile_snapshot(tmp_path):
    """The committed snapshot with one hostile value in each of several tasks (and one bad lead time)."""
    tasks = list(read_jsonl(SNAPSHOT))
    seed = [
        t
        for t in tasks
        if t["data"]["article_id"] == "ri-chang-dae-moscow"
        and len(t["annotations"]) == 2
        and entity_items(t["annotations"][0])
    ]
    entity_items(seed[0]["annotations"][0])[0]["value"]["start"] += 0.0  # 0.0 passes a JSON Schema "integer"
    seed[1]["data"]["sentence_index"] = 2**31  # overflows the dataset's int32
    seed[2]["annotations"][0]["lead_time"] = 1e308  # inf in float32
    seed[3]["annotations"][0]["annotator"] = "kim.jong@example.com"
    seed[4]["annotations"] = None
    seed[5]["annotations"][0]["result"].append(None)
    path = tmp_path / "hostile.jsonl"
    write_snapshot(path, tasks)
    return path, seed


def test_hostile_snapshot_through_validate_stats_build_and_release(project, tmp_path):
    from builder.dataset.release import build_release_folder
    from builder.errors import BuilderError

    snapshot, seed = hostile_snapshot(tmp_path)
    report = tmp_path / "report.json"
    validated = run_cli(
        "validate", "--snapshot", snapshot, "-o", tmp_path / "records.jsonl", "--report", report, cwd=ROOT
    )
    assert validated.returncode == 1 and "Traceback" not in validated.stderr, validated.stderr
    for reason in ("not an integer", "schema", "bad lead time", "not a pseudonym"):
        assert reason in validated.stderr, reason
    assert "65 tasks in = 63 records + 2 quarantined" in validated.stderr
    assert "@" not in validated.stderr + report.read_text()
    problems = {p["reason"]: p for p in json.loads(report.read_text())["problems"]}
    assert problems["bad lead time"]["error"] is False and "1e+308" in problems["bad lead time"]["detail"]
    assert problems["not a pseudonym"]["annotation_id"] == seed[3]["annotations"][0]["id"]
    for command in (["stats"], ["build", "-o", tmp_path / "dist"]):
        result = run_cli(*command, "--snapshot", snapshot, cwd=ROOT)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert "@" not in result.stdout + result.stderr
    with pytest.raises(BuilderError, match="validation found"):
        build_release_folder(project, "9.0.0", tmp_path / "release", snapshot=snapshot)
    assert not (tmp_path / "release").exists()


def test_bad_lead_time_is_nulled_and_the_labels_are_kept(project, tmp_path):
    import datasets

    from builder.dataset.release import build_release_folder

    tasks = list(read_jsonl(SNAPSHOT))
    task = next(t for t in tasks if len(t["annotations"]) == 2)
    task["annotations"][0]["lead_time"] = 1e308
    task["annotations"][1]["lead_time"] = -3
    snapshot = tmp_path / "snapshot.jsonl"
    write_snapshot(snapshot, tasks)
    result = validate_snapshot(project, snapshot, tmp_path / "records.jsonl")
    assert [p.reason for p in result.report.problems] == ["bad lead time"] * 2 and not result.report.errors()
    record = next(r for r in read_jsonl(tmp_path / "records.jsonl") if r["id"] == task["data"]["sentence_id"])
    assert record == task_to_record(
        {**task, "annotations": [{**a, "lead_time": None} for a in task["annotations"]]}, project
    )
    build_release_folder(project, "9.0.0", tmp_path / "release", snapshot=snapshot)  # warnings do not stop a release
    rows = [row for split in datasets.load_dataset(str(tmp_path / "release")).values() for row in split]
    row = next(r for r in rows if r["id"] == task["data"]["sentence_id"])
    assert [a["lead_time"] for a in row["annotations"]] == [None, None]
    assert all(a["lead_time"] is None or 0 <= a["lead_time"] < 1e6 for r in rows for a in r["annotations"])


def test_a_sentence_repeated_60_times_keeps_every_id(project, tmp_path):
    from builder.labelstudio.push import task_for
    from builder.sentences.segmenter import split_article

    sentences = split_article(
        {"id": "repeats", "title": "Repeats", "text": "Repeats\n" + " ".join(["The talks went on."] * 60)}
    )
    repeated = [s for s in sentences if s["text"] == "The talks went on."]
    assert [s["occurrence"] for s in repeated] == list(range(60)) and len({s["id"] for s in sentences}) == 61
    stance = {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["neutral"]}}
    annotation = {
        "id": 1,
        "annotator": "annotator-0123456789ab",
        "result": [stance],
        "was_cancelled": False,
        "ground_truth": False,
        "lead_time": 2.0,
    }
    tasks = [
        {**task_for(s, project, None), "task_id": n, "annotations": [{**annotation, "id": n}], "predictions": []}
        for n, s in enumerate(sentences)
    ]
    assert all(t["data"]["occurrence"] == s["occurrence"] for t, s in zip(tasks, sentences))

    def check(tasks):
        snapshot = tmp_path / "snapshot.jsonl"
        write_snapshot(snapshot, tasks)
        return validate_snapshot(project, snapshot)

    result = check(tasks)
    assert result.records == 61 and not result.report.problems
    legacy = [
        {**t, "data": {k: v for k, v in t["data"].items() if k != "occurrence"}} for t in tasks
    ]  # pushed before `occurrence`
    result = check(legacy)
    assert result.records == 61 and not result.report.problems
    unknown = [
        {**t, "data": {**t["data"], "occurrence": None}} for t in tasks
    ]  # read_sentences on an older sentences file
    assert check(unknown).records == 61
    tampered = copy.deepcopy(tasks)
    tampered[-1]["data"]["occurrence"] = 3
    tampered[-2]["data"]["sentence_index"] = 5  # legacy search stops at the index: an occurrence is never larger
    del tampered[-2]["data"]["occurrence"]
    result = check(tampered)
    assert [p.reason for p in result.report.problems] == ["changed sentence text"] * 2 and result.records == 59


def test_find_occurrence_mirrors_sentence_id_and_respects_its_limit():
    from builder.sentences.segmenter import find_occurrence

    for text in ("Kim met Putin.", "🇰🇵 " * 1000):
        for n in (0, 1, 2, 59, 999):
            sid = sentence_id("a", text, n)
            assert find_occurrence("a", text, sid, 1000) == n
            assert find_occurrence("a", text, sid, n - 1) is None if n else True
        assert find_occurrence("a", text, "0" * 20, 1000) is None


def test_record_schema_bounds_int32_fields_lead_time_and_pseudonyms(project, tmp_path):
    import jsonschema

    validate_snapshot(project, SNAPSHOT, tmp_path / "records.jsonl")
    record = next(r for r in read_jsonl(tmp_path / "records.jsonl") if r["entities"] and r["num_annotators"] == 2)
    validator = jsonschema.Draft202012Validator(record_schema(project))
    assert validator.is_valid(record)
    entity = record["entities"][0]
    bad = [
        {"sentence_index": 2**31},
        {"num_annotators": 2**31},
        {"entities": [{**entity, "end": 2**31}]},
        {"annotations": [{**record["annotations"][0], "lead_time": 1e308}]},
        {"annotations": [{**record["annotations"][0], "lead_time": -1}]},
        {"annotations": [{**record["annotations"][0], "annotator": "kim@example.com"}]},
        {"annotations": [{**record["annotations"][0], "annotator": "annotator-x"}]},
    ]
    for change in bad:
        assert not validator.is_valid({**record, **change}), change
