"""Sentence splitting: offsets reconstruct sentences, order, ids, and the seed article."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.report import Report
from builder.sentences.articles import ArticleReader
from builder.sentences.segmenter import sentence_id, sentence_spans, split_article

from .conftest import ROOT, SEED

WORDS = st.sampled_from(
    [
        "Mr.",
        "Smith",
        "said",
        "U.S.",
        "troops",
        "left.",
        "Why?",
        "Yes!",
        "“Quote.”",
        "Ri",
        "Chang",
        "Dae",
        "3.5",
        "km",
        "😀",
        "(a)",
        "...",
        "–",
    ]
)
TEXT = st.lists(
    st.one_of(WORDS, st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)), max_size=60
).map(lambda parts: " ".join(parts))
TEXT_WITH_LINES = st.tuples(st.lists(TEXT, max_size=6), st.sampled_from(["\n", "\n\n", " \n "])).map(
    lambda parts: parts[1].join(parts[0])
)


@settings(max_examples=300, deadline=None)
@given(TEXT_WITH_LINES)
def test_offsets_reconstruct_sentences_in_order_without_overlap(text):
    article = {"id": "a", "title": "", "text": text}
    sentences = split_article(article)
    previous_end = 0
    for index, sentence in enumerate(sentences):
        assert text[sentence["start"] : sentence["end"]] == sentence["text"]
        assert sentence["text"] == sentence["text"].strip() and sentence["text"]
        assert sentence["start"] >= previous_end
        assert sentence["sentence_index"] == index
        previous_end = sentence["end"]
    assert not text[previous_end:].strip()
    assert len({s["id"] for s in sentences}) == len(sentences)


@settings(max_examples=100, deadline=None)
@given(TEXT)
def test_no_text_is_lost_between_sentences(text):
    """Everything outside the spans is whitespace."""
    covered = [False] * len(text)
    for start, end in sentence_spans(text):
        covered[start:end] = [True] * (end - start)
    assert all(c.isspace() for c, inside in zip(text, covered) if not inside)


def seed_sentences():
    report = Report("split")
    articles = list(ArticleReader(report).read([SEED]))
    assert len(articles) == 1
    return articles[0], split_article(articles[0]), report


def test_seed_headline_is_its_own_sentence():
    article, sentences, _ = seed_sentences()
    assert sentences[0]["text"] == article["title"]
    assert sentences[0]["text"].startswith("Ri Chang Dae leads Pyongyang delegation")
    assert sentences[0]["text"].endswith("ongoing war in Ukraine.")
    subheading = "North Korean captives excluded from prisoner swap"
    assert subheading in [s["text"] for s in sentences]


def test_seed_names_stay_inside_one_sentence():
    _, sentences, _ = seed_sentences()
    for name in ("Ri Chang Dae", "Yu Yong Weon", "Sergei Shoigu", "Vladimir Putin"):
        assert any(name in s["text"] for s in sentences), name
    assert not any(s["text"] in ("Ri", "Chang", "Dae", "Ri Chang", "Yu", "Yu Yong") for s in sentences)


def test_seed_donation_appeal_removed_and_reported():
    article, sentences, report = seed_sentences()
    assert "donation" not in article["text"] and "PayPal" not in article["text"]
    assert "Keep Independent Journalism Alive" not in article["text"]
    assert not any("PayPal" in s["text"] for s in sentences)
    removed = report.by_reason("boilerplate")
    assert [p.fields["rule"] for p in removed] == ["appeal-heading", "donation-appeal", "support-us"]
    assert all(not p.error for p in removed)
    assert any("PayPal" in p.fields["text"] for p in removed)
    assert article["text"].endswith("as Moscow pushes to secure its frontlines.")


def test_context_and_ids_are_stable():
    article, sentences, _ = seed_sentences()
    again = split_article(dict(article))
    assert [s["id"] for s in sentences] == [s["id"] for s in again]
    assert sentences[1]["prev_text"] == sentences[0]["text"]
    assert sentences[1]["next_text"] == sentences[2]["text"]
    assert sentences[0]["prev_text"] == "" and sentences[-1]["next_text"] == ""
    changed = dict(article, text=article["text"].replace("arrived in Russia", "landed in Russia"))
    changed_ids = [s["id"] for s in split_article(changed)]
    assert changed_ids[0] == sentences[0]["id"] and changed_ids[2:] == [s["id"] for s in sentences[2:]]
    assert changed_ids[1] != sentences[1]["id"]


def test_repeated_sentence_gets_distinct_ids():
    sentences = split_article({"id": "a", "text": "Share this.\nBody text here.\nShare this."})
    assert sentences[0]["text"] == sentences[2]["text"]
    assert sentences[0]["id"] != sentences[2]["id"]


def test_gum_dateline_and_caption_are_own_sentences(gum_docs):
    doc = next(d for d in gum_docs if d["doc_id"] == "GUM_news_expo")
    texts = [s["text"] for s in split_article({"id": "x", "text": doc["text"]})]
    assert "Image: Nick Moreau." in texts


def test_sentence_boundary_f1_on_gum_is_at_target(gum_docs):
    """Quality only (speed lives in bench/bench_split.py): boundary F1 >= 0.98 on all 24 articles."""
    tp = fp = fn = 0
    for doc in gum_docs:
        gold = {end for _, end in doc["sentences"][:-1]}
        predicted = {end for _, end in sentence_spans(doc["text"])[:-1]}
        tp, fp, fn = tp + len(gold & predicted), fp + len(predicted - gold), fn + len(gold - predicted)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert len(gum_docs) == 24
    assert f1 >= 0.98


def test_context_fields_are_bounded_and_offsets_ids_unchanged():
    from builder.sentences.segmenter import CONTEXT_MAX

    long_sentence = "Word " * 600 + "end."  # 3,004 characters
    text = f"First sentence here.\n{long_sentence}\nLast sentence here."
    article = {"id": "a", "title": "T" * 5000, "text": text}
    first, middle, last = split_article(article)
    assert middle["text"] == long_sentence and text[middle["start"] : middle["end"]] == long_sentence
    assert [s["id"] for s in (first, middle, last)] == [sentence_id("a", s["text"]) for s in (first, middle, last)]
    assert len(first["next_text"]) == CONTEXT_MAX and first["next_text"] == long_sentence[: CONTEXT_MAX - 1] + "\u2026"
    assert len(last["prev_text"]) == CONTEXT_MAX and last["prev_text"] == "\u2026" + long_sentence[-(CONTEXT_MAX - 1) :]
    assert middle["prev_text"] == "First sentence here." and middle["next_text"] == "Last sentence here."
    assert all(len(s["article_title"]) == CONTEXT_MAX for s in (first, middle, last))


def test_sample_sentences_match_the_committed_snapshot(sample_sentences):
    """Ordinary articles keep their ids, offsets, titles and context: the committed annotations point at them."""
    _, sentences = sample_sentences
    by_id = {s["id"]: s for s in sentences}
    tasks = [
        json.loads(line) for line in (ROOT / "annotations" / "snapshot.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(tasks) == len(sentences) == 65
    for task in tasks:
        data = task["data"]
        sentence = by_id[data["sentence_id"]]
        for key in ("article_id", "article_title", "sentence_index", "text", "start", "end", "prev_text", "next_text"):
            assert sentence[key] == data[key], (data["sentence_id"], key)
