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


def named_span(start: int, end: int, surface: str, meta: dict) -> tuple[int, int, str] | None:
    """A GUM mention as a named-entity span: proper (or linked) and capitalised, without a leading
    "the" or a trailing possessive; None for common-noun mentions such as "the country's military"."""
    if not (meta.get("identity") or meta.get("proper")):
        return None
    for prefix in ("the ", "The "):
        if surface.startswith(prefix):
            start, surface = start + len(prefix), surface[len(prefix) :]
    for suffix in (" 's", "'s", "’s", " '"):
        if surface.endswith(suffix):
            end, surface = end - len(suffix), surface[: -len(suffix)]
    words = surface.split()
    if len(surface) < 2 or not words or not all(w[0].isupper() or w[0].isdigit() or w in FUNCTION_WORDS for w in words):
        return None
    return start, end, surface


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
            candidates = []
            for (start, end, kind, surface), meta in zip(doc["entities"], doc["entity_meta"]):
                span = named_span(start, end, surface, meta) if kind in GUM_TO_LABEL else None
                if span:
                    candidates.append((span[0], -(span[1] - span[0]), span[2], GUM_TO_LABEL[kind]))
            spans, last_end = [], -1
            for start, negative_length, surface, label in sorted(set(candidates)):
                if start >= last_end:  # longest first at each start; nested mentions are dropped
                    spans.append({"start": start, "end": start - negative_length, "label": label, "text": surface})
                    last_end = start - negative_length
            gold.write(json.dumps({"article_id": doc_id, "entities": spans}, ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
