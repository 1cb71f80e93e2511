"""Runs, pages and push batches of whole articles, gold questions among them, and the count an interrupted
`builder predict` gives of its runs (the last needs Label Studio)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.preannotate import article_batches, whole_articles
from tests.conftest import make_project
from tests.test_gold_push import sentences

# --- batches and pages of whole articles ------------------------------------------------------------------------


def articles_with_gold(lengths: list[int], gold_after: list[bool]) -> list[tuple[str, int]]:
    """(article, n) items: articles of the given lengths, a gold question ("g...", its own article) after the
    items flagged, as mix_gold places them (never two side by side among an article's sentences)."""
    items: list[tuple[str, int]] = []
    flags = iter(gold_after)
    for a, length in enumerate(lengths):
        for _ in range(length):
            items.append((f"a{a}", len(items)))
            if next(flags, False):
                items.append((f"g{len(items)}", len(items)))
    return items


def ordinary_article(run: list, last: bool) -> str | None:
    articles = [article for article, _ in (reversed(run) if last else run) if not article.startswith("g")]
    return articles[0] if articles else None


def test_a_gold_question_among_an_articles_tasks_at_a_page_edge_does_not_cut_it():
    x1, x2, gold, x3, y1, y2 = ("x", 1), ("x", 2), ("g", 3), ("x", 4), ("y", 5), ("y", 6)
    for pages in ([[x1, x2, gold], [x3, y1, y2]], [[x1, x2], [gold, x3, y1, y2]], [[x1, x2, gold, x3, y1, y2]]):
        assert list(whole_articles(pages, lambda item: item[0], 10)) == [[x1, x2, gold, x3], [y1, y2]]


def test_a_run_of_whole_articles_holds_at_most_the_limit():
    """Pages of 3 and a limit of 6: a long article held 5 items at a page's end was yielded 8 at a time."""
    pages = [[("a", 0), ("x", 1), ("x", 2)], [("x", i) for i in range(3, 6)], [("x", i) for i in range(6, 9)]]
    runs = list(whole_articles(pages, lambda item: item[0], 6))
    assert [len(run) for run in runs] == [1, 6, 2]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(1, 7), max_size=12),
    st.lists(st.booleans(), max_size=60),
    st.lists(st.integers(0, 8), min_size=1, max_size=20),
    st.integers(1, 10),
)
def test_whole_articles_with_gold_questions_among_them(lengths, gold_after, page_sizes, limit):
    items = articles_with_gold(lengths, gold_after)
    pages, at = [], 0
    for size in page_sizes:  # some pages empty, the rest of the items in the last one
        pages.append(items[at : at + size])
        at += size
    pages.append(items[at:])
    runs = list(whole_articles(pages, lambda item: item[0], limit))
    assert [item for run in runs for item in run] == items and all(runs)
    assert all(len(run) <= limit for run in runs)
    for run, following in zip(runs, runs[1:]):
        if ordinary_article(run, last=True) == ordinary_article(following, last=False) is not None:
            assert len(run) == limit  # an article cut: only one longer than the limit


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(1, 9), max_size=12), st.lists(st.booleans(), max_size=60), st.integers(1, 6))
def test_push_batches_end_where_an_article_ends_gold_questions_among_it_or_not(lengths, gold_after, size):
    """A gold question placed among an article's sentences (mix_gold, after a share of sentences) ended the
    batch there once the batch was full: the article's sentences went to two import batches."""
    items = articles_with_gold(lengths, gold_after)
    batches = list(article_batches(items, lambda item: None if item[0].startswith("g") else item[0], size))
    assert [item for batch in batches for item in batch] == items and all(batches)
    assert all(size <= len(batch) <= 2 * size for batch in batches[:-1])
    assert not batches or len(batches[-1]) <= 2 * size
    for batch, following in zip(batches, batches[1:]):
        if ordinary_article(batch, last=True) == ordinary_article(following, last=False) is not None:
            assert len(batch) == 2 * size


def test_a_gold_question_mix_gold_places_among_an_articles_sentences_does_not_split_its_batch():
    """The real mix: articles of 30 sentences at a 5% gold rate (a gold question waits at most 19 sentences for an
    article boundary) put the second gold question among article a-1's sentences; with batches of 20, the
    batch then held 28 of them and ended at the gold question, sending the article's last two apart."""
    from builder.gold.mixing import mix_gold

    mixed = list(mix_gold(iter(sentences(90, per_article=30)), iter(sentences(10, 1, prefix="q")), 0.05))
    inside = [i for i, (s, is_gold) in enumerate(mixed) if is_gold and mixed[i - 1][0]["article_id"] == "a-1"]
    assert inside and mixed[inside[0] + 1][0]["article_id"] == "a-1"  # among a-1's sentences
    batches = list(article_batches(mixed, lambda pair: None if pair[1] else pair[0]["article_id"], 20))
    where: dict[str, set[int]] = {}
    for n, batch in enumerate(batches):
        for sentence, is_gold in batch:
            if not is_gold:
                where.setdefault(sentence["article_id"], set()).add(n)
    assert all(len(batch_numbers) == 1 for batch_numbers in where.values()), where


# --- with Label Studio --------------------------------------------------------------------------------------


def test_an_interrupted_predict_counts_only_the_predictions_that_arrived(ls, tmp_path):
    """Predictions are imported once per run of whole articles: interrupted while making the second run's,
    `builder predict` said the first run's and those made since had arrived (7); 5 had."""
    from builder.errors import Interrupted
    from builder.labelstudio.predictions import refresh_predictions
    from builder.labelstudio.push import push_sentences
    from tests.test_predict import StandInModel, listed
    from tests.test_predict import sentences as hedged

    class Stopping(StandInModel):
        read: set[str] = set()  # the texts read (score() reads each again)

        def predict(self, text):
            Stopping.read.add(text)
            if len(Stopping.read) == 8:  # the third task of the second article
                raise KeyboardInterrupt
            return super().predict(text)

    project = make_project(tmp_path / "p", "Predict interrupted")
    pushed = push_sentences(ls, project, hedged(20, per_article=5))
    model = Stopping("1")
    with pytest.raises(Interrupted, match=r"^interrupted: 5 tasks got new predictions before the interruption"):
        refresh_predictions(ls, project, model, page_size=5)
    arrived = [t for t in listed(ls, pushed.project_id) if t["predictions"]]
    assert len(arrived) == 5
