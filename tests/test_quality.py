"""`builder quality`: every column of the per-annotator report against answers worked out by hand."""

from __future__ import annotations

import json
import math

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from builder.cli import cli
from builder.project import load_project

from .conftest import ROOT

TEXT = "Ri Chang Dae met Sergei Shoigu in Moscow yesterday."  # 51 characters
A, B, C, D = "annotator-aaaaaaaa", "annotator-bbbbbbbb", "annotator-cccccccc", "annotator-dddddddd"


def answer(annotator, stance=None, spans=(), cancelled=False, ground_truth=False, lead=10.0, result=None):
    items = [] if stance is None else [{"from_name": "stance", "to_name": "sentence", "value": {"choices": [stance]}}]
    for start, end, label in spans:
        value = {"start": start, "end": end, "text": TEXT[start:end], "labels": [label]}
        items.append({"from_name": "entities", "to_name": "sentence", "type": "labels", "value": value})
    return {
        "annotator": annotator,
        "result": items if result is None else result,
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "lead_time": lead,
    }


def task(sentence_id, annotations, predicted=()):
    spans = [
        {"from_name": "entities", "value": {"start": s, "end": e, "text": TEXT[s:e], "labels": [label]}}
        for s, e, label in predicted
    ]
    return {
        "task_id": int(sentence_id[1:]) + (100 if sentence_id[0] == "g" else 0),
        "data": {"sentence_id": sentence_id, "text": TEXT},
        "annotations": [{"id": i + 1, **a} for i, a in enumerate(annotations)],
        "predictions": [{"model_version": "m", "score": None, "result": spans}] if spans else [],
    }


GOLD = [  # (id, stance, entities)
    ("g1", "favor", [(0, 5, "PER"), (10, 15, "LOC")]),
    ("g2", "against", [(0, 5, "ORG")]),
    ("g3", "neutral", []),
    ("g4", "favor", []),
]

TASKS = [
    # gold questions: A answers all four (3 stances right), B answers g1, cancels g2 (with a result) and skips g3
    task(
        "g1",
        [
            answer(A, "favor", [(0, 5, "PER"), (10, 14, "LOC")], lead=1),
            answer(B, "favor", [(0, 5, "PER"), (10, 15, "LOC")], lead=4),
        ],
    ),
    task(
        "g2",
        [answer(A, "against", [(0, 5, "PER")], lead=2), answer(B, "favor", cancelled=True, lead=1000)],
    ),
    task("g3", [answer(A, "neutral", lead=3), answer(B, cancelled=True, lead=1000)]),
    task("g4", [answer(A, "against", [(20, 25, "MISC")], lead=4)]),
    # the other tasks: stance pairs for kappa, pre-annotations for anchoring; D only skips
    task(
        "t1",
        [
            answer(A, "favor", [(0, 5, "PER"), (10, 15, "LOC")], lead=5),
            answer(B, "favor", lead=2),
            answer(C, "against", [(0, 5, "PER"), (10, 15, "ORG")], lead=3),
            answer(D, cancelled=True),
        ],
        predicted=[(0, 5, "PER"), (10, 15, "ORG")],
    ),
    task(
        "t2",
        [
            answer(A, "against", [(0, 5, "LOC")], lead=6),
            answer(B, "against", [(0, 5, "LOC"), (0, 5, "LOC")], lead=8),  # the same span twice counts once
            answer(C, "against", lead=None),
            answer(D, cancelled=True),
        ],
        predicted=[(0, 5, "LOC")],
    ),
    task("t3", [answer(A, "neutral", lead=7), answer(B, "favor", lead=6), answer(C, "neutral", lead=5)]),
    task("t4", [answer(A, "favor", lead=8), answer(B, "favor", lead=100)]),
    task("t5", [answer(A, "against", lead=9), answer(C, "favor", lead=7)]),
    task("t6", [answer(A, "neutral", lead=10)]),
]


def write_jsonl(path, rows):
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def make(tmp_path, tasks=TASKS, gold=GOLD, quality="min_gold_accuracy = 0.8"):
    """A project folder with the repository's scheme, `tasks` as its snapshot and `gold` as its gold file."""
    text = (ROOT / "builder.toml").read_text(encoding="utf-8")
    text = text.replace('guidelines = "guidelines.md"', f'guidelines = "{ROOT / "guidelines.md"}"')
    if gold is not None:
        lines = [
            {
                "id": sid,
                "article_id": "gold",
                "sentence_index": i,
                "text": TEXT,
                "start": 0,
                "end": len(TEXT),
                "stance": stance,
                "entities": [{"start": s, "end": e, "label": label} for s, e, label in entities],
            }
            for i, (sid, stance, entities) in enumerate(gold)
        ]
        write_jsonl(tmp_path / "gold.jsonl", lines)
        quality = f'gold = "gold.jsonl"\n{quality}'
    (tmp_path / "builder.toml").write_text(f"{text}\n[quality]\n{quality}\n", encoding="utf-8")
    (tmp_path / "annotations").mkdir()
    write_jsonl(tmp_path / "annotations" / "snapshot.jsonl", tasks)
    return load_project(tmp_path / "builder.toml")


def rows(report: pd.DataFrame) -> dict:
    return {row["annotator"]: row for row in report.to_dict("records")}


def close(value, expected):
    if expected is None:
        return isinstance(value, float) and math.isnan(value)
    return value == pytest.approx(expected, abs=1e-9)


def test_every_column_against_hand_computed_answers(tmp_path):
    from builder.records.quality import REPORT_COLUMNS, annotator_report

    project = make(tmp_path)
    report = annotator_report(project.snapshot_path, project)
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert list(report["annotator"]) == [A, B, C, D]  # sorted pseudonyms
    expected = {
        #   annotated, skipped, cancelled, median lead, gold answers, accuracy, exact F1, overlap F1,
        #   kappa, agreement with the aggregate, pre-annotated, anchoring, flagged
        A: (10, 0, 0, 5.5, 4, 3 / 4, 2 / 7, 4 / 7, (4 * 5 / 9 + 4 * 0.2) / 8, 4 / 5, 3, 2 / 3, True),
        B: (5, 1, 1, 6.0, 1, 1.0, 1.0, 1.0, (4 * 5 / 9 + 3 * 1 / 7) / 7, 3 / 4, 3, 1 / 3, False),
        C: (4, 0, 0, 5.0, 0, None, None, None, (4 * 0.2 + 3 * 1 / 7) / 7, 2 / 4, 3, 2 / 3, False),
        D: (0, 2, 0, None, 0, None, None, None, None, None, 0, None, False),
    }
    names = [
        "annotated",
        "skipped",
        "cancelled",
        "median_lead_time",
        "gold_answers",
        "gold_accuracy",
        "gold_span_f1_exact",
        "gold_span_f1_overlap",
        "kappa",
        "agreement_with_aggregate",
        "pre_annotated",
        "anchoring",
        "flagged",
    ]
    got = rows(report)
    for annotator, values in expected.items():
        for name, value in zip(names, values):
            actual = got[annotator][name]
            if isinstance(value, (bool, int)) and not isinstance(value, float) and name != "median_lead_time":
                assert actual == value and type(actual) in (bool, int), (annotator, name, actual, value)
            else:
                assert close(actual, value), (annotator, name, actual, value)
    low, high = got[A]["gold_accuracy_low"], got[A]["gold_accuracy_high"]
    assert (round(low, 4), round(high, 4)) == (0.3006, 0.9544)  # Wilson, 3 of 4
    assert round(got[B]["gold_accuracy_low"], 4) == 0.2065 and got[B]["gold_accuracy_high"] == pytest.approx(
        1.0
    )  # 1 of 1
    assert math.isnan(got[C]["gold_accuracy_low"]) and math.isnan(got[D]["gold_accuracy_high"])


def test_wilson_interval_against_known_values():
    from statsmodels.stats.proportion import proportion_confint

    from builder.records.quality import wilson_interval

    low, high = wilson_interval([3, 0, 10, 81, 0], [4, 10, 10, 263, 0])
    assert (round(low[0], 4), round(high[0], 4)) == (0.3006, 0.9544)
    assert low[1] == 0.0 and round(high[1], 4) == 0.2775  # 0 of 10
    assert round(low[2], 4) == 0.7225 and high[2] == pytest.approx(1.0)  # 10 of 10
    assert (round(low[3], 4), round(high[3], 4)) == (0.2553, 0.3662)  # 81 of 263 (Wikipedia's example)
    assert math.isnan(low[4]) and math.isnan(high[4])  # no trials
    for k, n in ((3, 4), (81, 263), (1, 7)):
        reference = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson_interval(k, n) == pytest.approx(reference, abs=1e-9)


def test_kappa_of_a_pair_that_always_gives_one_label_is_left_out(tmp_path):
    """Chance agreement 1 (both always 'favor'): kappa is undefined, so that pair does not weigh in."""
    from builder.records.quality import annotator_report

    tasks = [task(f"t{i}", [answer(A, "favor"), answer(B, "favor")]) for i in range(3)]
    tasks += [
        task("t9", [answer(A, "favor"), answer(C, "against")]),
        task("t8", [answer(A, "against"), answer(C, "against")]),
    ]
    project = make(tmp_path, tasks, gold=None)
    got = rows(annotator_report(project.snapshot_path, project))
    assert math.isnan(got[B]["kappa"])  # its only pair is undefined
    # A-C: 2 shared tasks, agree 1; A: favor 1 against 1, C: against 2 -> chance 1/2, kappa 0
    assert got[A]["kappa"] == pytest.approx(0.0) and got[C]["kappa"] == pytest.approx(0.0)


def test_aggregated_stances_majority_ground_truth_tie_and_gold():
    from builder.records.quality import aggregated_stances, annotation_frame

    project = load_project(ROOT / "builder.toml")  # favor, against, neutral
    tasks = [
        task("t1", [answer(A, "favor"), answer(B, "favor"), answer(C, "against")]),
        task("t2", [answer(A, "favor"), answer(B, "favor"), answer(C, "against", ground_truth=True)]),
        task("t3", [answer(A, "favor"), answer(B, "against")]),
        task("t4", [answer(A, "favor", cancelled=True), answer(B, "neutral")]),
        task("t5", [answer(A)]),
        task("t6", [answer(A, "favor"), answer(B, "favor")]),
    ]
    frame = annotation_frame(tasks, project, gold={})
    gold = [-1, -1, -1, -1, -1, 1]  # t6 is a gold question whose answer is 'against'
    import numpy as np

    assert aggregated_stances(frame, project, np.array(gold, dtype=np.int8)).tolist() == [0, 1, -1, 2, -1, 1]


def test_annotation_frame_has_one_row_per_annotation(tmp_path):
    from builder.gold.answers import read_gold
    from builder.records.quality import annotation_frame

    project = make(tmp_path)
    frame = annotation_frame(TASKS, project, gold=read_gold(tmp_path / "gold.jsonl", project))
    assert len(frame) == sum(len(t["annotations"]) for t in TASKS)
    assert list(frame.columns) == [
        "task",
        "task_id",
        "annotator",
        "stance",
        "was_cancelled",
        "empty",
        "ground_truth",
        "lead_time",
        "gold",
        "pre_annotated",
        "kept_pre_annotated",
    ]
    first = frame.iloc[0]
    assert (first["task"], first["task_id"], first["annotator"], first["stance"], first["gold"]) == (
        0,
        101,
        A,
        "favor",
        True,
    )
    assert list(frame["stance"].cat.categories) == project.stance_values
    assert frame["stance"].isna().sum() == 3  # B skipped g3, D skipped t1 and t2
    assert frame["lead_time"].isna().sum() == 1
    t1 = frame[frame["task_id"] == 1]  # pre-annotated PER 0-5 and ORG 10-15; D skipped it (saw nothing submitted)
    assert t1[["pre_annotated", "kept_pre_annotated"]].values.tolist() == [[2, 1], [2, 0], [2, 2], [0, 0]]


def test_quality_summary_for_the_card(tmp_path):
    from builder.records.quality import annotator_report, quality_summary

    project = make(tmp_path)
    summary = quality_summary(annotator_report(project.snapshot_path, project))
    assert summary == {"annotators": 4, "gold_accuracy": [0.75, 1.0], "anchoring_rate": round(5 / 9, 3), "flagged": 1}
    assert not any(name in json.dumps(summary) for name in (A, B, C, D))  # no pseudonyms


def test_empty_snapshot(tmp_path):
    from builder.records.quality import REPORT_COLUMNS, annotator_report, quality_summary, render

    project = make(tmp_path, tasks=[])
    report = annotator_report(project.snapshot_path, project)
    assert list(report.columns) == list(REPORT_COLUMNS) and len(report) == 0
    assert quality_summary(report) == {"annotators": 0, "gold_accuracy": [], "anchoring_rate": None, "flagged": 0}
    assert render(report, "json") == "[]\n"
    assert render(report, "csv").splitlines() == [",".join(REPORT_COLUMNS)]
    assert render(report, "table").startswith("  annotator")


def test_snapshot_without_gold_questions(tmp_path):
    from builder.records.quality import annotator_report, quality_summary

    project = make(tmp_path, gold=None)
    assert project.gold_path is None
    report = annotator_report(project.snapshot_path, project)
    assert (report["gold_answers"] == 0).all() and report["gold_accuracy"].isna().all()
    assert report["gold_span_f1_exact"].isna().all() and not report["flagged"].any()
    assert report["kappa"].notna().sum() == 3  # computed on every task now: g1 adds A-B
    assert quality_summary(report)["gold_accuracy"] == []


def test_unreadable_items_are_counted_not_fatal(tmp_path):
    from builder.records.quality import read_frames, report_from_frames

    bad = [
        task("t1", [answer(A, "favor"), answer(B, "maybe"), {"result": []}, answer("", "favor")]),
        task(  # spans are read where they are compared: on gold questions and pre-annotated tasks
            "t2",
            [answer(A, "favor", [(5, 2, "PER"), (0, 3, "NOPE")]), answer(B, "favor", lead="slow")],
            predicted=[(0, 5, "PER")],
        ),
        ["not", "a", "task"],
    ]
    project = make(tmp_path, tasks=bad, gold=None)
    with open(project.snapshot_path, "ab") as handle:
        handle.write(b'{"task_id": 3, "annotations": [\n\n')
    frames = read_frames(project.snapshot_path, project)
    assert {reason: count for reason, (count, _) in frames.ignored.items()} == {
        "stance not in the scheme": 1,
        "annotation without an annotator pseudonym": 2,
        "unreadable entity span": 2,
        "lead time that is not a number of seconds": 1,
        "not a task (an object with a list of annotations)": 2,
    }
    assert frames.ignored["not a task (an object with a list of annotations)"][1].endswith("snapshot.jsonl:3")
    got = rows(report_from_frames(frames, project))
    assert (got[A]["annotated"], got[B]["annotated"]) == (2, 2)
    assert got[A]["agreement_with_aggregate"] == 1.0 and got[B]["agreement_with_aggregate"] == 1.0


def test_a_name_that_is_not_a_pseudonym_is_never_printed(tmp_path):
    """An e-mail (or a spreadsheet formula, or a name with a newline) in a hand-edited snapshot is left out,
    counted, never shown: `validate` refuses them too."""
    hostile = ["alice@example.org", "=cmd|calc", "line\nbreak"]
    tasks = [task(f"t{i}", [answer(A, "favor"), answer(name, "favor")]) for i, name in enumerate(hostile)]
    root = make(tmp_path, tasks=tasks, gold=None).root
    for fmt in ("table", "csv", "json"):
        result = invoke(root, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert not any(name in result.output for name in ["alice", "cmd|calc", "break"]), result.output
        assert "3 annotation without an annotator pseudonym" in result.stderr


# --- the command ----------------------------------------------------------------------------------------


def invoke(root, *args):
    return CliRunner().invoke(cli, ["--config", str(root / "builder.toml"), "quality", *map(str, args)])


def test_cli_table_marks_flagged_annotators_and_says_how_many(tmp_path):
    make(tmp_path)
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output  # a report: flagged annotators do not fail it
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["annotator", "annotated", "skipped", "cancelled"]
    assert [line[:2] for line in lines[1:]] == ["* ", "  ", "  ", "  "]
    assert lines[1].split()[1:8] == ["annotator-aaaaaaaa", "10", "0", "0", "5.5", "4", "0.750"]
    assert "0.301-0.954" in lines[1]
    assert result.stderr.splitlines()[-1] == (
        "quality: 10 tasks, 4 annotators; 1 below min_gold_accuracy 0.8 (marked *)"
    )


def test_cli_json_is_one_object_per_annotator_with_null_for_nan(tmp_path):
    make(tmp_path)
    result = invoke(tmp_path, "--format", "json")
    assert result.exit_code == 0
    objects = json.loads(result.stdout)
    assert [o["annotator"] for o in objects] == [A, B, C, D]
    assert [o["gold_accuracy"] for o in objects] == [0.75, 1.0, None, None]
    assert objects[3]["median_lead_time"] is None and objects[3]["kappa"] is None
    assert [o["flagged"] for o in objects] == [True, False, False, False]
    assert "NaN" not in result.stdout


def test_cli_csv_to_a_file_atomically(tmp_path):
    make(tmp_path)
    out = tmp_path / "build" / "quality.csv"
    result = invoke(tmp_path, "--format", "csv", "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    assert f"wrote {out}" in result.stderr
    frame = pd.read_csv(out)
    assert list(frame["annotator"]) == [A, B, C, D]
    assert frame["gold_accuracy"].tolist()[:2] == [0.75, 1.0] and frame["gold_accuracy"].isna().tolist()[2:] == [
        True,
        True,
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["quality.csv"]  # no temp file left
    for fmt in ("json", "table", "csv"):  # its own earlier output, in any format, may be replaced
        assert invoke(tmp_path, "--format", fmt, "-o", out).exit_code == 0


def test_cli_refuses_a_roster_that_merely_starts_like_a_report(tmp_path):
    make(tmp_path)
    roster = tmp_path / "roster.csv"
    roster.write_text("annotator,email\nannotator-1,ann@example.org\n", encoding="utf-8")
    result = invoke(tmp_path, "--format", "csv", "-o", roster)
    assert result.exit_code == 1 and "not a report of `builder quality`" in result.stderr
    assert roster.read_text(encoding="utf-8").startswith("annotator,email")


def test_cli_refuses_to_overwrite_what_it_did_not_write(tmp_path):
    make(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n", encoding="utf-8")
    result = invoke(tmp_path, "-o", notes)
    assert result.exit_code == 1 and "refusing to overwrite" in result.stderr
    assert notes.read_text(encoding="utf-8") == "mine\n"
    result = invoke(tmp_path, "-o", tmp_path)
    assert result.exit_code == 1 and "is a folder" in result.stderr


def test_cli_prints_what_it_ignored(tmp_path):
    make(tmp_path, tasks=[*TASKS, task("t9", [answer("", "favor")])])
    result = invoke(tmp_path, "--format", "csv")
    assert result.exit_code == 0
    assert "ignored: 1 annotation without an annotator pseudonym (first: " in result.stderr


def naive_kappa(tasks, stances) -> dict:
    """Cohen's kappa per pair from plain dicts, then each annotator's mean weighted by shared tasks."""
    from collections import Counter, defaultdict

    by_pair = defaultdict(list)
    for t in tasks:
        answers = {a["annotator"]: a["result"][0]["value"]["choices"][0] for a in t["annotations"]}
        for x in answers:
            for y in answers:
                if x != y:
                    by_pair[x, y].append((answers[x], answers[y]))
    total, weight = Counter(), Counter()
    for (x, _), pairs in by_pair.items():
        n = len(pairs)
        observed = sum(a == b for a, b in pairs) / n
        left, right = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
        chance = sum(left[k] * right[k] for k in stances) / n / n
        if chance < 1:
            total[x] += (observed - chance) / (1 - chance) * n
            weight[x] += n
    return {x: total[x] / weight[x] for x in weight}


def test_kappa_and_agreement_match_a_plain_python_computation(tmp_path):
    """Random tasks with 1 to 6 answers each (pairs up to 5 places apart), against dict-and-loop code."""
    import random
    from collections import Counter

    from builder.records.quality import annotator_report

    rng = random.Random(13)
    stances = ["favor", "against", "neutral"]
    people = [f"annotator-{i:08x}" for i in range(7)]
    tasks = []
    for i in range(400):
        truth = rng.choice(stances)
        chosen = rng.sample(people, rng.randint(1, 6))
        votes = [(p, truth if rng.random() < 0.4 + 0.08 * people.index(p) else rng.choice(stances)) for p in chosen]
        tasks.append(task(f"t{i}", [answer(p, s) for p, s in votes]))
    project = make(tmp_path, tasks, gold=None)
    got = rows(annotator_report(project.snapshot_path, project))
    expected = naive_kappa(tasks, stances)
    assert {p: got[p]["kappa"] for p in people} == pytest.approx(expected, abs=1e-12)
    hits, seen = Counter(), Counter()
    for t in tasks:
        answers = [(a["annotator"], a["result"][0]["value"]["choices"][0]) for a in t["annotations"]]
        if len(answers) < 2:
            continue
        ranked = Counter(s for _, s in answers).most_common()
        majority = ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else None
        for p, s in answers:
            seen[p] += 1
            hits[p] += s == majority
    assert {p: got[p]["agreement_with_aggregate"] for p in people} == pytest.approx(
        {p: hits[p] / seen[p] for p in people}, abs=1e-12
    )


def test_a_span_with_surrounding_whitespace_is_scored_as_validation_trims_it(tmp_path):
    """Validation trims an annotator's " Moscow " to "Moscow" (a warning), so quality scores it so too: an exact
    hit on the gold span, and on the pre-annotation it kept; a span of only whitespace is no span."""
    from builder.records.quality import annotator_report

    start = TEXT.index("Moscow")
    spans = [(start - 1, start + 7, "LOC"), (16, 17, "PER")]  # " Moscow " and " "
    tasks = [
        task("g1", [answer(A, "favor", spans)], predicted=[(start, start + 6, "LOC")]),
        task("t1", [answer(A, "favor", [(start - 1, start + 6, "LOC")])], predicted=[(start, start + 6, "LOC")]),
    ]
    project = make(tmp_path, tasks, gold=[("g1", "favor", [(start, start + 6, "LOC")])])
    row = rows(annotator_report(project.snapshot_path, project))[A]
    assert close(row["gold_span_f1_exact"], 1.0)
    assert close(row["anchoring"], 1.0)  # both pre-annotated spans kept, once trimmed
