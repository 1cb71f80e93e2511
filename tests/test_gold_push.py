"""Gold questions mixed into a push: the spreading alone (fast), the checks on the gold file, and on the real
Label Studio that a gold task looks like any other and that re-pushing adds none."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import InputError
from builder.gold.mixing import check_pushed, gold_due, gold_questions, gold_ratio, mix_gold
from builder.sentences.segmenter import sentence_id
from tests.conftest import cli_env, make_project, run_cli


def sentences(n: int, per_article: int = 7, prefix: str = "a") -> list[dict]:
    """`n` sentences in the shape `builder split` writes, `per_article` to an article."""
    out = []
    for i in range(n):
        article, index = f"{prefix}-{i // per_article}", i % per_article
        text = f"Sentence {i} says that Moscow and Pyongyang met again."
        out.append(
            {
                "id": sentence_id(article, text),
                "article_id": article,
                "article_title": f"Article {i // per_article}",
                "sentence_index": index,
                "occurrence": 0,
                "text": text,
                "start": 100 * index,
                "end": 100 * index + len(text),
                "prev_text": "Before." if index else "",
                "next_text": "After." if index + 1 < per_article else "",
            }
        )
    return out


def mixed(stream, gold, rate, before=0, count=None):
    return list(mix_gold(iter(stream), iter(gold), rate, before, count))


def test_the_ratio_is_exact_for_the_decimal_written():
    assert gold_ratio(0.05) == Fraction(1, 19) and gold_ratio(0.5) == 1 and gold_ratio(0) == 0
    assert [gold_due(n, gold_ratio(0.05)) for n in (18, 19, 37, 38, 1000)] == [0, 1, 1, 2, 52]
    assert gold_due(70, gold_ratio(0.3)) == 30  # 30 of 100 tasks


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.1, 0.25, 0.3, 0.5])
@pytest.mark.parametrize("per_article", [1, 5, 19, 60])
def test_gold_questions_are_spread_at_the_rate_and_wait_for_an_article_boundary(rate, per_article):
    stream, gold = sentences(1000, per_article), sentences(1200, 3, prefix="g")
    out = mixed(stream, gold, rate)
    ordinary = [s for s, is_gold in out if not is_gold]
    assert ordinary == stream  # every sentence, in its order
    placed = [s for s, is_gold in out if is_gold]
    assert placed == gold[: len(placed)]  # the gold file's order, each once
    assert len(placed) == gold_due(1000, gold_ratio(rate))
    assert abs(len(placed) / len(out) - rate) <= 1 / len(out)
    ratio = gold_ratio(rate)
    window = max(1, int(1 / ratio))
    due_at = [n for n in range(1, 1001) if gold_due(n, ratio) > gold_due(n - 1, ratio)]  # the k-th falls due
    seen, k = 0, 0
    for position, (_, is_gold) in enumerate(out):
        if not is_gold:
            seen += 1
            continue
        # placed once its share of sentences is there, and no later than a window of sentences after that
        assert due_at[k] <= seen <= due_at[k] + window
        k += 1
        if per_article <= window:  # an article boundary always comes within the window: it waits for one
            assert seen == len(stream) or seen % per_article == 0, position


def test_a_push_in_parts_places_the_gold_questions_of_the_whole():
    """Slots count the project's sentences: 10 pushes of 10 at 0.05 add the 5 gold questions one push of 100 adds."""
    stream, gold = sentences(100, 10), sentences(20, 3, prefix="g")
    whole = mixed(stream, gold, 0.05)
    parts, used = [], 0
    for i in range(0, 100, 10):
        part = mixed(stream[i : i + 10], gold[used:], 0.05, before=i)
        used += sum(1 for _, g in part if g)
        parts += part
    assert parts == whole
    assert sum(1 for _, g in whole if g) == 5
    assert mixed([], gold, 0.05, before=100) == []  # a re-push: nothing new, no gold question


def test_the_rate_is_capped_by_the_gold_questions_there_are():
    from builder.gold.mixing import MixCount

    count = MixCount()
    out = mixed(sentences(400, 10), sentences(3, 3, prefix="g"), 0.05, count=count)
    assert (count.gold, count.short) == (3, 18)
    assert sum(1 for _, g in out if g) == 3
    nothing = MixCount()
    assert [g for _, g in mixed(sentences(40), sentences(5, prefix="g"), 0.0, count=nothing)] == [False] * 40
    assert (nothing.gold, nothing.short) == (0, 0)


def write_gold(path: Path, questions: list[dict], stance: str = "neutral") -> Path:
    # the first word as the known entity (a span with surrounding whitespace would be refused)
    lines = [
        {**q, "stance": stance, "entities": [{"start": 0, "end": q["text"].index(" "), "label": "MISC"}]}
        for q in questions
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def gold_project(folder: Path, title: str, gold: list[dict], rate: float = 0.05):
    project = make_project(folder, title)
    return dataclasses.replace(project, gold_path=write_gold(folder / "gold.jsonl", gold), gold_rate=rate)


@pytest.mark.parametrize("field", ["id", "article_id"])
@pytest.mark.parametrize("telling", ["gold", "GOLD", "Gold"])
def test_a_telling_id_is_refused_with_its_line_and_field(tmp_path, field, telling):
    gold = sentences(3, prefix="g")
    gold[1][field] = f"x-{telling}-1"
    project = gold_project(tmp_path, "Telling", gold)
    with pytest.raises(InputError, match=rf"gold\.jsonl:2: field '{field}': .* says 'gold'"):
        gold_questions(project)


def test_a_gold_question_among_the_pushed_sentences_is_refused(tmp_path):
    stream = sentences(30)
    project = gold_project(tmp_path, "Collide", [*sentences(2, prefix="g"), stream[12]])
    gold = gold_questions(project)
    with pytest.raises(InputError, match=rf"gold\.jsonl:3: field 'id': sentence '{stream[12]['id']}' is also one of"):
        check_pushed(((None, s) for s in stream), gold)
    assert check_pushed(((None, s) for s in stream[:12]), gold) == 12


def test_a_gold_question_lacking_a_field_the_sentences_have_is_refused(tmp_path):
    gold = sentences(3, prefix="g")
    del gold[2]["prev_text"]
    gold[0]["id"] = "hand-made-1"
    del gold[0]["occurrence"]
    project = gold_project(tmp_path, "Fields", gold)
    questions = gold_questions(project)
    assert questions.sentences[gold[1]["id"]]["occurrence"] == 0
    with pytest.raises(InputError, match=r"gold\.jsonl:1: field 'occurrence' is missing"):
        check_pushed(((None, s) for s in sentences(5)), questions)
    # an occurrence found from the id (builder split's hash) is filled in
    gold[0]["id"] = sentence_id(gold[0]["article_id"], gold[0]["text"])
    project = gold_project(tmp_path, "Fields", gold)
    with pytest.raises(InputError, match=r"gold\.jsonl:3: field 'prev_text' is missing"):
        check_pushed(((None, s) for s in sentences(5)), gold_questions(project))


# --- on the real Label Studio ---


def listed_tasks(ls, project_id: int) -> list[dict]:
    from builder.labelstudio.client import task_pages

    return [t for page in task_pages(ls, project_id, {"fields": "all"}, "listing") for t in page]


def kinds(task: dict) -> tuple:
    """What an annotator could tell a task by: its data keys and the kind of each value, its meta, its predictions."""
    data = tuple(sorted((key, type(value).__name__) for key, value in task["data"].items()))
    predictions = tuple(sorted((tuple(sorted(p)), p.get("model_version")) for p in task.get("predictions") or []))
    return data, bool(task.get("meta")), len(task.get("predictions") or []), predictions


def test_gold_tasks_look_like_any_other_and_a_re_push_adds_none(ls, tmp_path):
    from builder.labelstudio.push import push_sentences
    from builder.preannotate import GazetteerPredictor

    stream, gold = sentences(200, 9), sentences(14, 4, prefix="h")
    project = gold_project(tmp_path, "Gold mixed in", gold)
    predictor = GazetteerPredictor({"Moscow": "LOC", "Pyongyang": "LOC"})
    first = push_sentences(ls, project, stream, predictor, batch_size=37)
    assert (first.created, first.gold, first.gold_short) == (200, 10, 0)  # floor(200 / 19)

    tasks = listed_tasks(ls, first.project_id)
    gold_ids = {g["id"] for g in gold}
    gold_tasks = [t for t in tasks if t["data"]["sentence_id"] in gold_ids]
    others = [t for t in tasks if t["data"]["sentence_id"] not in gold_ids]
    assert (len(gold_tasks), len(others)) == (10, 200)
    assert {kinds(t) for t in gold_tasks} == {kinds(t) for t in others}
    assert all(t["predictions"] for t in tasks)
    assert all("gold" not in json.dumps(t).lower() for t in tasks)  # no telling key, value, meta or id
    assert all(t["data"].keys() == others[0]["data"].keys() for t in tasks)
    for task in gold_tasks:  # the known answer is never sent: no annotation, only the pre-annotation
        assert not task.get("annotations") and "stance" not in task["data"] and "entities" not in task["data"]
    # spread by task id: one gold question in each stretch of 21 tasks
    order = [t["data"]["sentence_id"] in gold_ids for t in sorted(tasks, key=lambda t: t["id"])]
    positions = [i for i, g in enumerate(order) if g]
    assert all(19 <= b - a <= 40 for a, b in zip(positions, positions[1:])), positions
    # the Data Manager's columns say nothing either
    response = ls.http().request("api/dm/columns", method="GET", params={"project": first.project_id})
    assert "gold" not in response.text.lower()

    again = push_sentences(ls, project, stream, predictor)
    assert (again.created, again.skipped, again.gold) == (0, 200, 0)
    more = push_sentences(ls, project, stream + sentences(60, 9, prefix="b"), predictor)
    assert (more.created, more.skipped, more.gold, more.gold_short) == (60, 200, 3, 0)  # floor(260 / 19) - 10
    final = listed_tasks(ls, first.project_id)
    assert len(final) == 273 and len({t["data"]["sentence_id"] for t in final}) == 273
    assert sum(t["data"]["sentence_id"] in gold_ids for t in final) == 13


def test_push_says_how_many_gold_questions_it_added(ls, tmp_path):
    folder = tmp_path / "cli"
    make_project(folder, "Gold on the command line")
    write_gold(folder / "gold.jsonl", sentences(2, prefix="c"))
    with (folder / "builder.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[quality]\ngold = "gold.jsonl"\ngold_rate = 0.1\n')
    path = folder / "sentences.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in sentences(40, 5)), encoding="utf-8")
    done = run_cli("push", path, "--predictor", "none", env=cli_env(ls), cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "push: created 40 tasks, skipped 0 already present" in done.stdout
    assert "push: added 2 gold questions (gold rate 0.1)" in done.stdout
    assert "2 gold questions were due but every one in" in done.stderr  # floor(40 / 9) = 4 due, 2 there
    again = run_cli("push", path, "--predictor", "none", env=cli_env(ls), cwd=folder)
    assert "push: added 0 gold questions" in again.stdout and "were due" not in again.stderr
    # a gold question that is one of the sentences: one line naming the gold file's line and field, nothing sent
    write_gold(folder / "gold.jsonl", [*sentences(2, prefix="c"), sentences(40, 5)[7]])
    refused = run_cli("push", path, "--predictor", "none", env=cli_env(ls), cwd=folder)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {folder / 'gold.jsonl'}:3: field 'id': ")
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_sentence_id_given_twice_is_refused_naming_both_lines(tmp_path):
    """A sentences file concatenated with itself (or a hand-edited id) would lose the later sentence in Label
    Studio under "already present": the push refuses first, naming the line and the one it repeats."""
    from builder.jsonio import write_jsonl
    from builder.sentences.splitting import iter_numbered_sentences

    stream = sentences(40)
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, [*stream[:30], stream[7], *stream[30:], stream[3]])
    with pytest.raises(
        InputError, match=rf"sentences\.jsonl:31: field 'id': sentence '{stream[7]['id']}' is also line 8"
    ):
        check_pushed(iter_numbered_sentences(path), None, lambda: iter_numbered_sentences(path))
    listed = [*stream[:5], stream[2]]
    with pytest.raises(InputError, match=r"^sentence 6 of those given: field 'id': .* is also sentence 3: "):
        check_pushed(((None, s) for s in listed), None, lambda: ((None, s) for s in listed))
    assert check_pushed(((None, s) for s in stream), None, lambda: ((None, s) for s in stream)) == 40


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=60))
def test_the_repeat_named_is_the_first_one_a_reader_meets(ids):
    from builder.gold.mixing import _first_repeat

    digests = bytearray(b"".join(hashlib.blake2b(str(i).encode(), digest_size=16).digest() for i in ids))
    seen: dict[int, int] = {}
    expected = None
    for position, i in enumerate(ids):
        if i in seen:
            expected = (seen[i], position)
            break
        seen[i] = position
    assert _first_repeat(digests) == expected


@pytest.mark.parametrize(
    "widen,expected",
    [
        ((-1, 0), r"span (\d+)-(\d+) ' Moscow' has surrounding whitespace, .*: give \d+-\d+$"),
        ((0, 1), r"span (\d+)-(\d+) 'Moscow ' has surrounding whitespace"),
        (None, r"span \d+-\d+ LOC is given twice"),
    ],
)
def test_a_gold_span_annotators_could_never_match_is_refused(tmp_path, widen, expected):
    """Annotators' spans are trimmed to their non-space core and deduplicated, so a gold span with surrounding
    whitespace, or one given twice, would count every annotator wrong: refused, naming line and span."""
    from builder.gold.answers import read_gold

    gold = sentences(2, prefix="g")
    text = gold[1]["text"]
    start, end = text.index("Moscow"), text.index("Moscow") + len("Moscow")
    lines = [{**q, "stance": "neutral", "entities": []} for q in gold]
    if widen is None:
        lines[1]["entities"] = [{"start": start, "end": end, "label": "LOC"}] * 2
    else:
        lines[1]["entities"] = [{"start": start + widen[0], "end": end + widen[1], "label": "LOC"}]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(InputError, match=r"gold\.jsonl:2: field 'entities\[\d\]': " + expected) as refused:
        read_gold(path, make_project(tmp_path, "Gold spans"))
    assert widen is None or str(refused.value).endswith(f"give {start}-{end}")  # the core to give instead


def test_gold_questions_in_every_blind_copy_look_like_any_other_task(tmp_path_factory, migrated_label_studio):
    """Issue 26 point 5, blind: each annotator's copy gets its own gold mix at the rate, and in no copy can its
    annotator tell a gold question from an ordinary task (same data keys, meta and pre-annotations; no telling
    word; no known answer sent)."""
    import uuid

    from builder.labelstudio import server
    from builder.labelstudio.blind_push import copy_project, is_blind, push_blind
    from builder.labelstudio.client import Connection
    from builder.labelstudio.isolation import read_organizations
    from builder.labelstudio.project_api import find_project
    from builder.labelstudio.users import annotator_connection
    from builder.preannotate import GazetteerPredictor

    from .conftest import free_port, seed_local_server

    root = tmp_path_factory.mktemp("blind-gold")
    seed_local_server(migrated_label_studio, root)
    state = server.start(root, free_port(), log=lambda message: None)
    try:
        admin = Connection(state.url, state.token, "local server", state.data_dir)
        for name in ("ann", "bob"):
            annotator_connection(admin, f"{name}-{uuid.uuid4().hex[:6]}@example.org", f"pw-{uuid.uuid4().hex}")
        stream, gold = sentences(100, 9), sentences(14, 4, prefix="h")
        project = dataclasses.replace(
            make_project(root, "Blind gold", blind="true"),
            gold_path=write_gold(root / "gold.jsonl", gold),
            gold_rate=0.05,
        )
        assert is_blind(project, admin) and project.annotators_per_sentence == 2
        predictor = GazetteerPredictor({"Moscow": "LOC", "Pyongyang": "LOC"})
        result = push_blind(admin, project, stream, predictor)
        assert result.created == 100
        gold_ids = {g["id"] for g in gold}
        organizations = read_organizations(root)
        assert len(organizations) == 2
        for organization in organizations.values():
            reached = organization.connection(admin.url)
            tasks = listed_tasks(reached, find_project(reached, copy_project(project)))
            gold_tasks = [t for t in tasks if t["data"]["sentence_id"] in gold_ids]
            others = [t for t in tasks if t["data"]["sentence_id"] not in gold_ids]
            assert (len(gold_tasks), len(others)) == (5, 100)  # floor(100 / 19): the copy's own mix
            assert {kinds(t) for t in gold_tasks} == {kinds(t) for t in others}
            assert all("gold" not in json.dumps(t).lower() for t in tasks)
            assert all(not t.get("annotations") and "stance" not in t["data"] for t in gold_tasks)
    finally:
        server.stop(root)
