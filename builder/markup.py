"""User strings in builder's Markdown: the dataset card, CHANGELOG.md and `builder diff`.

Article and sentence ids, sentence and span texts and prediction model versions come from articles,
annotators and Label Studio, not from the maintainer. Written raw into Markdown, a newline and `# `
make a heading (and a `## ` line a CHANGELOG.md entry that `builder verify` then reads), `[x](url)` or
a bare URL a live link, `<script>` an HTML tag, and a backtick ends a code span early. Every such
string goes through `code` or `quoted` here, at the point where it is written, so that even ids
already in a snapshot or an old release render inert and on one line.

An ordinary string (what every id builder makes, and nearly every sentence, looks like) is written
exactly as before, so cards of existing releases rebuild byte for byte; any other is shown as its
JSON string (control, format and line-separator characters, backticks and `<`, `>`, `&` as `\\uXXXX`
escapes) in a code span, which Markdown and HTML renderers print literally (and which holds no tag even
for a reader that is not Markdown-aware). That form holds no backtick but its
fences and no line break, so no pattern `builder verify` reads from a card or changelog can match
inside it.
"""

from __future__ import annotations

import json
import unicodedata

# Categories that are not shown as themselves: controls (NUL, newlines, escapes), format characters
# (bidirectional overrides, zero-width), line and paragraph separators, surrogates, private and unassigned.
_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}

# Characters that start Markdown or HTML markup inside a line: code spans, escapes, tags and entities, links.
_MARKUP = set("`\\<>[]&")

# Text that GitHub-flavoured Markdown turns into a link by itself.
_AUTOLINKS = ("://", "www.", "@")


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN


def _as_json(text: str) -> str:
    """`text` as a JSON string with every hidden character, backtick and `<>&` escaped (still valid JSON)."""
    out = []
    for char in json.dumps(text, ensure_ascii=False):
        if char in "`<>&" or _hidden(char):
            code = ord(char)
            if code > 0xFFFF:  # as JSON writes it: a surrogate pair
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _plain_code(text: str) -> bool:
    """Whether `text` can stand in a one-backtick code span as it is."""
    return (
        bool(text)
        and "`" not in text
        and not any(_hidden(c) for c in text)
        and not (text.startswith(" ") and text.endswith(" "))  # a code span would drop those spaces
        and not text.startswith('"')  # so that a span's content starting with " is always the JSON form
    )


def code(text: str) -> str:
    """`text` as an inline code span on one line: `` `text` `` for an ordinary id, else its JSON string."""
    text = str(text)
    return f"`{text}`" if _plain_code(text) else f"`{_as_json(text)}`"


def uncode(content: str) -> str:
    """The string a code span written by `code` shows (its content between the backticks)."""
    if content.startswith('"'):
        try:
            value = json.loads(content)
        except ValueError:
            return content
        return value if isinstance(value, str) else content
    return content


def plain_text(text: str) -> bool:
    """Whether `text` reads the same in running Markdown and HTML as it is (no markup, no link, one line)."""
    return (
        not any(_hidden(c) for c in text)
        and not any(c in _MARKUP for c in text)
        and not any(link in text.lower() for link in _AUTOLINKS)
    )


def quoted(text: str, quote: str = '"') -> str:
    """`text` between `quote`s in running Markdown when it is plain, else as a code span of its JSON string."""
    text = str(text)
    return f"{quote}{text}{quote}" if plain_text(text) else f"`{_as_json(text)}`"


def single_quoted(text: str) -> str:
    """`quoted` with single quotes, as span texts are shown."""
    return quoted(text, "'")
