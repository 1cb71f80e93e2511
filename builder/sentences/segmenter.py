"""Sentence splitting with character offsets into the stored article text.

The text is first cut into lines (headlines, datelines and captions stand on their own line in
news text) and before photo credits, then each line goes to a splitter: builder's own `rules` by
default (one compiled regular expression finds every candidate end, a few word lists repair its
typical errors), or a library splitter (kept as baselines for bench/bench_split.py). Spans are
trimmed of surrounding whitespace, so `article["text"][start:end] == sentence["text"]` always holds.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from builder.report import Report
from builder.sentences.nonsentences import dateline_end, set_aside_reason

Spans = list[tuple[int, int]]


def _blingfire(line: str) -> Spans:
    import blingfire

    _, offsets = blingfire.text_to_sentences_and_offsets(line)
    return list(offsets)


def _segtok(line: str) -> Spans:
    from segtok.segmenter import split_multi

    return _align(line, split_multi(line))


def _syntok(line: str) -> Spans:
    from syntok import segmenter

    spans = []
    for paragraph in segmenter.analyze(line):
        for sentence in paragraph:
            start = sentence[0].offset
            last = sentence[-1]
            spans.append((start, last.offset + len(last.value)))
    return spans


def _pysbd(line: str) -> Spans:
    return [(s.start, s.end) for s in _pysbd_segmenter().segment(line)]


_PYSBD = None


def _pysbd_segmenter():
    global _PYSBD
    if _PYSBD is None:
        import pysbd

        _PYSBD = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return _PYSBD


def _sentencex(line: str) -> Spans:
    from sentencex import get_sentence_boundaries

    return [(b["start_index"], b["end_index"]) for b in get_sentence_boundaries("en", line)]


def _align(line: str, pieces: Iterable[str]) -> Spans:
    """Offsets of `pieces` found in order in `line` (for splitters that return strings only)."""
    spans, position = [], 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        start = line.find(piece, position)
        if start < 0:  # the splitter changed the text; fall back to the rest of the line
            spans.append((position, len(line)))
            return spans
        spans.append((start, start + len(piece)))
        position = start + len(piece)
    return spans


# --- builder's own splitter: one regex pass, then a measured repair of its typical errors ----------------
# A candidate end: terminal punctuation, closing quotes or brackets, whitespace, then what can start a
# sentence (a capital or a digit, maybe after an opening quote or bracket). A lowercase word never starts one.
# A match starts only where a run of end punctuation starts: tried again inside a run ("!!!!...", a line of
# dots) it would scan the rest of the run from every character, quadratic in the run's length.
_END = re.compile(
    r"""(?<![.!?\u2026])([.!?\u2026]+)["'\u201d\u2019\u201c\u2018\u00bb)\]]*\s+"""
    r"""(?=["'\u201c\u2018\u00ab(\[]*[A-Z0-9\u00c0-\u00d6\u00d8-\u00de\u0391-\u03a9\u0410-\u042f])"""
)
# After a period, the word before it decides (lowercased, its own periods kept):
# titles before a name never end a sentence ("Mr. Smith", "Gen. Lee", "St. Louis"), nor does the number of a
# list item at the start of its line;
_TITLES = frozenset(
    """mr mrs ms messrs dr prof st mt ft gen col lt maj sgt capt cmdr adm gov sen rep rev hon pres supt insp det
    cpl pvt mme mlle""".split()
)
# these stand before a number ("No. 10", "Jan. 5", "Fig. 3") and end a sentence before anything else;
_BEFORE_NUMBER = frozenset("no nos vol fig art p pp ch sec jan feb mar apr jun jul aug sep sept oct nov dec".split())
# these, an initial ("L. Ron Hubbard") and a dotted acronym ("U.S.", "K.C.", "a.m.") end a sentence only
# before a word that usually starts one ("... to the U.S. The President" but "K.C. Maurer").
_AMBIGUOUS = frozenset("inc ltd co corp bros jr sr etc est vs approx dept univ assn".split())
_STARTERS = frozenset(
    """The A An He She It They We I You In On At But And This That These Those There His Her Its Their Our My
    As After When While If However Meanwhile According So Yet For Some Many Most Other Others Both""".split()
)
_NEXT_WORD = re.compile(r"""["'\u201c\u2018\u00ab(\[]*([\w'\u2019]+)""")
_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?\.?")
_OPENERS = "\"'\u201c\u2018\u00ab(["
_LAST_WORD = re.compile(r"\S*\Z")
_LIST_ITEM = re.compile(r"\s*\d{1,3}\.")  # "1. The first point": a numbered item starts its line
_WORD_WINDOW = 24  # longer than any word in the lists above, and than most acronyms


def _rules(line: str) -> Spans:
    """Spans of one line: every candidate end found by `_END`, less the periods of abbreviations and initials."""
    spans, start = [], 0
    for match in _END.finditer(line):
        if match.group(1) == "." and not _ends_after_period(line, match):
            continue
        spans.append((start, match.start() + len(match.group().rstrip())))
        start = match.end()
    spans.append((start, len(line)))
    return spans


def _ends_after_period(line: str, match: re.Match) -> bool:
    """Whether a single period before a sentence-like start ends a sentence (not an abbreviation or initial)."""
    period = match.start()
    # the word before the period, looked for in a bounded window so that a line without spaces stays linear
    word = _LAST_WORD.search(line, max(0, period - _WORD_WINDOW), period).group().lstrip(_OPENERS)
    bare = word.lower()
    if bare in _TITLES or (bare.isdigit() and _LIST_ITEM.fullmatch(line, 0, period + 1)):
        return False
    if bare in _BEFORE_NUMBER:
        return not line[match.end() : match.end() + 1].isdigit()
    if bare in _AMBIGUOUS or (len(word) == 1 and word.isupper()) or _ACRONYM.fullmatch(word):
        following = _NEXT_WORD.match(line, match.end())
        return following is not None and following.group(1) in _STARTERS
    return True


ENGINES: dict[str, Callable[[str], Spans]] = {
    "blingfire": _blingfire,
    "segtok": _segtok,
    "syntok": _syntok,
    "pysbd": _pysbd,
    "sentencex": _sentencex,
    "rules": _rules,
}
DEFAULT_ENGINE = "rules"
# Part of every splitter name: 2 since the default engine is `rules` (every output before it says lines+segtok/1);
# 3 since datelines are cut from the sentence they run into and non-sentences are set aside (nonsentences.py).
SPLITTER_VERSION = "3"
# Context copied into every sentence record (title, neighbours) is bounded, so output stays linear in input.
CONTEXT_MAX = 1000

_LINE = re.compile(r"[^\n]+")
# Captions run into their credit without punctuation ("Belle Image: Nick Moreau."): the credit starts a sentence.
_CREDIT = re.compile(r"(?<=\S) (?=(?:Image|Photo|Video|Credit|Source): )")


def splitter_name(engine: str = DEFAULT_ENGINE) -> str:
    """Versioned component name recorded in outputs, e.g. `lines+rules/3`."""
    return f"lines+{engine}/{SPLITTER_VERSION}"


def splitter_summary() -> str:
    """The default splitter as a dataset card names it: its versioned name and what it does."""
    return (
        f"`{splitter_name()}` (newlines, datelines and photo credits first, then end punctuation before a capital,\n"
        "   keeping abbreviations, initials and acronyms inside the sentence; credits, datelines, bylines and\n"
        "   headings kept as context, not labelled)"
    )


def sentence_spans(text: str, engine: str = DEFAULT_ENGINE) -> Spans:
    """Sentence spans of `text`: split on newlines, then with `engine`; trimmed, ordered, non-overlapping."""
    spans: Spans = []
    for _, line_spans in _spans_by_line(text, engine):
        spans.extend(line_spans)
    return spans


def classified_spans(text: str, engine: str = DEFAULT_ENGINE) -> list[tuple[int, int, str | None]]:
    """`sentence_spans(text)`, each with why it is set aside (credit, dateline, byline, heading) or None."""
    found: list[tuple[int, int, str | None]] = []
    first_line = True
    for line, line_spans in _spans_by_line(text, engine):
        if not line_spans:
            continue
        core_start, core_end = span_core(text, line.start(), line.end()) or (line.start(), line.end())
        core = text[core_start:core_end]
        for start, end in line_spans:
            reason = set_aside_reason(text[start:end], core, start - core_start, first_line)
            found.append((start, end, reason))
        first_line = False
    return found


def _spans_by_line(text: str, engine: str) -> Iterator[tuple[re.Match, Spans]]:
    """Each line of `text` with its sentence spans (absolute offsets)."""
    split_line = ENGINES[engine]
    for match in _LINE.finditer(text):
        spans: Spans = []
        for line, base in _segments(match.group(), match.start()):
            _add_line_spans(spans, line, base, split_line)
        yield match, spans


def _segments(line: str, base: int) -> Iterator[tuple[str, int]]:
    """A line cut after a dateline opening it and before photo credits; each piece with its offset."""
    start = 0
    dateline = dateline_end(line.lstrip())
    if dateline is not None:
        start = len(line) - len(line.lstrip()) + dateline
        if line[start:].strip():  # a dateline alone on its line is just the line
            yield line[:start], base
        else:
            start = 0
    for cut in _CREDIT.finditer(line, start):
        yield line[start : cut.start()], base + start
        start = cut.end()
    yield line[start:], base + start


def _add_line_spans(spans: Spans, line: str, base: int, split_line: Callable[[str], Spans]) -> None:
    if line.strip():
        for start, end in split_line(line) or [(0, len(line))]:
            core = span_core(line, start, end)
            if core is None:
                continue
            absolute = (base + core[0], base + core[1])
            if spans and absolute[0] < spans[-1][1]:  # never overlap: merge into the previous span
                spans[-1] = (spans[-1][0], max(spans[-1][1], absolute[1]))
            else:
                spans.append(absolute)


def sentence_id(article_id: str, text: str, occurrence: int = 0) -> str:
    """Stable id from the article id, the sentence text and which repeat of that text it is."""
    return hashlib.sha256(sentence_key(article_id, text, occurrence).encode("utf-8")).hexdigest()[:20]


def sentence_key(article_id: str, text: str, occurrence: int = 0) -> str:
    """What a sentence id hashes: distinct for distinct (article id, text, occurrence), see `sentence_key_prefix`."""
    prefix, always = sentence_key_prefix(article_id, text)
    return prefix + (f"\x00{occurrence}" if occurrence or always else "")


def sentence_key_prefix(article_id: str, text: str) -> tuple[str, bool]:
    """The key of a sentence id before its occurrence, and whether "NUL OCCURRENCE" always follows it (else not for 0).

    Every id so far hashes "ARTICLE_ID NUL TEXT", then "NUL OCCURRENCE" when the occurrence is not 0: a key
    with at most two NULs, which cannot be read back when the text (or article id) holds a NUL of its own
    ("x" repeated once and the text "x NUL 1" hashed the same). Such a pair is hashed as "NUL len(ARTICLE_ID)
    NUL len(TEXT) NUL ARTICLE_ID TEXT NUL OCCURRENCE" instead: at least five NULs, read back by its lengths.
    So the keys of distinct (article id, text, occurrence) are distinct (tests/test_segmenter.py reads them
    back), and every id without a NUL stays the id it always was.
    """
    if "\x00" in article_id or "\x00" in text:
        return f"\x00{len(article_id)}\x00{len(text)}\x00{article_id}{text}", True
    return f"{article_id}\x00{text}", False


# Tasks pushed before sentences carried `occurrence`: the id is searched among occurrences
# 0..min(sentence_index, LEGACY_OCCURRENCE_LIMIT); the limit bounds the work a hostile task costs.
LEGACY_OCCURRENCE_LIMIT = 1000


def find_occurrence(article_id: str, text: str, sid: str, limit: int) -> int | None:
    """The occurrence n <= `limit` with `sentence_id(article_id, text, n) == sid`, or None.

    Mirrors `sentence_id`, hashing the common prefix once so that each try costs the same whatever the
    text's length. Validation checks a pulled task's id with it, and a gold question without `occurrence`
    gets its occurrence from it.
    """
    if sentence_id(article_id, text) == sid:
        return 0
    prefix = hashlib.sha256(sentence_key_prefix(article_id, text)[0].encode())
    for occurrence in range(1, limit + 1):
        digest = prefix.copy()
        digest.update(f"\x00{occurrence}".encode())
        if digest.hexdigest()[:20] == sid:
            return occurrence
    return None


def sentence_id_matches(article_id: str, text: str, sid: str, occurrence: int | None, sentence_index: int) -> bool:
    """The sentence id is the hash of article id, text and occurrence (searched for when unknown)."""
    if occurrence is not None:
        return sentence_id(article_id, text, occurrence) == sid
    limit = min(sentence_index, LEGACY_OCCURRENCE_LIMIT)  # an occurrence never exceeds its index
    return find_occurrence(article_id, text, sid, limit) is not None


def span_core(text: str, start: int, end: int) -> tuple[int, int] | None:
    """(start, end) of `text[start:end]` without its surrounding whitespace; None when it is only whitespace.

    The one trimming rule: a sentence's span is cut so when the article is split, an annotator's entity span
    is trimmed so by validation, a gold span must already be so, and `builder quality` scores spans so."""
    piece = text[start:end]
    core = piece.strip()
    if not core:
        return None
    start += len(piece) - len(piece.lstrip())
    return start, start + len(core)


def context_before(text: str) -> str:
    """`text` as context before a sentence: its last CONTEXT_MAX characters, starting with '\u2026' when cut."""
    return text if len(text) <= CONTEXT_MAX else "\u2026" + text[len(text) - CONTEXT_MAX + 1 :]


def context_after(text: str) -> str:
    """`text` as context after a sentence, or a title: its first CONTEXT_MAX characters, '\u2026' at the end if cut."""
    return text if len(text) <= CONTEXT_MAX else text[: CONTEXT_MAX - 1] + "\u2026"


def split_article(article: dict, engine: str = DEFAULT_ENGINE) -> list[dict]:
    """Sentence records of one article, in order, each with its neighbours as context."""
    text = article["text"]
    classified = classified_spans(text, engine)
    spans = [(start, end) for start, end, _ in classified]
    texts = [text[start:end] for start, end in spans]
    title = context_after(article.get("title", ""))
    repeats: Counter = Counter()
    sentences = []
    for index, ((start, end), sentence) in enumerate(zip(spans, texts)):
        occurrence = repeats[sentence]
        repeats[sentence] += 1
        record = {
            "id": sentence_id(article["id"], sentence, occurrence),
            "article_id": article["id"],
            "article_title": title,
            "sentence_index": index,
            "occurrence": occurrence,  # which repeat of this text in the article: lets validation check the id exactly
            "text": sentence,
            "start": start,
            "end": end,
            "prev_text": context_before(texts[index - 1]) if index > 0 else "",
            "next_text": context_after(texts[index + 1]) if index + 1 < len(texts) else "",
            # not a sentence to label (a credit, dateline, byline or heading): kept as context, never pushed
            "set_aside": classified[index][2],
        }
        if article.get("target"):
            record["target"] = article["target"]
        sentences.append(record)
    return sentences


def split_articles(articles: Iterable[dict], report: Report, engine: str = DEFAULT_ENGINE) -> Iterator[dict]:
    """Sentence records for every article; articles that yield no sentence are reported."""
    for article in articles:
        sentences = split_article(article, engine)
        if not sentences:
            report.drop("no sentences", article["source"]["file"], f"article '{article['id']}' has no sentence")
            continue
        report.keep("sentences", len(sentences))
        for sentence in sentences:
            if sentence["set_aside"]:
                report.keep(SET_ASIDE_COUNT + sentence["set_aside"])
        yield from sentences


# How split's report counts the sentences set aside, by reason: "sentences set aside as credit".
SET_ASIDE_COUNT = "sentences set aside as "
