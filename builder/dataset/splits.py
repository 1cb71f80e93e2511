"""Leak-free, stable splits: decided per article from a hash of its id.

- all sentences of an article are in one split; the hash is salted with the dataset name;
- adding articles never moves an existing article (the hash depends on its id alone);
- articles that share a sentence text (wire copy, boilerplate that slipped through) are put in
  one split: the group takes the most held-out split of its members (test > validation > train);
- `frozen_test`: articles that were in a previous release's test split stay in test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SPLITS = ("train", "validation", "test")
_PRECEDENCE = {"train": 0, "validation": 1, "test": 2}


def hash_split(article_id: str, proportions: dict[str, float], salt: str = "") -> str:
    """train, validation or test from a hash of (salt, article id): uniform, stable, independent per dataset."""
    value = int(hashlib.sha256(f"{salt}\x00{article_id}".encode()).hexdigest()[:12], 16) / float(16**12)
    if value < proportions["train"]:
        return "train"
    if value < proportions["train"] + proportions["validation"]:
        return "validation"
    return "test"


class _Groups:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def assign_splits(
    sentences: Iterable[tuple[str, str]], proportions: dict[str, float], frozen_test: Iterable[str] = (), salt: str = ""
) -> tuple[dict[str, str], dict]:
    """Split of every article from (article_id, sentence_text) pairs; and facts for the card."""
    groups = _Groups()
    first_article_of_text: dict[bytes, str] = {}
    for article_id, text in sentences:
        groups.find(article_id)
        key = hashlib.blake2b(" ".join(text.split()).lower().encode("utf-8"), digest_size=12).digest()
        other = first_article_of_text.setdefault(key, article_id)
        if other != article_id:
            groups.union(article_id, other)
    frozen = set(frozen_test)
    members: dict[str, list[str]] = {}
    for article_id in groups.parent:
        members.setdefault(groups.find(article_id), []).append(article_id)
    splits: dict[str, str] = {}
    moved = 0
    for group in members.values():
        own = {a: ("test" if a in frozen else hash_split(a, proportions, salt)) for a in group}
        chosen = max(own.values(), key=_PRECEDENCE.__getitem__)
        moved += sum(1 for split in own.values() if split != chosen)
        for article_id in group:
            splits[article_id] = chosen
    facts = {
        "articles": len(splits),
        "shared_text_groups": sum(1 for g in members.values() if len(g) > 1),
        "articles_moved_to_keep_shared_text_together": moved,
        "frozen_test_articles": len(frozen & set(splits)),
    }
    return splits, facts


def parquet_name(split: str) -> str:
    """Where `split` is written, relative to the dataset folder: one shard per split."""
    return f"data/{split}-00000-of-00001.parquet"


def parquet_pattern(split: str) -> str:
    """The shards of `split`, as the card's `data_files` names them (a glob relative to the dataset folder)."""
    return f"data/{split}-*.parquet"
