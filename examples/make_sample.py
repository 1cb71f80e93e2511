"""Rebuild the bundled sample's GUM part from ../shared/corpora/gum_news.jsonl.

    python examples/make_sample.py

Writes examples/sample/gum_news_sample.jsonl (articles, in builder's JSONL input format) and
examples/gum_gold_entities.jsonl (GUM's gold named-entity mentions of the same articles,
mapped to PER/ORG/LOC: the source of the sample's entity annotations).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "shared" / "corpora" / "gum_news.jsonl"
ARTICLES = ("GUM_news_korea", "GUM_news_crane", "GUM_news_stampede", "GUM_news_worship")
GUM_TO_LABEL = {"person": "PER", "organization": "ORG", "place": "LOC"}


FUNCTION_WORDS = {"of", "the", "and", "for", "de", "on", "in"}
PRONOUNS = {"I", "We", "You", "He", "She", "It", "They", "Me", "Us", "Him", "Her", "Them", "This", "That", "These"}
# Titles and roles the guidelines keep out of a person's name ("President **Vladimir Putin**").
TITLES = {
    "administrator",
    "ambassador",
    "archbishop",
    "bishop",
    "captain",
    "ceo",
    "chairman",
    "chairwoman",
    "chancellor",
    "chief",
    "co-founder",
    "coach",
    "commissioner",
    "congressman",
    "congresswoman",
    "councillor",
    "deputy",
    "director",
    "dr",
    "dr.",
    "founder",
    "general",
    "governor",
    "judge",
    "justice",
    "king",
    "leader",
    "lord",
    "manager",
    "mayor",
    "minister",
    "mr",
    "mr.",
    "mrs",
    "mrs.",
    "ms",
    "ms.",
    "pope",
    "premier",
    "president",
    "president-elect",
    "prince",
    "princess",
    "queen",
    "rep.",
    "representative",
    "secretary",
    "sen.",
    "senator",
    "sheikh",
    "spokesman",
    "spokeswoman",
    "vice",
    "writer",
}


def _cut(surface: str, end: int, marker: str) -> tuple[int, str]:
    """`surface` up to `marker` (a post-modifier such as " of the FTU" or ", Illinois"), and its new end."""
    at = surface.find(marker)
    if at <= 0:
        return end, surface
    return end - (len(surface) - at), surface[:at]


def named_span(
    start: int, end: int, surface: str, meta: dict, kind: str = "", mentions: frozenset = frozenset()
) -> tuple[int, int, str] | None:
    """A GUM mention as the guidelines' name (builder/defaults/guidelines.md, "Entities"), or None.

    GUM marks whole noun phrases ("U.S. President Donald Trump's", "Wong Kwok-kin of the FTU",
    "Adler Planetarium in Chicago, Illinois"); the guidelines mark the name only. So: proper (or
    linked) and capitalised; no pronoun ("We" linked to an organisation); no leading "the", possessor
    ("DAB's") or title ("President"); no trailing possessive, ", place", " in place", and for persons
    no " of organisation" or second person (" and ..."); a lone word must have a proper-noun head.
    Names the cut leaves out ("U.S.", "Chicago") are GUM mentions of their own, so they stay gold.
    """
    if not (meta.get("identity") or meta.get("proper")):
        return None
    for prefix in ("the ", "The "):
        if surface.startswith(prefix):
            start, surface = start + len(prefix), surface[len(prefix) :]
    for marker in (", ", " in ", " from ", " who ", " which "):
        end, surface = _cut(surface, end, marker)
    if kind == "person":
        for marker in (" of ", " and "):
            end, surface = _cut(surface, end, marker)
    for suffix in (" 's", "'s", "’s", " '"):
        if surface.endswith(suffix):
            end, surface = end - len(suffix), surface[: -len(suffix)]
    for possessive in (" 's ", "'s ", "’s "):  # "Mecca's Grand Mosque": the possessed name, when the possessor
        at = surface.rfind(possessive)  # is a mention of its own (not "Korean People's Army")
        if at > 0 and (start, start + at) in mentions:
            cut = at + len(possessive)
            start, surface = start + cut, surface[cut:]
    if kind == "person":
        words = surface.split(" ")
        last_title = max((i for i, w in enumerate(words) if w.lower() in TITLES), default=-1)
        if last_title >= 0:  # "NASA Administrator Charles Bolden": the name after the last title
            cut = len(" ".join(words[: last_title + 1])) + 1
            if cut >= len(surface):
                return None
            start, surface = start + cut, surface[cut:]
    words = surface.split()
    if len(surface) < 2 or not words or not all(w[0].isupper() or w[0].isdigit() or w in FUNCTION_WORDS for w in words):
        return None
    if surface in PRONOUNS or (len(words) == 1 and not meta.get("proper") and "PROPN" not in meta.get("head_upos", ())):
        return None
    return start, end, surface


def named_spans(doc: dict) -> list[dict]:
    """The gold names of a GUM document: the guidelines' spans, outermost first, never overlapping."""
    candidates = []
    mentions = frozenset((start, end) for start, end, _, _ in doc["entities"])
    for (start, end, kind, surface), meta in zip(doc["entities"], doc["entity_meta"]):
        span = named_span(start, end, surface, meta, kind, mentions) if kind in GUM_TO_LABEL else None
        if span:
            candidates.append((span[0], -(span[1] - span[0]), span[2], GUM_TO_LABEL[kind]))
    spans, last_end = [], -1
    for start, negative_length, surface, label in sorted(set(candidates)):
        if start >= last_end:  # longest first at each start; nested mentions are dropped
            spans.append({"start": start, "end": start - negative_length, "label": label, "text": surface})
            last_end = start - negative_length
    return spans


def main() -> None:
    docs = {d["doc_id"]: d for d in map(json.loads, CORPUS.read_text(encoding="utf-8").splitlines())}
    with (
        open(HERE / "sample" / "gum_news_sample.jsonl", "w", encoding="utf-8") as articles,
        open(HERE / "gum_gold_entities.jsonl", "w", encoding="utf-8") as gold,
    ):
        for doc_id in ARTICLES:
            doc = docs[doc_id]
            article = {
                "id": doc_id,
                "title": doc["title"],
                "text": doc["text"],
                "url": doc["source_url"],
                "published": doc["date_created"],
                "license": doc["license"],
                "source": "GUM corpus V11 (Zeldes 2017), news genre",
            }
            articles.write(json.dumps(article, ensure_ascii=False, sort_keys=True) + "\n")
            spans = named_spans(doc)
            gold.write(json.dumps({"article_id": doc_id, "entities": spans}, ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
