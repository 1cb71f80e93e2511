"""Entity spans <-> tokens and BIO tags (conll2003 style), derived once from the spans.

Tokens are words and punctuation, further cut at every span boundary, so a span always covers
whole tokens and the BIO view is lossless for non-overlapping spans. Overlapping spans cannot be
held by BIO: the longest (then earliest, then the first label in alphabetical order) wins and the others
are returned as dropped, each with the `kind` of its loss (`loss_kind`). From dataset format 3 the spans
are the resolved ones (builder.records.aggregate): only a ground-truth annotation overlaps spans there.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


# What a dropped span is to the span the BIO view kept in its place, most telling first.
SAME_EXTENT = "same extent with another label"
NESTED = "nested in or around another span"
OVERLAP = "crossing another span"
LOSS_KINDS = (SAME_EXTENT, NESTED, OVERLAP)


def loss_kind(span: dict, kept: list[dict]) -> str:
    """Why `span` could not join `kept` (the spans a flat view holds): one of LOSS_KINDS."""
    start, end = span["start"], span["end"]
    rivals = [k for k in kept if k["start"] < end and start < k["end"]]
    if any(k["start"] == start and k["end"] == end for k in rivals):
        return SAME_EXTENT
    if any((k["start"] <= start and end <= k["end"]) or (start <= k["start"] and k["end"] <= end) for k in rivals):
        return NESTED
    return OVERLAP


def non_overlapping(spans: list[dict]) -> tuple[list[dict], list[dict]]:
    """(kept, dropped): longest first, then earliest; a span overlapping a kept one is dropped."""
    if all(a["end"] <= b["start"] for a, b in zip(spans, spans[1:])):
        return list(spans), []  # the usual case: in order, nothing overlaps (what the sort below would give)
    by_start = sorted(spans, key=lambda s: (s["start"], s["end"]))
    if all(a["end"] <= b["start"] for a, b in zip(by_start, by_start[1:])):
        return by_start, []
    kept: list[dict] = []
    dropped: list[dict] = []
    for span in sorted(spans, key=lambda s: (-(s["end"] - s["start"]), s["start"], s["label"])):
        if any(span["start"] < k["end"] and k["start"] < span["end"] for k in kept):
            dropped.append(span)
        else:
            kept.append(span)
    kept.sort(key=lambda s: s["start"])
    return kept, dropped


def spans_to_bio(text: str, spans: list[dict], tag_ids: dict | None = None) -> tuple[list[str], list, list[dict]]:
    """(tokens, tags, dropped_overlaps) for `text` and its entity spans; each dropped span with its `kind`.

    With `tag_ids` (tag name -> id), tags come as ids. The text is cut at span boundaries and
    each stretch tokenized on its own, so a stretch's tags are all O, or B then I of one span.
    """
    kept, dropped = non_overlapping(spans)
    if dropped:
        dropped = [{**span, "kind": loss_kind(span, kept)} for span in dropped]
    findall = _TOKEN.findall
    outside = tag_ids["O"] if tag_ids else "O"
    tokens: list[str] = []
    tags: list = []
    position = 0
    for span in kept:
        start, end = span["start"], span["end"]
        if start > position:
            stretch = findall(text, position, start)
            tokens += stretch
            tags += [outside] * len(stretch)
        stretch = findall(text, start, end)
        if stretch:
            label = span["label"]
            begin, inside = (tag_ids[f"B-{label}"], tag_ids[f"I-{label}"]) if tag_ids else (f"B-{label}", f"I-{label}")
            tokens += stretch
            tags.append(begin)
            tags += [inside] * (len(stretch) - 1)
        position = end
    stretch = findall(text, position)
    tokens += stretch
    tags += [outside] * len(stretch)
    return tokens, tags, dropped


def bio_to_spans(text: str, tokens: list[str], tags: list[str]) -> list[dict]:
    """Spans back from tokens and tags (tokens are found in order in `text`)."""
    offsets, position = [], 0
    for token in tokens:
        start = text.index(token, position)
        offsets.append((start, start + len(token)))
        position = start + len(token)
    spans: list[dict] = []
    for (start, end), tag in zip(offsets, tags):
        if tag.startswith("B-") or (
            tag.startswith("I-") and (not spans or spans[-1]["label"] != tag[2:] or spans[-1].get("closed"))
        ):
            spans.append({"start": start, "end": end, "label": tag[2:]})
        elif tag.startswith("I-"):
            spans[-1]["end"] = end
        elif spans:
            spans[-1]["closed"] = True
    for span in spans:
        span.pop("closed", None)
        span["text"] = text[span["start"] : span["end"]]
    return spans
