"""Gold questions mixed into the sentences a push imports, so that annotators cannot tell them apart.

`builder push` imports each gold question (`[quality] gold`, read by `builder.gold.answers`) once,
as one more task among the sentences, at the rate `[quality] gold_rate`: the share of the tasks a
push imports that are gold questions. After `n` ordinary sentences the project is due
`floor(n * rate / (1 - rate))` gold questions (19 sentences per gold question at 0.05), counted over
the whole project, so that small pushes add up and a re-push (no new sentence) adds none. A gold
question falls due after the sentence that completes its share; it waits for the next article
boundary (between the last sentence of one article and the first of the next, where a sentence of
another article does not stand out) for at most one share of sentences, and goes in there. Gold
questions are taken in the gold file's order, those already in the project skipped; when every one
is in the project, the slots stay empty (counted, and said by `builder push`): each gold question
is one task, so the rate is capped by how many gold questions there are.

A gold task is made like any other (`builder.labelstudio.push.task_for`: the same data fields, the
same pre-annotations) and its known answer is never sent. The gold file is refused, one line naming
its line and field, when a gold id or article id says "gold", when a gold question is one of the
sentences being pushed (it would never reach the dataset), or when it lacks a field the sentences
being pushed have (its task would show an empty cell where theirs show a value).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from builder.errors import InputError
from builder.gold.answers import project_gold
from builder.project import Project
from builder.sentences.segmenter import LEGACY_OCCURRENCE_LIMIT, find_occurrence

# Fields a sentence may lack (builder.model.SENTENCE_FIELDS) and `builder split` always writes; `target`
# is not among them: a task without its own target shows the project's.
OPTIONAL_FIELDS = ("article_title", "occurrence", "prev_text", "next_text")
TELLING = "gold"


def gold_ratio(rate: float) -> Fraction:
    """Gold questions per ordinary sentence for the share `rate` of all tasks: rate / (1 - rate), exactly.

    The rate is taken as the decimal the project file wrote (0.05 is 1/20, not its binary approximation)."""
    share = Fraction(repr(float(rate)))
    if not 0 <= share < 1:
        raise ValueError(f"gold rate must be in [0, 1), not {rate!r}")
    return share / (1 - share)


def gold_due(ordinary: int, ratio: Fraction) -> int:
    """How many gold questions a project of `ordinary` sentences is due at `ratio` gold per sentence."""
    return math.floor(ordinary * ratio)


@dataclass
class MixCount:
    """What `mix_gold` did: gold questions placed, and slots left empty for want of unused gold questions."""

    gold: int = 0
    short: int = 0
    placed_after: list[int] = field(default_factory=list)  # ordinary count at each gold question placed


def mix_gold(
    sentences: Iterable[dict],
    gold: Iterable[dict],
    rate: float,
    before: int = 0,
    count: MixCount | None = None,
) -> Iterator[tuple[dict, bool]]:
    """Each of `sentences` as (sentence, False), with gold questions from `gold` as (question, True) among them.

    `before`: ordinary sentences already in the project (the slots continue from there). A gold
    question is due each time the ordinary count reaches its share (see the module's docstring); it
    is placed at the next change of `article_id`, or at the latest a share of sentences after it fell
    due, and at the end. Lazy: each ordinary sentence is yielded before the next is read.
    """
    count = MixCount() if count is None else count
    ratio = gold_ratio(rate)
    if ratio == 0:
        for sentence in sentences:
            yield sentence, False
        return
    window = max(1, math.floor(1 / ratio))  # sentences a due gold question may wait for an article boundary
    questions = iter(gold)
    waiting: deque[int] = deque()  # the ordinary count at which each waiting gold question fell due
    seen = before
    article = None

    def place(n: int) -> Iterator[tuple[dict, bool]]:
        for _ in range(n):
            waiting.popleft()
            question = next(questions, None)
            if question is None:
                count.short += 1
                continue
            count.gold += 1
            count.placed_after.append(seen)
            yield question, True

    for sentence in sentences:
        if waiting and sentence["article_id"] != article:
            yield from place(len(waiting))
        yield sentence, False
        article = sentence["article_id"]
        seen += 1
        waiting.extend([seen] * (gold_due(seen, ratio) - gold_due(seen - 1, ratio)))
        if waiting and seen - waiting[0] >= window:
            yield from place(1)
    yield from place(len(waiting))


@dataclass(frozen=True)
class GoldQuestions:
    """A project's gold questions as a push sends them: by sentence id, in the gold file's order, each
    without its answer (the sentence only) and with the "FILE:LINE" it came from."""

    path: Path
    sentences: dict[str, dict]
    lines: dict[str, str]

    def __len__(self) -> int:
        return len(self.sentences)


def gold_questions(project: Project) -> GoldQuestions | None:
    """The project's gold questions for `builder push`, checked; None when it has no gold file.

    Refuses (InputError "FILE:LINE: field ...") an id or article id with "gold" in it (an annotator
    sees both in the Data Manager). A question without `occurrence` gets it from its id when the id
    is `builder split`'s hash of its article id and text."""
    from builder.sentences.splitting import iter_numbered_sentences

    answers = project_gold(project)  # every line checked: labels, spans, ids given twice
    if project.gold_path is None:
        return None
    lines = {sentence["id"]: where for where, sentence in iter_numbered_sentences(project.gold_path)}
    sentences = {}
    for sentence_id, answer in answers.items():
        sentence = dict(answer.sentence)
        for key in ("id", "article_id"):
            if TELLING in sentence[key].casefold():
                raise InputError(
                    f"{lines[sentence_id]}: field '{key}': {sentence[key]!r} says '{TELLING}', and annotators see it "
                    "in Label Studio; give the gold question the ids `builder split` gave its sentence"
                )
        if sentence.get("occurrence") is None:
            limit = min(sentence["sentence_index"], LEGACY_OCCURRENCE_LIMIT)
            sentence["occurrence"] = find_occurrence(sentence["article_id"], sentence["text"], sentence_id, limit)
        sentences[sentence_id] = sentence
    return GoldQuestions(project.gold_path, sentences, lines)


def check_pushed(
    numbered: Iterable[tuple[str | None, dict]],
    gold: GoldQuestions | None,
    again: Callable[[], Iterable[tuple[str | None, dict]]] | None = None,
) -> int:
    """Count the sentences to push (("FILE:LINE" or None, sentence) pairs), checking them against the gold questions.

    Refuses (InputError naming the gold file's line and field) a gold question that is also one of
    the sentences, or one that lacks an optional field the sentences have. Refuses a sentence id given
    twice (naming both lines, which `again()`, the same pairs read again, finds), since Label Studio
    would get only the first. Holds no list of sentences: 16 bytes of digest per sentence."""
    total = 0
    present: set[str] = set()
    digests = bytearray()
    for where, sentence in numbered:
        total += 1
        digests += hashlib.blake2b(sentence["id"].encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if gold is None:
            continue
        sentence_id = sentence["id"]
        if sentence_id in gold.sentences:
            pushed = f" ({where})" if where else ""
            raise InputError(
                f"{gold.lines[sentence_id]}: field 'id': sentence '{sentence_id}' is also one of the sentences "
                f"being pushed{pushed}: a gold question never reaches the dataset; take it out of one of the files"
            )
        if len(present) < len(OPTIONAL_FIELDS):
            present.update(f for f in OPTIONAL_FIELDS if sentence.get(f) is not None)
    repeat = _first_repeat(digests)
    if repeat is not None and again is not None:
        _refuse_repeat(again(), *repeat)
    if gold is not None and present:
        for sentence_id, sentence in gold.sentences.items():
            for name in OPTIONAL_FIELDS:
                if name in present and sentence.get(name) is None:
                    raise InputError(
                        f"{gold.lines[sentence_id]}: field '{name}' is missing: the sentences being pushed have it, "
                        "and a gold task without it would stand out; take gold questions from `builder split` output"
                    )
    return total


def _first_repeat(digests: bytearray) -> tuple[int, int] | None:
    """(first, second) positions of the repeated digest whose second place comes first, or None.

    Sorts the 16-byte digests in place of a copy (a stable sort keeps equal ones in reading order): about 24
    more bytes per sentence while it runs, on top of the digests."""
    import numpy as np

    if len(digests) < 32:
        return None
    keys = np.frombuffer(digests, dtype="V16")  # a view: no copy of the digests
    order = np.argsort(keys, kind="stable")  # equal digests together, each group in reading order
    ranked = keys[order]
    same = np.flatnonzero(ranked[1:] == ranked[:-1])  # ranked[i + 1] repeats ranked[i]
    del ranked
    if not len(same):
        return None
    # The smallest later position of a repeat is the second place of its digest, right after the first.
    at = int(same[np.argmin(order[same + 1])])
    return int(order[at]), int(order[at + 1])


def _refuse_repeat(numbered: Iterable[tuple[str | None, dict]], first: int, second: int) -> None:
    wheres: dict[int, str | None] = {}
    sentence_id = ""
    for position, (where, sentence) in enumerate(numbered):
        if position in (first, second):
            wheres[position] = where
            sentence_id = sentence["id"]
        if position >= second:
            break
    if wheres.get(second) is None:  # sentences given in a list
        place, other = f"sentence {second + 1} of those given", f"sentence {first + 1}"
    else:
        place, other = wheres[second], f"line {str(wheres[first]).rsplit(':', 1)[-1]}"
    raise InputError(
        f"{place}: field 'id': sentence '{sentence_id}' is also {other}: a sentence is pushed once "
        "(a file given twice, or concatenated? take the repeat out, or run `builder split` again)"
    )
