"""The trained model given odd sentences and article ids, and texts and article ids of different lengths."""

from __future__ import annotations

import pytest

from .conftest import ROOT, make_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from builder.learn.train import train_model
    from builder.learn.trained import load_model

    root = tmp_path_factory.mktemp("hostile-model") / "project"
    project = make_project(root, "hostile-model", snapshot=ROOT / "annotations" / "snapshot.jsonl")
    return load_model(train_model(project).folder, project)


ODD_TEXTS = ["...", "!!! ???", "\u200b", "-", "O'Neil-Smith-Jones", "\u6211\u7231\u4f60\u3002", "Kim " * 300, "A-"]


def test_model_reads_odd_sentences_and_article_ids(trained):
    """Empty article ids, texts of punctuation only, and sentences without an article id give a score, not
    an exception; `choose_uncertain` read `article_id` with .get to score and with [] to rank (a KeyError)."""
    from builder.labelstudio.push import choose_uncertain
    from builder.model import prediction_for
    from builder.preannotate import article_contexts

    contexts = article_contexts(trained, [("", t) for t in ODD_TEXTS] + [("a", t) for t in ODD_TEXTS])
    assert set(contexts) == {"", "a"}
    for text in ODD_TEXTS:
        prediction_for(trained, text, contexts[""])
        assert 0 <= trained.uncertainty(text, context=contexts["a"]) <= 1
    candidates = [{"id": f"s{i}", "text": t} for i, t in enumerate(ODD_TEXTS)]  # no article id at all
    candidates.append({"id": "e", "text": "Kim met Putin.", "article_id": ""})
    assert set(choose_uncertain(candidates, trained, len(candidates))) == {c["id"] for c in candidates}


def test_model_refuses_texts_and_article_ids_of_different_lengths(trained):
    """A text without its article id was dropped silently by zip: uncertainties(['a'], []) == []."""
    with pytest.raises(ValueError):
        trained.uncertainties(["Kim met Putin.", "He left."], ["a"])
    with pytest.raises(ValueError):
        trained.article_contexts(["Kim met Putin."], ["a", "b"])
