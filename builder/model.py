"""The shapes of builder's data, declared once: article, sentence, task, record, and the stance statuses.

Every other description of the data is generated from the declarations here:

- the JSON Schemas of a pulled task and of a published record (`task_schema`, `record_schema`,
  written to schema/ by `builder schema`; a test checks the committed files);
- the `datasets` features, hence the Parquet columns (`features`, `dataset_columns`);
- the field table of the dataset card (`card_field_table`);
- the checks `builder push` makes on a sentences file (`SENTENCE_FIELDS`).

The names of the labeling controls (`SENTENCE`, `ENTITIES`, `STANCE`) are the project's: an
annotation's result items carry them as `from_name`, and the Label Studio adapter builds its
labeling config with them. A test checks that the schema, the features and the card agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from builder.project import Project
from builder.pseudonyms import PATTERN

# The labeling controls: the sentence shown, its context, and what annotators produce.
SENTENCE = "sentence"
CONTEXT_BEFORE = "context_before"
CONTEXT_AFTER = "context_after"
ENTITIES = "entities"
STANCE = "stance"

# The dataset's shape has a version (the release manifest records it): format 1 is release 1.0.0's
# columns; format 2 adds `stance_distribution`; format 3 resolves entities (one label per extent, no
# overlapping spans: builder.records.aggregate.resolve_entities), each span of `entities` saying how it was
# decided (`status`), and adds `unresolved_entities`. A field declares the format that brought it (and the
# last that had it), and every generated description of the dataset takes the format it describes (the
# current one unless an older release is being rebuilt, with the aggregation of its time). Format 4 stores
# each annotation's `lead_time` as float64: float32 read back 15.6 s as 15.600000381469727.
DATASET_FORMAT = 4

# How a record's stance was decided (builder.records.aggregate), in the order the card lists them.
GROUND_TRUTH, UNANIMOUS, MAJORITY, TIE, NONE = "ground_truth", "unanimous", "majority", "tie", "none"
STANCE_STATUSES = (GROUND_TRUTH, UNANIMOUS, MAJORITY, TIE, NONE)
# How an aggregated entity span was decided (dataset format 3): a ground-truth annotation's (an adjudicator's),
# every annotator's, a strict majority's, or a conflict the vote could not decide (in `entities` only where
# the project keeps them: `[annotation] keep_unresolved_entities`).
UNRESOLVED = "unresolved"
ENTITY_STATUSES = (GROUND_TRUTH, UNANIMOUS, MAJORITY, UNRESOLVED)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Why `builder split` sets a piece of an article aside instead of making it a sentence to label
# (builder.sentences.nonsentences says how each is recognised).
SET_ASIDE_REASONS = ("credit", "dateline", "byline", "heading")
INT32_MAX = 2**31 - 1  # the dataset stores sentence_index, span offsets and num_annotators as int32
# Seconds an annotator spent on a task (Label Studio's lead_time): about 11.6 days at most, which
# covers a task left open over a holiday (float32, the type of dataset formats 1-3, holds it to 1/16 s).
LEAD_TIME_MAX = 1_000_000


def region(start: int, end: int, text: str, label: str) -> dict:
    """One Label Studio `labels` result item of the ENTITIES control; its id is derived from its content."""
    import hashlib

    region_id = hashlib.sha1(f"{start}:{end}:{label}".encode()).hexdigest()[:10]
    return {
        "id": region_id,
        "from_name": ENTITIES,
        "to_name": SENTENCE,
        "type": "labels",
        "value": {"start": start, "end": end, "text": text, "labels": [label]},
    }


def prediction_for(predictor, text: str, context=None, target: str | None = None) -> dict | None:
    """A Label Studio prediction for one sentence (a task's `predictions` item), or None if nothing is proposed.

    `predictor`: a pre-annotator (builder.preannotate) or the trained model (builder.learn.trained): what
    `builder push` attaches and `builder predict` writes are made here alike. Result items keep the
    scores a predictor gives them; a predictor with `score(text)` also scores the prediction as a whole.
    `context`: the sentence's article context (`builder.preannotate.article_contexts`), for a predictor that
    takes one. `target`: the sentence's own stance target (an article's `target`), for a predictor that
    suggests stances (the trained model suggests none for a target it never learned)."""
    if predictor is None:
        return None
    extra = {} if context is None else {"context": context}
    aimed = {"target": target} if target and getattr(predictor, "suggests_stance", False) else {}
    result = predictor.predict(text, **extra, **aimed)
    if not result:
        return None
    prediction = {"model_version": predictor.model_version, "result": result}
    if callable(getattr(predictor, "score", None)):
        prediction["score"] = predictor.score(text, **extra)
    return prediction


# --- the kinds of values a field holds; each says how it reads in a JSON Schema, a feature, the card


@dataclass(frozen=True)
class Text:
    non_empty: bool = False

    def json(self, project: Project) -> dict:
        return {"type": "string", "minLength": 1} if self.non_empty else {"type": "string"}

    def feature(self, project: Project):
        from datasets import Value

        return Value("string")

    def card(self, project: Project) -> str:
        return "string"


@dataclass(frozen=True)
class Integer:
    """A JSON integer of any size (Label Studio's own ids)."""

    def json(self, project: Project) -> dict:
        return {"type": "integer"}

    def card(self, project: Project) -> str:
        return "int"


@dataclass(frozen=True)
class Int32:
    minimum: int = 0
    nullable: bool = False

    def json(self, project: Project) -> dict:
        return {
            "type": ["integer", "null"] if self.nullable else "integer",
            "minimum": self.minimum,
            "maximum": INT32_MAX,
        }

    def feature(self, project: Project):
        from datasets import Value

        return Value("int32")

    def card(self, project: Project) -> str:
        return "int"


@dataclass(frozen=True)
class Seconds:
    """A lead time: seconds from 0 to LEAD_TIME_MAX, or null. `dtype`: float64 from dataset format 4, so that the
    seconds Label Studio gives (15.6) read back as given; float32 before."""

    dtype: str = "float64"

    def json(self, project: Project) -> dict:
        return {"type": ["number", "null"], "minimum": 0, "maximum": LEAD_TIME_MAX}

    def feature(self, project: Project):
        from datasets import Value

        return Value(self.dtype)

    def card(self, project: Project) -> str:
        return "float"


@dataclass(frozen=True)
class Share:
    """A number from 0 to 1, or null."""

    def json(self, project: Project) -> dict:
        return {"type": ["number", "null"]}

    def feature(self, project: Project):
        from datasets import Value

        return Value("float32")

    def card(self, project: Project) -> str:
        return "float"


@dataclass(frozen=True)
class StanceDistribution:
    """One share per stance label, in the order of the `stance` ClassLabel; each 0-1, together 1."""

    def json(self, project: Project) -> dict:
        n = len(project.stance_values)
        return {
            "type": "array",
            "minItems": n,
            "maxItems": n,
            "items": {"type": "number", "minimum": 0, "maximum": 1},
        }

    def feature(self, project: Project):
        from datasets import List, Value

        return List(Value("float32"))

    def card(self, project: Project) -> str:
        return "list of float"


@dataclass(frozen=True)
class Flag:
    def json(self, project: Project) -> dict:
        return {"type": "boolean"}

    def feature(self, project: Project):
        from datasets import Value

        return Value("bool")

    def card(self, project: Project) -> str:
        return "bool"


@dataclass(frozen=True)
class Pseudonym:
    """An annotator, as the pseudonym `builder pull` gives (never a name or an e-mail)."""

    def json(self, project: Project) -> dict:
        return {"type": "string", "pattern": PATTERN.pattern}

    def feature(self, project: Project):
        from datasets import Value

        return Value("string")

    def card(self, project: Project) -> str:
        return "string"


@dataclass(frozen=True)
class OneOf:
    """One of fixed strings, stored as a string."""

    values: tuple[str, ...]
    nullable: bool = False

    def json(self, project: Project) -> dict:
        return {"enum": [*self.values, None] if self.nullable else list(self.values)}

    def feature(self, project: Project):
        from datasets import Value

        return Value("string")

    def card(self, project: Project) -> str:
        return "string"


@dataclass(frozen=True)
class StanceLabel:
    """A stance label of the scheme; null when unresolved. A ClassLabel in the dataset (-1 when null)."""

    def json(self, project: Project) -> dict:
        return {"enum": [*project.stance_values, None]}

    def feature(self, project: Project):
        from datasets import ClassLabel

        return ClassLabel(names=project.stance_values)

    def card(self, project: Project) -> str:
        return f"ClassLabel ({', '.join(f'`{value}`' for value in project.stance_values)})"


@dataclass(frozen=True)
class EntityLabel:
    def json(self, project: Project) -> dict:
        return {"enum": project.entity_values}

    def feature(self, project: Project):
        from datasets import ClassLabel

        return ClassLabel(names=project.entity_values)

    def card(self, project: Project) -> str:
        return "ClassLabel"


@dataclass(frozen=True)
class BioTag:
    """A conll2003-style tag (O, B-X, I-X for each entity label): derived, never annotated."""

    def feature(self, project: Project):
        from datasets import ClassLabel

        return ClassLabel(names=project.bio_tags)

    def card(self, project: Project) -> str:
        return "ClassLabel"


@dataclass(frozen=True)
class ListOf:
    item: object

    def json(self, project: Project) -> dict:
        return {"type": "array", "items": self.item.json(project)}

    def feature(self, project: Project):
        from datasets import List

        return List(self.item.feature(project))

    def card(self, project: Project) -> str:
        return f"list of {self.item.card(project)}"


@dataclass(frozen=True)
class Field:
    """One field of a shape. `meaning` is the card's text for it (`{placeholders}` filled from the
    project); None joins the card row of the field before. `derived` fields are computed by the
    build (in the dataset, not in a record)."""

    name: str
    kind: object
    meaning: str | None = None
    required: bool = True
    derived: bool = False
    card_type: str | None = None  # instead of the kind's own card text
    since: int = 1  # the dataset format that brought the field
    until: int | None = None  # the last dataset format that had it (None: still current)
    in_task: bool = True  # a sentence field a pushed task's data may hold (SENTENCE_FIELDS)
    # The half of the scheme the field belongs to ("stance" or "entities"): a scheme without it has no such
    # field (no column, no schema property, no card row); None: a field of every scheme.
    part: str | None = None
    # The card's text for the field when a scheme leaves out every field its row joins (None: `meaning`).
    alone: str | None = None


@dataclass(frozen=True)
class Shape:
    """An object of named fields, in the order the dataset stores them."""

    name: str
    fields: tuple[Field, ...]
    closed: bool = False  # no other keys allowed (a record)

    def __getitem__(self, name: str) -> Field:
        return next(field for field in self.fields if field.name == name)

    @property
    def names(self) -> list[str]:
        return [field.name for field in self.fields]

    def of_format(self, dataset_format: int) -> Shape:
        """The shape as dataset format `dataset_format` has it (the fields it had then)."""
        kept = (f for f in self.fields if f.since <= dataset_format and (f.until is None or dataset_format <= f.until))
        return Shape(self.name, tuple(kept), self.closed)

    def of_scheme(self, project: Project) -> Shape:
        """The shape as `project`'s scheme has it: without the fields of a half (stance, entities) it leaves out."""
        return Shape(self.name, tuple(f for f in self.fields if project.labels(f.part)), self.closed)

    def stored(self) -> tuple[Field, ...]:
        """The fields a JSON record holds (derived ones are computed at build time)."""
        return tuple(field for field in self.fields if not field.derived)

    def json(self, project: Project) -> dict:
        fields = self.of_scheme(project).stored()
        schema: dict = {"type": "object", "required": [field.name for field in fields if field.required]}
        if self.closed:
            schema["additionalProperties"] = False
        schema["properties"] = {field.name: field.kind.json(project) for field in fields}
        return schema

    def feature(self, project: Project) -> dict:
        return {field.name: field.kind.feature(project) for field in self.of_scheme(project).fields}

    def card(self, project: Project) -> str:
        return "{" + ", ".join(self.of_scheme(project).names) + "}"


# --- the shapes

ARTICLE = Shape(
    "article",
    (
        Field("id", Text(non_empty=True), "the article's id (a JSON Lines input may give an integer)"),
        Field("text", Text(non_empty=True), "the article's text, newlines normalised, boilerplate removed"),
        Field("title", Text(), "its headline (a .txt file's first line)", required=False),
        Field("url", Text(), "where it was published", required=False),
        Field("published", Text(), "when", required=False),
        Field("target", Text(), "the stance target of its sentences, instead of the project's", required=False),
    ),
)
ARTICLE_OPTIONAL = tuple(field.name for field in ARTICLE.fields if not field.required)

SENTENCE_FIELDS = Shape(
    "sentence",
    (
        Field("id", Text(non_empty=True), "sentence id: a hash of the article id, the text and its occurrence"),
        Field("article_id", Text(non_empty=True)),
        Field("article_title", Text(), required=False),
        Field("sentence_index", Int32()),
        Field("occurrence", Int32(nullable=True), "which repeat of this text in its article", required=False),
        Field("text", Text(non_empty=True)),
        Field("prev_text", Text(), "the sentence before, as context", required=False),
        Field("next_text", Text(), "the sentence after, as context", required=False),
        Field("target", Text(), required=False),
        Field("start", Int32(), "character offsets into the article's text"),
        Field("end", Int32()),
        # Not a sentence to label (builder.sentences.nonsentences): kept in the file as context, never pushed,
        # so never in a task. Files split before `lines+rules/3` lack it (read as null).
        Field(
            "set_aside",
            OneOf(SET_ASIDE_REASONS, nullable=True),
            "why it is not labelled (credit, dateline, byline, heading), or null",
            required=False,
            in_task=False,
        ),
    ),
)
# A pushed task's data is the sentence, its id named `sentence_id`; a task needs only what a record is made of.
TASK_DATA_REQUIRED = ("sentence_id", "article_id", "sentence_index", "text")

SPAN = Shape(
    "span", (Field("start", Int32()), Field("end", Int32()), Field("label", EntityLabel()), Field("text", Text()))
)
# An aggregated span (dataset format 3): a span and how it was decided.
RESOLVED_SPAN = Shape("resolved span", (*SPAN.fields, Field("status", OneOf(ENTITY_STATUSES))))

ANNOTATION = Shape(
    "annotation",
    (
        Field("annotator", Pseudonym()),
        Field("stance", StanceLabel(), part="stance"),
        Field("entities", ListOf(SPAN), part="entities"),
        Field("lead_time", Seconds()),
        Field("ground_truth", Flag()),
    ),
    closed=True,
)
# An annotation as dataset formats 1-3 store it: `lead_time` as float32.
ANNOTATION_FLOAT32 = Shape(
    "annotation",
    tuple(Field("lead_time", Seconds("float32")) if f.name == "lead_time" else f for f in ANNOTATION.fields),
    closed=True,
)
ANNOTATIONS_MEANING = "every annotator's own {own_labels}, lead time (s) and ground-truth flag"

RECORD = Shape(
    "record",
    (
        Field("id", Text(), "sentence id: a hash of the article id and the sentence text"),
        Field("article_id", Text(), "the article and the sentence's position in it"),
        Field("sentence_index", Int32()),
        Field("text", Text(), "the sentence, and what its stance is about", alone="the sentence"),
        Field("target", Text(), part="stance"),
        Field("stance", StanceLabel(), "aggregated stance; -1 when unresolved (a tie)", part="stance"),
        Field("stance_status", OneOf(STANCE_STATUSES), "{statuses}", part="stance"),
        Field(
            "stance_distribution",
            StanceDistribution(),
            "share of each stance, in the order of `stance`'s labels ({stance_order}): among the annotations, "
            "or with Dawid-Skene aggregation the model's posterior; one-hot for a ground-truth annotation; "
            "for training on soft labels",
            since=2,
            part="stance",
        ),
        Field(
            "entities",
            ListOf(SPAN),
            "aggregated entity spans, character offsets into `text` (end exclusive)",
            until=2,
            part="entities",
        ),
        Field(
            "entities",
            ListOf(RESOLVED_SPAN),
            "aggregated entity spans, character offsets into `text` (end exclusive), at most one label per "
            "extent and none overlapping another (but a ground-truth annotation's, or unresolved ones a project "
            "keeps); `status`: {entity_statuses}",
            since=3,
            part="entities",
        ),
        Field(
            "unresolved_entities",
            ListOf(SPAN),
            "the annotators' spans whose conflict the vote could not decide (same extent with another label, "
            "overlapping spans, or too few annotators): for adjudication with `builder review`",
            since=3,
            part="entities",
        ),
        Field(
            "tokens",
            ListOf(Text()),
            "the BIO view ({bio_tags}), derived once from `entities`",
            derived=True,
            part="entities",
        ),
        Field("ner_tags", ListOf(BioTag()), derived=True, part="entities"),
        Field("annotations", ListOf(ANNOTATION_FLOAT32), ANNOTATIONS_MEANING, card_type="list", until=3),
        Field("annotations", ListOf(ANNOTATION), ANNOTATIONS_MEANING, card_type="list", since=4),
        Field(
            "num_annotators",
            Int32(minimum=1),
            "annotators of the sentence; share agreeing with the aggregated stance",
            alone="annotators of the sentence",
        ),
        Field("agreement", Share(), part="stance"),
    ),
    closed=True,
)


# --- what is generated from the shapes


def record_shape(dataset_format: int = DATASET_FORMAT, project: Project | None = None) -> Shape:
    """RECORD as dataset format `dataset_format` and `project`'s scheme have it (None: a both-scheme project)."""
    shape = RECORD.of_format(dataset_format)
    return shape if project is None else shape.of_scheme(project)


def features(project: Project, dataset_format: int = DATASET_FORMAT):
    """The dataset's `datasets.Features` (hence its Parquet columns), generated from RECORD."""
    from datasets import Features

    return Features(RECORD.of_format(dataset_format).feature(project))


def dataset_columns(dataset_format: int = DATASET_FORMAT, project: Project | None = None) -> list[str]:
    """The dataset's columns, in order: a record's fields with the derived BIO view after `entities` (those of
    `project`'s scheme; None: a both-scheme project's)."""
    return record_shape(dataset_format, project).names


def record_keys(project: Project, dataset_format: int = DATASET_FORMAT) -> tuple[list[str], list[str]]:
    """(the keys a record of `project` holds, the keys each of its annotations holds), in order."""
    stored = record_shape(dataset_format, project).stored()
    return [field.name for field in stored], ANNOTATION.of_scheme(project).names


def formats_of_columns(columns: list[str], project: Project | None = None) -> list[int]:
    """The dataset formats whose columns are exactly `columns` (formats 3 and 4 differ in a type, not a column)."""
    return [f for f in range(1, DATASET_FORMAT + 1) if dataset_columns(f, project) == list(columns)]


def lead_time_dtype(dataset_format: int) -> str:
    """The type dataset format `dataset_format` stores an annotation's `lead_time` in (float32, float64 from 4)."""
    annotation = RECORD.of_format(dataset_format)["annotations"].kind.item
    return annotation["lead_time"].kind.dtype


def _field_rows(dataset_format: int, project: Project) -> list[list[Field]]:
    """RECORD's fields in runs that share a meaning (a field without one joins the run before)."""
    rows: list[list[Field]] = []
    for field in record_shape(dataset_format, project).fields:
        if field.meaning is None and rows:
            rows[-1].append(field)
        else:
            rows.append([field])
    return rows


def _meaning(row: list[Field], project: Project) -> str:
    """The card's text of a run of fields: its first field's meaning (its `alone` text when the run is that one)."""
    field = row[0]
    meaning = field.alone if field.alone is not None and len(row) == 1 else field.meaning
    own_labels = [part for part in ("stance", "entities") if project.labels(part)]
    placeholders = {
        "own_labels": ", ".join(own_labels),
        "statuses": ", ".join(f"`{status}`" for status in STANCE_STATUSES[:-1]) + f" or `{STANCE_STATUSES[-1]}`",
        "entity_statuses": ", ".join(f"`{status}`" for status in ENTITY_STATUSES[:-1]) + f" or `{ENTITY_STATUSES[-1]}`",
        "bio_tags": ", ".join(project.bio_tags),
        "stance_order": ", ".join(f"`{value}`" for value in project.stance_values),
    }
    return meaning.format(**placeholders)


def field_meanings(project: Project, dataset_format: int = DATASET_FORMAT) -> dict[str, str]:
    """Each dataset column's meaning, as the card's table of fields states it (a run of fields shares one)."""
    return {field.name: _meaning(row, project) for row in _field_rows(dataset_format, project) for field in row}


def card_field_table(project: Project, dataset_format: int = DATASET_FORMAT) -> str:
    """The card's table of fields: one row per field, or per run of fields sharing a meaning."""
    lines = ["| field | type | meaning |", "|---|---|---|"]
    for row in _field_rows(dataset_format, project):
        names = ", ".join(f"`{field.name}`" for field in row)
        types = list(dict.fromkeys(field.card_type or field.kind.card(project) for field in row))
        lines.append(f"| {names} | {', '.join(types)} | {_meaning(row, project)} |")
    return "\n".join(lines)


def record_schema(project: Project) -> dict:
    """A published record: one sentence with its aggregated and individual labels."""
    return {
        "$schema": DRAFT,
        "$id": "https://github.com/builder/schema/record.schema.json",
        "title": f"A record of {project.name}",
        "description": "One sentence of the dataset. Generated from builder.toml by `builder schema`.",
        **RECORD.of_format(DATASET_FORMAT).json(project),  # the fields of the project's scheme (Shape.json)
    }


def _task_data(project: Project) -> dict:
    properties = {}
    for field in SENTENCE_FIELDS.fields:
        if not field.in_task:
            continue
        properties["sentence_id" if field.name == "id" else field.name] = field.kind.json(project)
    return {"type": "object", "required": list(TASK_DATA_REQUIRED), "properties": properties}


def _result_item(from_name: str, result_type: str, value: dict) -> dict:
    """One item of an annotation's `result`, from the control `from_name` on the sentence."""
    return {
        "type": "object",
        "required": ["from_name", "to_name", "type", "value"],
        "properties": {
            "id": {"type": "string"},
            "origin": {"type": "string"},
            "from_name": {"const": from_name},
            "to_name": {"const": SENTENCE},
            "type": {"const": result_type},
            "value": value,
        },
    }


def task_schema(project: Project) -> dict:
    """A task in annotations/snapshot.jsonl, as `builder pull` writes it.

    Its result items keep Label Studio's shape: an entity is `{"start", "end", "text", "labels": [LABEL]}`
    from the ENTITIES control, a stance `{"choices": [LABEL]}` from the STANCE control.
    """
    one_label = {"type": "array", "minItems": 1, "maxItems": 1}
    span_value = {
        "type": "object",
        "required": ["start", "end", "text", "labels"],
        "properties": {
            "start": SPAN["start"].kind.json(project),
            "end": SPAN["end"].kind.json(project),
            "text": SPAN["text"].kind.json(project),
            "labels": {**one_label, "items": SPAN["label"].kind.json(project)},
        },
    }
    stance_value = {
        "type": "object",
        "required": ["choices"],
        "properties": {"choices": {**one_label, "items": {"enum": project.stance_values}}},
    }
    # a result item of each control the scheme has (an entities-only scheme has no stance choice, and so on)
    items = [(ENTITIES, _result_item(ENTITIES, "labels", span_value))] if project.has_entities else []
    items += [(STANCE, _result_item(STANCE, "choices", stance_value))] if project.has_stance else []
    return {
        "$schema": DRAFT,
        "$id": "https://github.com/builder/schema/task.schema.json",
        "title": f"A pulled Label Studio task of {project.name}",
        "description": "One line of annotations/snapshot.jsonl. Generated from builder.toml by `builder schema`.",
        "type": "object",
        "required": ["task_id", "data", "annotations"],
        "properties": {
            "task_id": Integer().json(project),
            "data": _task_data(project),
            "annotations": {"type": "array", "items": {"$ref": "#/$defs/annotation"}},
            "predictions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model_version", "result"],
                    "properties": {"model_version": {"type": "string"}, "result": {"type": "array"}},
                },
            },
        },
        "$defs": {
            "annotation": {
                "type": "object",
                "required": ["id", "annotator", "result", "was_cancelled"],
                "properties": {
                    "id": Integer().json(project),
                    "annotator": ANNOTATION["annotator"].kind.json(project),
                    "result": {"type": "array", "items": {"$ref": "#/$defs/result_item"}},
                    "was_cancelled": Flag().json(project),
                    "ground_truth": ANNOTATION["ground_truth"].kind.json(project),
                    "lead_time": ANNOTATION["lead_time"].kind.json(project),
                },
            },
            "result_item": {
                "type": "object",
                "required": ["from_name"],
                "properties": {"from_name": {"enum": [name for name, _ in items]}},
                "allOf": [{"if": {"properties": {"from_name": {"const": name}}}, "then": then} for name, then in items],
            },
        },
    }


def schema_files(project: Project) -> dict[str, str]:
    """The text of task.schema.json and record.schema.json, by file name (stable formatting)."""
    return {
        f"{name}.schema.json": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in (("task", task_schema(project)), ("record", record_schema(project)))
    }


def write_schemas(project: Project, folder: Path) -> list[Path]:
    """Write task.schema.json and record.schema.json."""
    from builder.jsonio import atomic_write

    written = []
    for name, text in schema_files(project).items():
        path = folder / name
        with atomic_write(path, "w") as handle:
            handle.write(text)
        written.append(path)
    return written


def stale_schemas(project: Project, folder: Path) -> list[str]:
    """The schema files in `folder` that are missing, unreadable or differ from what `project` generates."""
    stale = []
    for name, text in schema_files(project).items():
        try:
            current = (folder / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            stale.append(name)
    return stale
