"""What the entity tagger and the stance classifier see: tokens with offsets, token features, stance terms.

Everything here is computed from the sentence and the model's own memory of its training records (a
gazetteer of labelled strings, the words seen in lower case); nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections import Counter, defaultdict
from collections.abc import Iterable

# Initialisms (U.S., U.N.), words (letters and digits), and every other character alone: "Korea's" is
# Korea / ' / s, so spans that end before a possessive line up with tokens.
TOKEN = re.compile(r"[A-Z]\.(?:[A-Z]\.)+|\w+(?:-\w+)*|[^\w\s]")
MAX_GAZETTEER_TOKENS = 8


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) for every token of `text`, offsets in code points."""
    return [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


@functools.lru_cache(maxsize=1 << 16)  # a training computes the shapes of the same words again and again
def shape(token: str) -> str:
    """The token's shape, runs collapsed: 'Kim' -> 'Xx', 'U.S.' -> 'X.X.', '2006' -> 'd', 'iPhone' -> 'xXx'."""
    out = []
    for char in token:
        kind = "X" if char.isupper() else "x" if char.islower() else "d" if char.isdigit() else char
        if not out or out[-1] != kind:
            out.append(kind)
    return "".join(out)[:6]


def is_all_caps(text: str) -> bool:
    """Written in capitals: at least 4 cased letters, 80% of them upper case."""
    if text.isascii():  # the same answer, counted in C: ASCII's cased letters are A-Z and a-z
        upper = len(text) - len(text.translate(_DROP_UPPER))
        letters = upper + len(text) - len(text.translate(_DROP_LOWER))
        return letters >= 4 and upper >= 0.8 * letters
    letters = [c for c in text if c.isalpha() and c.lower() != c.upper()]
    return len(letters) >= 4 and sum(c.isupper() for c in letters) >= 0.8 * len(letters)


_DROP_UPPER = str.maketrans("", "", string.ascii_uppercase)
_DROP_LOWER = str.maketrans("", "", string.ascii_lowercase)


def is_headline_like(text: str) -> bool:
    """A headline, dateline or caption rather than a sentence: short and without closing punctuation,
    or written in capitals. Capitalisation there says little about names."""
    stripped = text.strip().rstrip("\"'”’)»")
    if is_all_caps(stripped):
        return True
    return len(stripped.split()) <= 20 and not stripped.endswith((".", "!", "?", ":", ";"))


class Gazetteer:
    """Token sequences labelled in the training records, with the articles that labelled them.

    While training, a sentence's own article is left out of the look-up, so the tagger learns how far a
    match in *other* articles can be trusted (as at prediction time) rather than copying its own labels.
    """

    def __init__(self, entries: dict[tuple[str, ...], dict[str, Counter]] | None = None) -> None:
        self.entries = entries or {}
        self.lengths: dict[str, list[int]] = defaultdict(list)
        for surface in sorted(self.entries, key=lambda s: (-len(s), s)):
            if len(surface) not in self.lengths[surface[0]]:
                self.lengths[surface[0]].append(len(surface))

    @classmethod
    def learn(cls, examples: Iterable[tuple[str, str, list[dict]]]) -> Gazetteer:
        """From (article_id, text, spans) triples."""
        entries: dict[tuple[str, ...], dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for article_id, text, spans in examples:
            for span in spans:
                surface = tuple(t for t, _, _ in tokenize(text[span["start"] : span["end"]]))
                if 0 < len(surface) <= MAX_GAZETTEER_TOKENS and len("".join(surface)) >= 2:
                    entries[surface][article_id][span["label"]] += 1
        return cls({s: dict(per_article) for s, per_article in entries.items()})

    def label(self, surface: tuple[str, ...], exclude: str | None) -> str | None:
        votes: Counter = Counter()
        for article_id, counts in self.entries.get(surface, {}).items():
            if article_id != exclude:
                votes.update(counts)
        if not votes:
            return None
        return min(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0]

    def tags(self, tokens: list[str], exclude: str | None = None) -> list[str | None]:
        """'B-LABEL'/'I-LABEL' where a known surface matches (longest first, left to right), else None."""
        out: list[str | None] = [None] * len(tokens)
        i = 0
        while i < len(tokens):
            step = 1
            for length in self.lengths.get(tokens[i], ()):
                surface = tuple(tokens[i : i + length])
                label = self.label(surface, exclude) if len(surface) == length else None
                if label:
                    out[i] = f"B-{label}"
                    for j in range(i + 1, i + length):
                        out[j] = f"I-{label}"
                    step = length
                    break
            i += step
        return out

    def to_json(self) -> list:
        return [
            [list(s), {a: dict(sorted(c.items())) for a, c in sorted(per.items())}]
            for s, per in sorted(self.entries.items())
        ]

    @classmethod
    def from_json(cls, data: list) -> Gazetteer:
        return cls({tuple(s): {a: Counter(c) for a, c in per.items()} for s, per in data})


class ArticleContext:
    """What the other sentences of a sentence's article say about its words: which are written with a
    capital inside a sentence (names), which in lower case (common words), and which follow a first
    name (surnames: "Mohamed" alone, after "Ahmed Mohamed")."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        from builder.learn import lexicons

        first = lexicons.first_names()
        texts = list(texts)
        self.texts: tuple[str, ...] = tuple(texts)  # for names found elsewhere in the article (`article_names`)
        self.names: dict = {}  # per model: what it found in these texts, computed once
        self.capitalised: set[str] = set()
        self.lower: set[str] = set()
        self.surnames: set[str] = set()
        self.in_names: set[str] = set()
        for text in texts:
            words = [t for t, _, _ in tokenize(text)]
            for start, end in {r for r in capital_runs(words) if r is not None}:
                if end - start >= 2 and start > 0:
                    self.in_names.update(words[start:end])
            for i, word in enumerate(words):
                if word[:1].isupper():
                    if i > 0:
                        self.capitalised.add(word)
                    if i > 0 and words[i - 1][:1].isupper() and words[i - 1].lower() in first:
                        self.surnames.add(word)
                elif word[:1].islower():
                    self.lower.add(word.lower())


NO_CONTEXT = ArticleContext()


def token_features(
    tokens: list[str],
    gazetteer_tags: list[str | None],
    lower_words: frozenset[str],
    headline: bool,
    context: ArticleContext = NO_CONTEXT,
    clusters: dict[str, list[int]] | None = None,
) -> list[list[str]]:
    """One list of feature strings per token: the word, its shape, affixes, neighbours, the gazetteer,
    whether the word is also seen in lower case (a capitalised common word at a sentence start), and for a
    capitalised word its word clusters (`builder.learn.unlabelled`; each granularity) and its neighbours'
    (the coarsest)."""
    n = len(tokens)
    lowers = [t.lower() for t in tokens]
    shapes = [shape(t) for t in tokens]
    sentence = ["headline"] if headline else []
    runs = capital_runs(tokens)
    from builder.learn import lexicons

    first, title_words = lexicons.first_names(), lexicons.titles()
    place = lexicons.place_tags(tokens)
    rows = []
    for i, token in enumerate(tokens):
        low = lowers[i]
        f = ["b", "w=" + low, "s=" + shapes[i], "p3=" + low[:3], "x3=" + low[-3:], "x2=" + low[-2:], *sentence]
        run = runs[i]
        if run is not None:
            start, end = run
            position = "S" if end - start == 1 else "B" if i == start else "E" if i == end - 1 else "I"
            f += [
                "r=" + position,
                f"rl={min(end - start, 4)}",
                "rf=" + lowers[start],
                "rz=" + lowers[end - 1],
                "rp=" + (lowers[start - 1] if start > 0 else "BOS"),
            ]
        if token[:1].isupper():
            f.append("cap")
            if low in lower_words:
                f.append("lowseen")
            if i == 0:
                f.append("cap0")
        if gazetteer_tags[i]:
            f.append("g=" + gazetteer_tags[i])
        if token[:1].isupper() and low in first:
            f.append("fn")
        if i > 0 and tokens[i - 1][:1].isupper() and lowers[i - 1] in first:
            f.append("-1fn")
        if low.rstrip(".") in title_words:
            f.append("title")
        if i > 0 and lowers[i - 1].rstrip(".") in title_words:
            f.append("-1title")
        if place[i]:
            f.append("pl=" + place[i])
        if token[:1].isupper():
            if token in context.capitalised:
                f.append("dcap")
            if low in context.lower:
                f.append("dlow")
            if token in context.surnames:
                f.append("dsur")
            if token in context.in_names:
                f.append("dname")
        if clusters and token[:1].isupper():  # a capitalised word's clusters, and its neighbours' coarsest
            f += [f"c{g}={c}" for g, c in enumerate(clusters.get(token, ()))]
            if i > 0 and tokens[i - 1] in clusters:
                f.append(f"-1c0={clusters[tokens[i - 1]][0]}")
            if i < n - 1 and tokens[i + 1] in clusters:
                f.append(f"+1c0={clusters[tokens[i + 1]][0]}")
        if i > 0:
            f += ["-1w=" + lowers[i - 1], "-1s=" + shapes[i - 1], "-1ww=" + lowers[i - 1] + "|" + low]
            if gazetteer_tags[i - 1]:
                f.append("-1g=" + gazetteer_tags[i - 1])
            if i > 1:
                f.append("-2w=" + lowers[i - 2])
        else:
            f.append("BOS")
        if i < n - 1:
            f += ["+1w=" + lowers[i + 1], "+1s=" + shapes[i + 1], "+1ww=" + low + "|" + lowers[i + 1]]
            if gazetteer_tags[i + 1]:
                f.append("+1g=" + gazetteer_tags[i + 1])
            if i < n - 2:
                f.append("+2w=" + lowers[i + 2])
        else:
            f.append("EOS")
        rows.append(f)
    return rows


CONNECTORS = frozenset({"of", "the", "and", "for", "de", "on", "in", "&", "-", "."})


def capital_runs(tokens: list[str]) -> list[tuple[int, int] | None]:
    """For each token, the (start, end) of the run of capitalised tokens it is in (connectors such as
    "of" or "and" between two capitalised tokens included), else None."""
    n = len(tokens)
    capital = [t[:1].isupper() for t in tokens]
    inside = list(capital)
    for i in range(1, n - 1):
        if not capital[i] and tokens[i] in CONNECTORS and capital[i - 1] and capital[i + 1]:
            inside[i] = True
    out: list[tuple[int, int] | None] = [None] * n
    i = 0
    while i < n:
        if not inside[i]:
            i += 1
            continue
        j = i
        while j < n and inside[j]:
            j += 1
        for k in range(i, j):
            out[k] = (i, j)
        i = j
    return out


def bio_tags(tokens: list[tuple[str, int, int]], spans: list[dict]) -> list[str]:
    """BIO tags of `tokens` from character spans; a token belongs to a span it lies inside."""
    tags = ["O"] * len(tokens)
    for span in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        inside = [i for i, (_, s, e) in enumerate(tokens) if s >= span["start"] and e <= span["end"]]
        if not inside or any(tags[i] != "O" for i in inside):
            continue
        for k, i in enumerate(inside):
            tags[i] = ("B-" if k == 0 else "I-") + span["label"]
    return tags


def spans_from_tags(tokens: list[tuple[str, int, int]], tags: list[str]) -> list[tuple[int, int, str, list[int]]]:
    """(start, end, label, token indices) of each tagged span; an I- after O or another label starts one."""
    spans: list[tuple[int, int, str, list[int]]] = []
    current: list | None = None
    for i, tag in enumerate(tags):
        if tag == "O":
            current = None
            continue
        prefix, label = tag.split("-", 1)
        if prefix == "B" or current is None or current[2] != label:
            current = [tokens[i][1], tokens[i][2], label, [i]]
            spans.append(current)
        else:
            current[1] = tokens[i][2]
            current[3].append(i)
    return [tuple(s) for s in spans]


def target_key(target: str) -> str:
    return hashlib.sha256(" ".join(target.split()).lower().encode()).hexdigest()[:8]


def stance_terms(text: str, target: str = "") -> list[str]:
    """Words and word pairs of the sentence, and the same words tied to its stance target (so one model
    serves sentences about several targets without mixing what a word means for each)."""
    words = [w.lower() for w in re.findall(r"\w+", text)]
    terms = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    if target:
        key = target_key(target)
        terms += [f"{key}:{w}" for w in words]
    return terms
