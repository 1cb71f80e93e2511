"""Entity spans <-> tokens and BIO tags (conll2003 style), derived once from the spans.

Tokens are words and punctuation, further cut at every span boundary, so a span always covers
whole tokens and the BIO view is lossless for non-overlapping spans. Overlapping spans cannot be
held by BIO: the longest (then earliest) wins and the others are returned as dropped.
"""

from __future__ import annotations

import re
from bisect import bisect_left

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def non_overlapping(spans: list[dict]) -> tuple[list[dict], list[dict]]:
    """(kept, dropped): longest first, then earliest; a span overlapping a kept one is dropped."""
    by_start = sorted(spans, key=lambda s: (s["start"], s["end"]))
    if all(a["end"] <= b["start"] for a, b in zip(by_start, by_start[1:])):
        return by_start, []  # the usual case: nothing overlaps
    kept: list[dict] = []
    dropped: list[dict] = []
    for span in sorted(spans, key=lambda s: (-(s["end"] - s["start"]), s["start"], s["label"])):
        if any(span["start"] < k["end"] and k["start"] < span["end"] for k in kept):
            dropped.append(span)
        else:
            kept.append(span)
    kept.sort(key=lambda s: s["start"])
    return kept, dropped


def tokenize(text: str, boundaries: set[int] = frozenset()) -> list[tuple[int, int]]:
    """Token offsets: words and punctuation, cut at `boundaries` (span starts and ends)."""
    if not boundaries:
        return [match.span() for match in _TOKEN.finditer(text)]
    offsets: list[tuple[int, int]] = []
    start = 0
    for cut in sorted(boundaries) + [len(text)]:
        if cut > start:  # tokens of each stretch between boundaries: none can cross a boundary
            offsets += [match.span() for match in _TOKEN.finditer(text, start, cut)]
            start = cut
    return offsets


def spans_to_bio(text: str, spans: list[dict]) -> tuple[list[str], list[str], list[dict]]:
    """(tokens, tags, dropped_overlaps) for `text` and its entity spans."""
    kept, dropped = non_overlapping(spans)
    boundaries = {s["start"] for s in kept} | {s["end"] for s in kept}
    offsets = tokenize(text, boundaries)
    starts = [s for s, _ in offsets]
    tags = ["O"] * len(offsets)
    for span in kept:
        i = bisect_left(starts, span["start"])
        first = True
        while i < len(offsets) and offsets[i][1] <= span["end"]:
            tags[i] = ("B-" if first else "I-") + span["label"]
            first = False
            i += 1
    return [text[s:e] for s, e in offsets], tags, dropped


def bio_to_spans(text: str, tokens: list[str], tags: list[str]) -> list[dict]:
    """Spans back from tokens and tags (tokens are found in order in `text`)."""
    offsets, position = [], 0
    for token in tokens:
        start = text.index(token, position)
        offsets.append((start, start + len(token)))
        position = start + len(token)
    spans: list[dict] = []
    for (start, end), tag in zip(offsets, tags):
        if tag.startswith("B-") or (tag.startswith("I-") and (not spans or spans[-1]["label"] != tag[2:] or spans[-1].get("closed"))):
            spans.append({"start": start, "end": end, "label": tag[2:]})
        elif tag.startswith("I-"):
            spans[-1]["end"] = end
        elif spans:
            spans[-1]["closed"] = True
    for span in spans:
        span.pop("closed", None)
        span["text"] = text[span["start"] : span["end"]]
    return spans
