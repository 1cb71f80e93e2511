"""Who labels which sentence in a blind project: a pure, deterministic and balanced rule.

In a blind project each annotator labels a copy of their own share (builder/labelstudio/blind_push.py), so
builder, not Label Studio's queue, decides which `annotators_per_sentence` distinct annotators see each
sentence. The rule: sentences in the order given, each to the annotators with the fewest sentences so far,
ties broken by a hash of (seed, sentence id, annotator). So counts stay within one of each other from any
balanced start, an annotator added later (fewest sentences) is given new ones first until level, and the same
inputs always give the same answer. Sentences already assigned are never moved by this rule: `assign` is
called with the counts of what each copy already holds and only the sentences no copy has yet.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping

from builder.errors import ConfigError


def _tie_break(seed: str, sentence_id: str, annotator: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{sentence_id}\x00{annotator}".encode()).digest()[:8]


def assign(
    sentence_ids: Iterable[str], loads: Mapping[str, int], per_sentence: int, seed: str = ""
) -> dict[str, tuple[str, ...]]:
    """Sentence id -> the `per_sentence` distinct annotators (sorted) who label it.

    `loads`: every annotator who may be given work, with the number of sentences they hold already. An id given
    twice is assigned once. Raises ConfigError when there are fewer annotators than `per_sentence`."""
    if per_sentence < 1:
        raise ConfigError(f"annotators_per_sentence is {per_sentence}: at least 1 annotator labels each sentence")
    if len(loads) < per_sentence:
        raise ConfigError(
            f"{len(loads)} annotator(s) for {per_sentence} annotators per sentence: a blind project needs at least "
            f"{per_sentence} (add them with `builder annotators add`)"
        )
    counts = dict(loads)
    result: dict[str, tuple[str, ...]] = {}
    for sentence_id in sentence_ids:
        if sentence_id in result:
            continue
        chosen = heapq.nsmallest(
            per_sentence, counts, key=lambda who: (counts[who], _tie_break(seed, sentence_id, who), who)
        )
        for who in chosen:
            counts[who] += 1
        result[sentence_id] = tuple(sorted(chosen))
    return result


def hand_over(
    holders: Mapping[str, Iterable[str]], loads: Mapping[str, int], per_sentence: int, seed: str = ""
) -> tuple[dict[str, tuple[str, ...]], int]:
    """Sentences that reach fewer than `per_sentence` annotators, topped up: (sentence id -> the annotators who
    are given it now, sorted; how many sentences stay short).

    `holders`: sentence id -> everyone who already has it (whose annotations count towards its overlap, whether
    or not they may still be given work); `loads`: the annotators who may be given work, with the sentences they
    hold. The same rule as `assign` (fewest sentences first, ties by the hash), never to an annotator who already
    has the sentence; a sentence with fewer eligible annotators than it lacks takes them all and counts as short."""
    counts = dict(loads)
    result: dict[str, tuple[str, ...]] = {}
    short = 0
    for sentence_id, has in holders.items():
        has = set(has)
        missing = per_sentence - len(has)
        if missing <= 0:
            continue
        eligible = [who for who in counts if who not in has]
        chosen = heapq.nsmallest(
            missing, eligible, key=lambda who: (counts[who], _tie_break(seed, sentence_id, who), who)
        )
        short += len(chosen) < missing
        for who in chosen:
            counts[who] += 1
        if chosen:
            result[sentence_id] = tuple(sorted(chosen))
    return result, short
