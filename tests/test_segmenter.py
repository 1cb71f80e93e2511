"""builder's own sentence splitter (`rules`): hard cases of news text, its name, and its F1 on held-out articles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.sentences.segmenter import DEFAULT_ENGINE, sentence_spans, splitter_name


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        # titles before a name never end a sentence
        (
            "Mr. Smith met Dr. Jones in St. Louis. They talked.",
            ["Mr. Smith met Dr. Jones in St. Louis.", "They talked."],
        ),
        ("Gen. Lee and Sen. Warren spoke.", ["Gen. Lee and Sen. Warren spoke."]),
        ("It was said\u00a0Mr. Smith.\tThen he left.", ["It was said\u00a0Mr. Smith.", "Then he left."]),
        # initials stay inside the name
        (
            "It was founded by science fiction writer L. Ron Hubbard. He died in 1986.",
            ["It was founded by science fiction writer L. Ron Hubbard.", "He died in 1986."],
        ),
        ("George W. Bush spoke.", ["George W. Bush spoke."]),
        # a dotted acronym ends a sentence only before a usual sentence start
        (
            "He was traveling to the U.S. The President later called.",
            ["He was traveling to the U.S.", "The President later called."],
        ),
        ("K.C. Maurer, chief financial officer, agreed.", ["K.C. Maurer, chief financial officer, agreed."]),
        ("The U.S. Army left.", ["The U.S. Army left."]),
        ("They met at 10 a.m. Tuesday in Washington, D.C. on a visit.", None),
        # before a number: "No. 10", "Jan. 5"; else an ordinary word
        ("He lives at No. 10 Downing Street. It is old.", ["He lives at No. 10 Downing Street.", "It is old."]),
        ("On Jan. 5 the vote was held.", ["On Jan. 5 the vote was held."]),
        ("The answer was no. Then they left.", ["The answer was no.", "Then they left."]),
        # companies: the end of a sentence before a usual start, else part of the name
        ("He works at Apple Inc. The company grew.", ["He works at Apple Inc.", "The company grew."]),
        ("Acme Corp. Chairman Jane Doe resigned.", ["Acme Corp. Chairman Jane Doe resigned."]),
        # a domain name is no acronym
        (
            "Votes go to www.standfor.co.nz. Names would be public.",
            ["Votes go to www.standfor.co.nz.", "Names would be public."],
        ),
        # quotes and brackets close the sentence they end, typographic or not, even a wrong-way quote
        ('He said, "It is over." Then he left.', ['He said, "It is over."', "Then he left."]),
        ("\u201cIt is over.\u201d Then he left.", ["\u201cIt is over.\u201d", "Then he left."]),
        ("A misguided decision.\u201c However, it went on.", ["A misguided decision.\u201c", "However, it went on."]),
        ("(It was late.) The rest followed.", ["(It was late.)", "The rest followed."]),
        ('He asked: "Why?" Nobody knew.', ['He asked: "Why?"', "Nobody knew."]),
        ("It started. \u201cWe won,\u201d he said.", ["It started.", "\u201cWe won,\u201d he said."]),
        # no end before a lowercase word, inside a number, or in an ellipsis before a lowercase word
        ("Prices rose 3.5 percent, e.g. in food.", ["Prices rose 3.5 percent, e.g. in food."]),
        ("An infant's not getting enough iodine ... brain development suffers.", None),
        ("Wow! Really? Yes.", ["Wow!", "Really?", "Yes."]),
        ("Sales fell in 2008. 2009 was better.", ["Sales fell in 2008.", "2009 was better."]),
        ("1. The first point is this.\n2. The second.", ["1. The first point is this.", "2. The second."]),
        ("He finished 2. The next runner was slow.", ["He finished 2.", "The next runner was slow."]),
        # headlines, datelines and captions stand on their own line; a photo credit starts its own sentence, and
        # a dateline is cut from the sentence it runs into (lines+rules/3, issue 27)
        (
            "Crane collapses in city centre\nLONDON - A crane fell on Monday. Nobody was hurt.",
            ["Crane collapses in city centre", "LONDON -", "A crane fell on Monday.", "Nobody was hurt."],
        ),
        ("Belle Image: Nick Moreau.", ["Belle", "Image: Nick Moreau."]),
    ],
)
def test_hard_cases(text, expected):
    assert sentences(text) == (expected if expected is not None else [text])


def test_splitter_name_is_versioned():
    """Outputs record which splitter made them: the default changed, so its version did."""
    assert DEFAULT_ENGINE == "rules"
    assert splitter_name() == "lines+rules/3"


ENDING = re.compile(r"[.!?\u2026][\"'\u201d\u2019\u201c\u2018\u00bb)\]]*$")
WORDS = st.sampled_from(
    ["Mr.", "U.S.", "Inc.", "No.", "L.", "said.", "Why?", "“Quote.”", "(a)", "...", "3.5", "The", "he", "K.C.", "\n"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=40).map(" ".join))
def test_a_sentence_inside_a_line_ends_in_end_punctuation(text):
    """Within a line (no photo credit), a sentence ends only after `.!?…` and closing quotes or brackets."""
    spans = sentence_spans(text)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        between = text[end:start]
        if "\n" not in between and not re.match(r"\s*(Image|Photo|Video|Credit|Source): ", text[end:]):
            assert ENDING.search(text[:end]), (text[:end], text[start:])


def f1(docs: list[dict]) -> float:
    tp = fp = fn = 0
    for doc in docs:
        gold = {end for _, end in doc["sentences"][:-1]}
        predicted = {end for _, end in sentence_spans(doc["text"])[:-1]}
        tp, fp, fn = tp + len(gold & predicted), fp + len(predicted - gold), fn + len(gold - predicted)
    return 2 * tp / (2 * tp + fp + fn)


HELD_OUT = Path(__file__).parent / "data" / "gum_interview.jsonl"


def test_f1_on_text_the_rules_never_saw():
    """The gate: GUM's 19 Wikinews interviews (tests/data/make_gum_interview.py), none of which any rule
    was drawn from; measured 0.983 (1,019 of 1,048 gold ends found, 7 false)."""
    docs = [json.loads(line) for line in HELD_OUT.read_text(encoding="utf-8").splitlines()]
    assert len(docs) == 19 and sum(len(doc["sentences"]) for doc in docs) == 1067
    assert all(doc["text"][start:end].strip() for doc in docs for start, end in doc["sentences"])
    assert f1(docs) >= 0.98


def test_f1_on_the_articles_the_rules_were_drawn_from(gum_docs):
    """Not a measure of quality (every rule was drawn from errors on these 24 articles, both halves): a
    change that loses what the rules fixed fails here."""
    assert len(gum_docs) == 24
    assert f1(gum_docs) >= 0.985


# --- sentence ids: distinct for distinct sentences, NULs included, and unchanged for every other text


def _read_key(key: str) -> tuple[str, str, int]:
    """(article id, text, occurrence) back from a sentence key: that this exists proves the key injective."""
    if key.count("\x00") <= 2:  # ARTICLE_ID NUL TEXT [NUL OCCURRENCE], neither holding a NUL
        article_id, _, rest = key.partition("\x00")
        text, marked, occurrence = rest.partition("\x00")
        assert not marked or (occurrence.isdigit() and occurrence == str(int(occurrence)) and int(occurrence) > 0)
        return article_id, text, int(occurrence) if marked else 0
    empty, id_length, text_length, rest = key.split("\x00", 3)  # NUL len NUL len NUL ARTICLE_ID TEXT NUL OCCURRENCE
    assert empty == "" and id_length.isdigit() and text_length.isdigit()
    middle = int(id_length) + int(text_length)
    article_id, text, tail = rest[: int(id_length)], rest[int(id_length) : middle], rest[middle:]
    assert "\x00" in article_id + text and tail.startswith("\x00") and tail[1:] == str(int(tail[1:]))
    return article_id, text, int(tail[1:])


def test_sentence_keys_read_back_to_their_parts_so_ids_never_collide_by_construction():
    """Every (article id, text, occurrence) over an alphabet of NUL, digits and a letter: its key reads back."""
    import itertools

    from builder.sentences.segmenter import sentence_key

    alphabet = ["a", "\x00", "1", "0"]
    strings = [""] + ["".join(p) for n in (1, 2, 3) for p in itertools.product(alphabet, repeat=n)]
    keys = {}
    for article_id in strings:
        for text in strings:
            for occurrence in (0, 1, 2, 10):
                key = sentence_key(article_id, text, occurrence)
                assert _read_key(key) == (article_id, text, occurrence)
                keys[key] = (article_id, text, occurrence)
    assert len(keys) == len(strings) ** 2 * 4


def test_ids_without_a_nul_are_the_ids_they_always_were():
    import hashlib

    from builder.sentences.segmenter import sentence_id

    def old(article_id, text, occurrence=0):
        key = f"{article_id}\x00{text}" + (f"\x00{occurrence}" if occurrence else "")
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]

    for article_id, text, occurrence in [("a", "b", 0), ("GUM_news_stampede", "Hundreds dead", 3), ("7", "x", 1)]:
        assert sentence_id(article_id, text, occurrence) == old(article_id, text, occurrence)
    assert (
        sentence_id("GUM_news_stampede", "Hundreds dead in Hajj stampede") == "116f52e6c1a61e63c6ed"
    )  # the snapshot's


def test_sentences_differing_around_a_nul_get_distinct_ids_and_validate():
    """A repeat of "x" (occurrence 1) and the text "x NUL 1" once shared an id; `push` refused the sentences file
    and told the user to run `split` again, which gave the same ids."""
    from builder.gold.mixing import check_pushed
    from builder.sentences.segmenter import find_occurrence, sentence_id_matches, split_article

    line = "Alpha beta gamma delta."
    article = {"id": "a", "text": f"{line}\n{line}\n{line}\x001\n{line}\x00\n{line}\x00\x001"}
    sentences = split_article(article)
    assert [(s["text"], s["occurrence"]) for s in sentences] == [
        (line, 0),
        (line, 1),
        (f"{line}\x001", 0),
        (f"{line}\x00", 0),
        (f"{line}\x00\x001", 0),
    ]
    assert len({s["id"] for s in sentences}) == len(sentences)
    assert check_pushed(((f"s.jsonl:{n}", s) for n, s in enumerate(sentences, 1)), None) == len(sentences)
    for sentence in sentences:  # validation recomputes each id, with or without the occurrence
        text, sid = sentence["text"], sentence["id"]
        assert sentence_id_matches("a", text, sid, sentence["occurrence"], sentence["sentence_index"])
        assert sentence_id_matches("a", text, sid, None, sentence["sentence_index"])
    # and a task claiming the text "x NUL 1" under the id of the repeat of "x" no longer passes
    assert find_occurrence("a", f"{line}\x001", sentences[1]["id"], 5) is None
    assert not sentence_id_matches("a", f"{line}\x001", sentences[1]["id"], None, 2)
