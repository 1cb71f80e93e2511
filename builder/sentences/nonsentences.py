"""Lines of an article that are not sentences to label: photo credits, datelines, bylines and headings.

`builder split` keeps them in the sentences file, at their place (offsets, indexes and ids hold, and
they stay context for their neighbours), marked with `set_aside` and the reason; `builder push` never
makes them tasks and counts them by reason. The rules are part of the splitter (`lines+rules/3`); each
reason is one pattern, explained beside it, and their precision was measured on GUM's news and interview
articles (bench/bench_split.py, tests/test_nonsentences.py).

Only whole pieces are set aside: a credit cut from its caption, a dateline cut from the sentence it ran
into (`dateline_end`), or a whole line for a byline or heading. A real sentence keeps its end punctuation,
which a heading never has, so "Yes." or "Image processing improved." stay sentences.
"""

from __future__ import annotations

import re

from builder.model import SET_ASIDE_REASONS

CREDIT, DATELINE, BYLINE, HEADING = SET_ASIDE_REASONS

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?"
)
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_CAPITALISED = r"[A-Z][\w'\u2019.-]*"
_PLACE = rf"{_CAPITALISED}(?: {_CAPITALISED}){{0,3}}"
# What opens the sentence a place dateline runs into ("Preston, Victoria, Australia On Saturday, ...").
_PLACE_FOLLOWERS = "On|In|At|The|A|An|After|Before|When|Wikinews|Officials|Police"
# A dateline opens its line: a date ("Monday, May 4, 2015"), a wire dateline ("WASHINGTON (AP) \u2014",
# "BEIRUT, Lebanon, May 4 (Reuters) -"), or a place of two or more parts before a sentence opener ("Preston,
# Victoria, Australia On Saturday, ..."). A date or place alone on its line is a dateline too.
_DATELINE = re.compile(
    rf"(?P<date>(?:{_WEEKDAY},? )?{_MONTH} \d{{1,2}},? \d{{4}})(?=\s*$|\s+[A-Z\"\u201c])"
    rf"|(?P<wire>[A-Z][A-Z'.-]+(?: [A-Z][A-Z'.-]+){{0,3}}(?:, {_PLACE})*(?:,? {_MONTH} \d{{1,2}})?"
    rf"(?: \([A-Z][\w .&-]*\))? ?(?:\u2014|\u2013|--|-))(?=\s+\S)"
    rf"|(?P<place>{_PLACE}(?:, {_PLACE}){{1,3}})(?= (?:{_PLACE_FOLLOWERS})\b)"
)
# A photo credit: "Image: Mathias Krumbholz.", "Photo: AP", "Shimon Peres image: David Shankbone.", "(AP Photo/Evan
# Vucci)", "Photo by Jane Doe", "Image courtesy of NASA". Short (at most CREDIT_WORDS words): a long
# "Source: ..." line is a sentence.
_CREDIT = re.compile(
    r"\(?(?:(?:[\w'\u2019-]+ ){0,3}(?:image|photo|photograph|picture|video|audio|credit|courtesy)s?\s*[:;]\s*\S"
    r"|(?:image|photo|photograph|picture)s? (?:by|courtesy of|credit:?) [A-Z]"
    r"|[A-Z]+ Photos?/)",
    re.IGNORECASE,
)
CREDIT_WORDS = 12
# A byline on its own line: "By Jane Doe", "By Jane Doe and John Smith, Associated Press"; "By Monday" is a time.
_BYLINE = re.compile(
    rf"(?:By|BY|Reporting by|Written by|Story by) (?!{_WEEKDAY}\b|{_MONTH}\b|Then\b|Now\b|The\b)"
    r"[A-Z][\w'\u2019.-]*(?: (?:[A-Z][\w'\u2019.-]*|and|&|de|van|von|der|la|le|du))*"
    r"(?:, [A-Z][\w'\u2019.-]*(?: [A-Z][\w'\u2019.-]*)*)?\.?"
)
# A heading: a whole line of at most HEADING_WORDS words, not the first line (the headline, a sentence to
# label), beginning with a capital or a digit and ending in a letter or digit: no end punctuation, no colon
# announcing what follows, no dash of speech broken off.
HEADING_WORDS = 6
_HEADING_END = re.compile(r"[^\W_]\Z")


def dateline_end(line: str) -> int | None:
    """Where a dateline opening `line` ends (before the sentence it runs into), or None when none does."""
    match = _DATELINE.match(line)
    return match.end() if match else None


def set_aside_reason(piece: str, line: str, offset: int, first_line: bool) -> str | None:
    """Why `piece` (a span of the splitter) is not a sentence to label, or None when it is one.

    `line`: its line without surrounding spaces, `piece` starting at `offset` in it; `first_line`: that line
    is the article's first (the headline)."""
    whole_line = offset == 0 and len(piece) == len(line)
    if offset == 0 and dateline_end(line) == len(piece):
        return DATELINE
    if len(piece.split()) <= CREDIT_WORDS and _CREDIT.match(piece):
        return CREDIT
    if whole_line and _BYLINE.fullmatch(piece):
        return BYLINE
    if (
        whole_line
        and not first_line
        and len(piece.split()) <= HEADING_WORDS
        and (piece[0].isupper() or piece[0].isdigit())
        and _HEADING_END.search(piece)
        and piece.isprintable()  # a typeset heading holds no control character (NUL, tab, ...)
    ):
        return HEADING
    return None
