"""Reading the gold file: each gold question's sentence and its known answer, checked against the scheme.

The gold file (`[quality] gold` in builder.toml) holds one sentence per line in the shape
`builder split` writes, plus its known answer:

    {"id": ..., "article_id": ..., "sentence_index": 3, "text": ..., "start": 0, "end": 57,
     "stance": "against", "entities": [{"start": 0, "end": 11, "label": "ORG"}]}

A task is a gold question when its `sentence_id` is a gold sentence's `id`. A gold span must already be
trimmed as validation trims an annotator's (`builder.sentences.segmenter.span_core`), or it could never
be matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError
from builder.project import Project
from builder.sentences.segmenter import span_core

ANSWER_FIELDS = ("stance", "entities")


@dataclass(frozen=True)
class GoldAnswer:
    """A gold sentence (without its answer fields) and its known stance and entity spans."""

    sentence: dict
    stance: str | None  # None in an entities-only scheme
    entities: tuple[tuple[int, int, str], ...]  # (start, end, label), sorted


def read_gold(path: str | Path, project: Project) -> dict[str, GoldAnswer]:
    """Every gold question of `path`, by sentence id, checked against the project's labels.

    The first bad line raises InputError "FILE:LINE: field ..."; a sentence id given twice is refused."""
    from builder.sentences.splitting import iter_numbered_sentences

    path = Path(path)
    gold: dict[str, GoldAnswer] = {}
    stances, labels = set(project.stance_values), set(project.entity_values)
    for where, sentence in iter_numbered_sentences(path):
        stance = sentence.get("stance")
        # a gold question answers the scheme's own halves: an entities-only one no stance, a stance-only one no span
        if project.has_stance and stance not in stances:
            raise InputError(f"{where}: field 'stance' must be one of {sorted(stances)}, not {stance!r}")
        if not project.has_stance and stance is not None:
            raise InputError(f"{where}: field 'stance': this project's scheme has no stance (entities only)")
        entities = sentence.get("entities", [])
        if not project.has_entities and entities:
            raise InputError(f"{where}: field 'entities': this project's scheme has no entities (stance only)")
        if not isinstance(entities, list):
            raise InputError(f"{where}: field 'entities' must be a list of {{start, end, label}}")
        spans = []
        for i, span in enumerate(entities):
            if not isinstance(span, dict):
                raise InputError(f"{where}: field 'entities[{i}]' must be an object {{start, end, label}}")
            start, end, label = span.get("start"), span.get("end"), span.get("label")
            if type(start) is not int or type(end) is not int or not 0 <= start < end <= len(sentence["text"]):
                raise InputError(
                    f"{where}: field 'entities[{i}]' must have integers 0 <= start < end <= {len(sentence['text'])}"
                )
            if label not in labels:
                raise InputError(f"{where}: field 'entities[{i}].label' must be one of {sorted(labels)}, not {label!r}")
            core = span_core(sentence["text"], start, end)
            if core != (start, end):  # annotators' spans are trimmed so: this one could never be matched
                hint = f"give {core[0]}-{core[1]}" if core else "it is only whitespace"
                raise InputError(
                    f"{where}: field 'entities[{i}]': span {start}-{end} {sentence['text'][start:end]!r} "
                    "has surrounding whitespace, "
                    f"and annotators' spans are trimmed to their non-space core: {hint}"
                )
            if (start, end, label) in spans:
                raise InputError(f"{where}: field 'entities[{i}]': span {start}-{end} {label} is given twice")
            spans.append((start, end, label))
        if sentence["id"] in gold:
            raise InputError(f"{where}: field 'id': sentence '{sentence['id']}' is already a gold question")
        plain = {k: v for k, v in sentence.items() if k not in ANSWER_FIELDS}
        gold[sentence["id"]] = GoldAnswer(plain, stance, tuple(sorted(spans)))
    return gold


def project_gold(project: Project) -> dict[str, GoldAnswer]:
    """The project's gold questions (`[quality] gold`), or {} when it has none."""
    if project.gold_path is None:
        return {}
    if not project.gold_path.is_file():
        raise InputError(f"{project.source}: quality.gold: {project.gold_path} is not a file")
    return read_gold(project.gold_path, project)
