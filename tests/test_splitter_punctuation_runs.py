"""The `rules` splitter stays linear in a run of end punctuation, its offsets exact."""

from __future__ import annotations

import pytest

PATHOLOGICAL_LINES = {
    "bangs": "Stop" + "!" * 50_000 + " now.",
    "dots": "." * 50_000,
    "dots then quotes": "." * 25_000 + "'" * 25_000 + " a",
    "question marks": "?" * 50_000 + "The end.",
    "ellipses": "\u2026" * 50_000,
}


@pytest.mark.parametrize("name", PATHOLOGICAL_LINES)
def test_rules_splitter_is_linear_in_a_run_of_end_punctuation(name):
    """`_END` was tried again from every character of a run of end punctuation with no space after it, each
    try scanning the rest of the run: 20,000 '!' took 4 s, 50,000 about 25 s (now milliseconds)."""
    import time

    from builder.sentences.segmenter import split_article

    text = PATHOLOGICAL_LINES[name]
    started = time.process_time()
    sentences = split_article({"id": "a", "text": text})
    assert time.process_time() - started < 2.0
    assert sentences and all(text[s["start"] : s["end"]] == s["text"] for s in sentences)
