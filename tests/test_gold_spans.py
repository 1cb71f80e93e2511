"""Gold answers' entity spans: whitespace as validation sees it, spans of only whitespace, overlapping spans."""

from __future__ import annotations

import json

import pytest

from builder.errors import InputError
from tests.conftest import make_project
from tests.test_gold_push import sentences


def write_lines(path, lines: list[dict]):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "space, refused",
    [("\u00a0", True), ("\u2003", True), ("\u3000", True), ("\x1f", True), ("\u200b", False), ("\ufeff", False)],
)
def test_gold_and_validation_agree_on_what_whitespace_is(tmp_path, space, refused):
    """A gold span is refused for surrounding whitespace exactly when validation would trim an annotator's
    span there (both use Python's str.strip: NBSP and EM SPACE are whitespace, ZERO WIDTH SPACE is not)."""
    from builder.gold.answers import read_gold

    sentence = sentences(1)[0]
    text = f"Kim{space} met Putin."
    sentence.update(text=text, end=sentence["start"] + len(text))
    gold = {**sentence, "stance": "neutral", "entities": [{"start": 0, "end": 4, "label": "PER"}]}
    project = make_project(tmp_path / "p", "Gold space")
    path = write_lines(tmp_path / "gold.jsonl", [gold])
    assert (text[0:4] != text[0:4].strip()) is refused
    if refused:
        with pytest.raises(InputError, match=r"gold\.jsonl:1: field 'entities\[0\]': span 0-4 .* give 0-3$"):
            read_gold(path, project)
    else:
        assert read_gold(path, project)[sentence["id"]].entities == ((0, 4, "PER"),)


def test_a_gold_span_of_only_whitespace_and_overlapping_spans(tmp_path):
    from builder.gold.answers import read_gold

    sentence = sentences(1)[0]
    text = "Kim\u00a0\u2003Jong Un met Putin."
    sentence.update(text=text, end=sentence["start"] + len(text))
    project = make_project(tmp_path / "p", "Gold only space")
    gold = {**sentence, "stance": "neutral"}
    only = write_lines(tmp_path / "only.jsonl", [{**gold, "entities": [{"start": 3, "end": 5, "label": "PER"}]}])
    with pytest.raises(
        InputError, match=r"span 3-5 '\\xa0\\u2003' has surrounding whitespace.*: it is only whitespace"
    ):
        read_gold(only, project)
    spans = [{"start": 0, "end": 12, "label": "PER"}, {"start": 5, "end": 12, "label": "ORG"}]
    spans.append({"start": 0, "end": 12, "label": "ORG"})  # the same span with another label: allowed, as in validation
    overlapping = write_lines(tmp_path / "overlap.jsonl", [{**gold, "entities": spans}])
    assert read_gold(overlapping, project)[sentence["id"]].entities == (
        (0, 12, "ORG"),
        (0, 12, "PER"),
        (5, 12, "ORG"),
    )
