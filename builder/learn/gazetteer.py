"""The gazetteer: every string an annotator already labelled, proposed again wherever it recurs.

It is `builder push --predictor gazetteer` (offered by builder.preannotate) and the span baseline `builder
train` prints beside its model's figures, so it lives in `builder.learn`, below both.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from builder.errors import InputError
from builder.jsonio import read_jsonl
from builder.model import ENTITIES, region


class GazetteerPredictor:
    """Finds every known entity string (whole words, longest first, never overlapping)."""

    name = "builder-gazetteer"
    version = "1"

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = dict(sorted(entries.items()))
        digest = hashlib.sha256(repr(self.entries).encode()).hexdigest()[:8]
        self.model_version = f"{self.name}/{self.version}+{digest}"
        surfaces = sorted(self.entries, key=lambda s: (-len(s), s))
        self.pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, surfaces)) + r")(?!\w)") if surfaces else None

    @classmethod
    def from_snapshot(cls, snapshot: Path, allowed_labels: Iterable[str]) -> GazetteerPredictor:
        """Learn surface -> label from the annotations in a snapshot (majority label per string).

        It only learns surface strings, so whatever is not usable (a task, annotation, result item
        or value of the wrong shape, an unknown label) is skipped; `builder validate` reports it.
        A line that is not JSON is a one-line InputError naming file and line.
        """
        allowed = set(allowed_labels)
        votes: dict[str, Counter] = defaultdict(Counter)
        if snapshot.is_file():

            def unreadable(where: str, detail: str) -> None:
                raise InputError(f"{where}: {detail}; run `builder validate` to see every problem")

            for task in read_jsonl(snapshot, unreadable):
                for annotation in _list(task.get("annotations") if isinstance(task, dict) else None):
                    if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                        continue
                    for item in _list(annotation.get("result")):
                        value = item.get("value") if isinstance(item, dict) else None
                        if not isinstance(value, dict) or item.get("from_name") != ENTITIES:
                            continue
                        labels, text = _list(value.get("labels")), value.get("text")
                        label = labels[0] if labels else None
                        if isinstance(label, str) and label in allowed and isinstance(text, str):
                            surface = text.strip()
                            if len(surface) >= 2:
                                votes[surface][label] += 1
        return cls({surface: counts.most_common(1)[0][0] for surface, counts in votes.items()})

    def predict(self, text: str) -> list[dict]:
        if self.pattern is None:
            return []
        return [region(m.start(), m.end(), m.group(), self.entries[m.group()]) for m in self.pattern.finditer(text)]


def _list(value: object) -> list:
    """`value` if it is a list, else an empty one (for reading hand-edited snapshots defensively)."""
    return value if isinstance(value, list) else []
