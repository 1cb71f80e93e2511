"""Validating pulled tasks: JSON Schema first, then the checks a schema cannot express.

Label Studio accepts annotations that break its own labeling config; this stage is the guard.
A task whose shape is wrong is quarantined whole; an annotation with a problem is dropped (and
reported) while the task's other annotations go on. Rules:

- spans: `0 <= start < end <= len(text)` and `text[start:end] == value.text` exactly; a span whose
  ends are whitespace is trimmed to its non-space core (offsets moved) and reported as a warning;
- labels and choices must exist in the scheme; control names must be the generated config's;
- one span per (start, end, label) in an annotation; exactly one stance in every submitted,
  non-cancelled annotation;
- the task's sentence id must still match its article id, text and occurrence (the id is their hash);
- every value the dataset stores as an integer (ids, sentence_index, offsets) must be a JSON integer:
  `0.0` passes a JSON Schema "integer" but is a float (reason `not an integer`);
- annotators must be pseudonyms (reason `not a pseudonym`; the name itself is never echoed);
- a lead time that is not a number of seconds in 0-LEAD_TIME_MAX is set to null with a warning
  (`bad lead time`): the labels are kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Annotated, Any, Literal, Union

import jsonschema
import msgspec
import orjson
from msgspec import Meta

from builder.jsonio import JsonLines
from builder.model import (
    DATASET_FORMAT,
    ENTITIES,
    INT32_MAX,
    LEAD_TIME_MAX,
    SENTENCE,
    STANCE,
    task_schema,
)
from builder.project import Project
from builder.pseudonyms import is_pseudonym
from builder.records.aggregate import DAWID_SKENE, GOLD_QUESTIONS, RecordMaker, to_records
from builder.report import Report
from builder.resources import schema_validator
from builder.sentences.segmenter import sentence_id, sentence_id_matches, span_core

TASK_DATA_INTEGERS = ("sentence_index", "start", "end", "occurrence")
NOT_A_PSEUDONYM = "(not a pseudonym)"
UNREADABLE = JsonLines.UNREADABLE


def _short(value: object, limit: int = 40) -> str:
    """`repr(value)`, cut to `limit` characters: a hostile value cannot flood the report."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: object) -> str:
    """An id as written (`12`, `?`), or shortened when it is something odder."""
    text = str(value) if isinstance(value, (int, str)) else _short(value, 24)
    return text if len(text) <= 24 else _short(value, 24)


class UnsortedSnapshot(Exception):
    """Raised in `assume_sorted` mode when a task's sentence id is lower than the previous one."""


class TaskValidator:
    """Streams valid tasks (with only their valid annotations), reporting everything it drops.

    Duplicate tasks (the same sentence twice) are caught with constant memory when the snapshot
    is sorted by sentence id, as `builder pull` writes it (`assume_sorted`: an out-of-order task
    raises UnsortedSnapshot, so the caller can start again without the assumption); otherwise
    every sentence id is remembered.
    """

    def __init__(
        self, project: Project, report: Report, assume_sorted: bool = False, dataset_format: int = DATASET_FORMAT
    ) -> None:
        self.project = project
        self.dataset_format = dataset_format  # the shape of the records made (`records`)
        self.report = report
        self.schema = task_schema(project)
        self.entity_labels = set(project.entity_values)
        self.stance_labels = set(project.stance_values)
        self.seen: dict[str, object] = {}
        self.assume_sorted = assume_sorted
        self.previous: tuple[str, object] = ("", None)

    @cached_property
    def _maker(self) -> RecordMaker:
        """Makes the records of both paths (`records`), with one memory of stance columns."""
        return RecordMaker(self.project, self.dataset_format)

    @cached_property
    def _fast(self):
        import jsonschema_rs

        return jsonschema_rs.validator_for(self.schema)

    @cached_property
    def _explainer(self):
        return schema_validator(self.schema)

    @cached_property
    def _plain_record(self) -> Callable[[bytes], dict | None]:
        """`build(line)`: the record of the task on a JSON line when the task is valid as it is, with nothing to
        report, its sentence then counted as seen for duplicates; None when in doubt: the task then takes the
        full path, as if never looked at. The record is made by `RecordMaker.record`, as `task_to_record` makes
        it: this path only reads the annotations' entries from the line, the aggregation rule is written once.

        The line is decoded by msgspec straight into the types `_typed_task_decoder` makes from `self.schema`:
        the types, enums and bounds are checked as it parses, and any other shape (an unknown field included)
        fails it. Python then checks what a schema cannot say, and a record implies what the full path would
        conclude (tests/test_validate_fast.py compares the two on mutated tasks and lines): the schema holds,
        orjson reads the line, every semantic check passes, and there is no warning (no trimmed span, no bad
        lead time, no cancelled annotation). A ground-truth star is left to the full path.
        """
        try:
            decoder, choice_item = _typed_task_decoder(self.schema, self.project)
        except ValueError:  # a schema this fast path was not written for: every task takes the full path
            return lambda line: None
        annotator = re.compile(self.schema["$defs"]["annotation"]["properties"]["annotator"]["pattern"])
        make = self._maker.record  # the aggregation rule, written once (builder.records.aggregate)
        pseudonyms: set[str] = set()  # names already matched: a snapshot has few annotators
        is_new = self._is_new_sentence
        sha256, unset = hashlib.sha256, msgspec.UNSET
        decode, decode_errors = decoder.decode, (msgspec.DecodeError, UnicodeDecodeError, RecursionError)

        def build(line: bytes) -> dict | None:
            try:
                task = decode(line)
            except decode_errors:
                return None
            # msgspec reads what orjson reads, but for nesting deeper than orjson's limit (1024), which the
            # free-form prediction results could hold: such a line is left to orjson.
            if task.predictions and line.count(b"[") + line.count(b"{") >= 1000:
                return None
            data, annotations = task.data, task.annotations
            text = data.text
            size = len(text)
            if not annotations or size > INT32_MAX:
                return None
            individual = []  # per annotation: its record entry
            for annotation in annotations:
                name, result = annotation.annotator, annotation.result
                if annotation.was_cancelled or annotation.ground_truth or not result:
                    return None
                if name not in pseudonyms:
                    if not annotator.match(name) or name.endswith("\n"):
                        return None
                    if len(pseudonyms) < 100_000:
                        pseudonyms.add(name)
                stance, entities, keys, last, in_order = None, [], [], (), True  # () sorts before any key
                for item in result:
                    value = item.value
                    if type(item) is not choice_item:
                        start, end, piece = value.start, value.end, value.text
                        if (
                            not start < end <= size
                            or text[start:end] != piece
                            or piece[0].isspace()
                            or piece[-1].isspace()
                        ):
                            return None
                        key = (start, end, value.labels[0])
                        if key <= last:
                            in_order = False  # out of order (or a duplicate): checked after sorting
                        last = key
                        keys.append(key)
                        entities.append({"start": start, "end": end, "label": key[2], "text": piece})
                    elif stance is None:
                        stance = value.choices[0]
                    else:
                        return None
                if stance is None:
                    return None
                if not in_order:
                    order = sorted(range(len(keys)), key=keys.__getitem__)
                    keys = [keys[i] for i in order]
                    if len(set(keys)) != len(keys):  # one span marked twice
                        return None
                    entities = [entities[i] for i in order]
                individual.append(
                    {
                        "annotator": name,
                        "stance": stance,
                        "entities": entities,
                        "lead_time": annotation.lead_time,
                        "ground_truth": False,
                    }
                )
            sid, article_id, occurrence = data.sentence_id, data.article_id, data.occurrence
            if occurrence is unset or occurrence is None:  # the id of an occurrence 0, else the search of the full path
                # (a NUL in either takes the full path: its key is not this one, see sentence_key_prefix)
                plain = "\x00" not in text and "\x00" not in article_id
                if (
                    not plain or sha256(f"{article_id}\x00{text}".encode()).hexdigest()[:20] != sid
                ) and not sentence_id_matches(article_id, text, sid, None, data.sentence_index):
                    return None
            elif sentence_id(article_id, text, occurrence) != sid:
                return None
            if not is_new(sid, task.task_id):
                return None
            # The record as task_to_record makes it, by the same code (tests/test_validate_fast.py compares them).
            return make(individual, sid, article_id, data.sentence_index, text, data.target)

        return build

    def _where(self, task: dict, annotation: dict | None = None) -> str:
        where = f"task {_plain(task.get('task_id', '?'))}"
        if annotation is not None:
            where += f" annotation {_plain(annotation.get('id', '?'))} ({_annotator(annotation)})"
        return where

    def _quarantine(self, task: dict, reason: str, detail: str, field: str, *, error: bool = True) -> None:
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        self.report.drop(
            reason,
            self._where(task),
            detail,
            error=error,
            scope="task",
            task_id=task.get("task_id"),
            sentence_id=data.get("sentence_id"),
            field=field,
        )

    def _drop_annotation(
        self, task: dict, annotation: dict, reason: str, detail: str, field: str, *, error: bool = True
    ) -> None:
        self.report.drop(
            reason,
            self._where(task, annotation),
            detail,
            error=error,
            scope="annotation",
            task_id=task.get("task_id"),
            annotation_id=annotation.get("id"),
            annotator=_annotator(annotation),
            field=field,
        )

    def _lines(self, tasks: Iterable[dict] | JsonLines) -> tuple[Iterable[bytes], Callable[[bytes], object]]:
        """(JSON lines, a line's task as the full path takes it): a JsonLines' own lines, or each task encoded."""
        if isinstance(tasks, JsonLines):
            return tasks, tasks.loads
        given: list = [None]

        def lines() -> Iterator[bytes]:
            for task in tasks:
                given[0] = task
                if not _plain_json(task):  # its JSON would read back as another task: the full path looks at it
                    yield b""
                    continue
                try:
                    yield orjson.dumps(task)
                except orjson.JSONEncodeError:  # a lone surrogate, an integer past 64 bits: the full path says
                    yield b""

        return lines(), lambda line: given[0]

    def validate(self, tasks: Iterable[dict] | JsonLines) -> Iterator[dict]:
        plain_record = self._plain_record
        kept = self.report.kept
        lines, task_of = self._lines(tasks)
        for line in lines:
            # Most tasks are plainly valid: one pass decides it. Any doubt, and the task takes the full path
            # (JSON Schema, then each check), which finds and reports the problem.
            record = plain_record(line)
            task = task_of(line)
            if task is UNREADABLE:
                continue
            clean = task if record is not None else self.validate_task(task)
            if clean is not None:
                kept["tasks"] += 1
                yield clean

    def records(self, tasks: Iterable[dict] | JsonLines, gold: Mapping) -> Iterator[dict]:
        """`to_records(self.validate(tasks), ...)` for majority aggregation, checking and converting a plainly
        valid task in one pass."""
        plain_record = self._plain_record
        make = self._maker.from_task
        kept = self.report.kept
        lines, task_of = self._lines(tasks)
        count = 0
        try:
            for line in lines:
                record = plain_record(line)
                if record is None:
                    task = task_of(line)
                    if task is UNREADABLE:
                        continue
                    clean = self.validate_task(task)
                    if clean is None:
                        continue
                    count += 1
                    if clean["data"]["sentence_id"] in gold:
                        kept[GOLD_QUESTIONS] += 1
                        continue
                    record = make(clean)
                else:
                    count += 1
                    if gold and record["id"] in gold:
                        kept[GOLD_QUESTIONS] += 1
                        continue
                yield record
        finally:  # counted once, not per task
            if count:
                kept["tasks"] += count

    def validate_task(self, task: dict) -> dict | None:
        if not isinstance(task, dict):
            self.report.drop(
                "not a task", "task ?", f"expected a JSON object, got {type(task).__name__}", scope="task", field=""
            )
            return None
        try:
            valid = self._fast.is_valid(task)
        except ValueError:  # a value jsonschema-rs cannot look at (bytes, a date, an int subclass): jsonschema can
            valid = False
        if not valid:
            self._explain_schema_failure(task)
            if not self._task_shape_ok(task):
                return None
        data = task["data"]
        text = data["text"]
        not_int = _first_non_integer(task)
        if not_int is not None:
            key, value = not_int
            self._quarantine(
                task, "not an integer", f"{key}: {_short(value)} is a {type(value).__name__}, not an integer", key
            )
            return None
        if not self._id_matches(data):
            self._quarantine(
                task,
                "changed sentence text",
                "data.text no longer matches the sentence id it was pushed with",
                "data.text",
            )
            return None
        if self._is_duplicate(task, data["sentence_id"]):
            return None
        if not task["annotations"]:
            self._quarantine(task, "no annotations", "the task has no annotation", "annotations")
            return None
        if all(isinstance(a, dict) and a.get("was_cancelled") is True for a in task["annotations"]):
            n = len(task["annotations"])
            self._quarantine(
                task, "skipped task", f"all {n} annotation(s) were cancelled (skipped)", "annotations", error=False
            )
            return None
        kept = [
            a
            for a in (self.validate_annotation(task, annotation, text) for annotation in task["annotations"])
            if a is not None
        ]
        if not kept:
            self._quarantine(task, "no valid annotation", "no annotation of this task passed validation", "annotations")
            return None
        return {**task, "annotations": kept}

    @staticmethod
    def _id_matches(data: dict) -> bool:
        try:
            return sentence_id_matches(
                data["article_id"], data["text"], data["sentence_id"], data.get("occurrence"), data["sentence_index"]
            )
        except UnicodeEncodeError:  # a lone surrogate (a dict's, never a JSON line's): not the text that was hashed
            return False

    def _is_new_sentence(self, sid: str, task_id: int) -> bool:
        """For the fast path: True, and `sid` remembered, when no task had `sid` before; False (nothing
        remembered, nothing reported) for a duplicate, which the full path then reports."""
        if self.assume_sorted:
            previous = self.previous[0]
            if sid < previous:
                raise UnsortedSnapshot(sid)
            if sid == previous:
                return False
            self.previous = (sid, task_id)
            return True
        if sid in self.seen:
            return False
        self.seen[sid] = task_id
        return True

    def _is_duplicate(self, task: dict, sid: str) -> bool:
        if self.assume_sorted:
            previous, previous_task = self.previous
            if sid < previous:
                raise UnsortedSnapshot(sid)
            first = previous_task if sid == previous else None
            if first is None:
                self.previous = (sid, task.get("task_id"))
        else:
            first = self.seen.get(sid)
            if first is None:
                self.seen[sid] = task.get("task_id")
        if first is not None:
            self._quarantine(task, "duplicate task", f"sentence {sid} is also task {first}", "data.sentence_id")
            return True
        return False

    def _explain_schema_failure(self, task: dict) -> None:
        """Report the schema errors with jsonschema's messages and paths (for the few that fail)."""
        task_errors = []
        for error in sorted(self._explainer.iter_errors(task), key=lambda e: list(map(str, e.absolute_path))):
            path = list(error.absolute_path)
            if len(path) >= 2 and path[0] == "annotations" and isinstance(path[1], int):
                annotation = task["annotations"][path[1]]
                if isinstance(annotation, dict):
                    annotation.setdefault("_schema_errors", []).append(error)
                    continue
            task_errors.append((".".join(map(str, path)) or "(task)", error.message))
        if task_errors:
            field = task_errors[0][0]
            self._quarantine(task, "schema", "; ".join(f"{f}: {m}" for f, m in task_errors[:3]), field)
            task["_invalid"] = True

    def _task_shape_ok(self, task: dict) -> bool:
        return not task.pop("_invalid", False)

    def validate_annotation(self, task: dict, annotation: dict, text: str) -> dict | None:
        errors = annotation.pop("_schema_errors", None) or []
        lead_time = annotation.get("lead_time")
        # NaN passes a JSON Schema range (a dict from json.loads may hold it), but is no number of seconds
        bad_lead_time = isinstance(lead_time, float) and lead_time != lead_time
        bad_lead_time = bad_lead_time or any(list(e.absolute_path)[2:] == ["lead_time"] for e in errors)
        errors = [e for e in errors if list(e.absolute_path)[2:] != ["lead_time"]]
        if errors:
            error = next((e for e in errors if list(e.absolute_path)[2:3] == ["annotator"]), errors[0])
            path = list(error.absolute_path)[2:]
            field = ".".join(map(str, path)) or "annotation"
            reason = _schema_reason(error, path)
            # A hand-edited name may be an e-mail: never echo it.
            detail = "annotator is not a pseudonym" if reason == "not a pseudonym" else f"{field}: {error.message}"
            self._drop_annotation(task, annotation, reason, detail, field)
            return None
        if type(annotation["id"]) is not int:
            self._drop_annotation(
                task,
                annotation,
                "not an integer",
                f"id: {_short(annotation['id'])} is a {type(annotation['id']).__name__}, not an integer",
                "id",
            )
            return None
        if annotation["was_cancelled"]:
            self._drop_annotation(
                task,
                annotation,
                "cancelled annotation",
                "annotation was cancelled (skipped) by its annotator",
                "was_cancelled",
                error=False,
            )
            return None
        if not annotation["result"] and self.project.has_stance:  # entities only: no span is an answer too
            self._drop_annotation(task, annotation, "empty result", "submitted with no labels at all", "result")
            return None
        spans, stances, result = set(), [], []
        for index, item in enumerate(annotation["result"]):
            field = f"result[{index}]"
            if item["to_name"] != SENTENCE:
                self._drop_annotation(
                    task,
                    annotation,
                    "unknown object",
                    f"{field}.to_name: '{item['to_name']}' is not '{SENTENCE}'",
                    f"{field}.to_name",
                )
                return None
            if item["from_name"] == STANCE:
                stances.append(item["value"]["choices"][0])
                result.append(item)
                continue
            value = item["value"]
            start, end = value["start"], value["end"]
            if type(start) is not int or type(end) is not int:
                key, offset = ("start", start) if type(start) is not int else ("end", end)
                detail = f"{field}.value.{key}: {_short(offset)} is a {type(offset).__name__}, not an integer"
                self._drop_annotation(task, annotation, "not an integer", detail, f"{field}.value.{key}")
                return None
            if not 0 <= start < end <= len(text):
                self._drop_annotation(
                    task,
                    annotation,
                    "span out of range",
                    f"{field}.value: span {start}-{end} outside 0-{len(text)} or empty",
                    f"{field}.value.start",
                )
                return None
            if text[start:end] != value["text"]:
                self._drop_annotation(
                    task,
                    annotation,
                    "span text mismatch",
                    f"{field}.value.text: {value['text']!r} but text[{start}:{end}] is {text[start:end]!r}",
                    f"{field}.value.text",
                )
                return None
            core = span_core(text, start, end)
            if core != (start, end):
                if core is None:
                    self._drop_annotation(
                        task,
                        annotation,
                        "whitespace span",
                        f"{field}.value: span {start}-{end} is only whitespace",
                        f"{field}.value",
                    )
                    return None
                start, end = core
                value = {**value, "start": start, "end": end, "text": text[start:end]}
                item = {**item, "value": value}
                self._drop_annotation(
                    task,
                    annotation,
                    "trimmed span",
                    f"{field}.value: surrounding whitespace trimmed to {start}-{end}",
                    f"{field}.value",
                    error=False,
                )
            key = (start, end, value["labels"][0])
            if key in spans:
                self._drop_annotation(
                    task, annotation, "duplicate span", f"{field}: span {start}-{end} {key[2]} marked twice", field
                )
                return None
            spans.add(key)
            result.append(item)
        if len(stances) != 1 and self.project.has_stance:
            reason = "missing stance" if not stances else "several stances"
            self._drop_annotation(
                task, annotation, reason, f"result: {len(stances)} stance choices, expected exactly 1", "result"
            )
            return None
        if bad_lead_time:  # reported only for an annotation that is kept: its labels are worth more than its timing
            self._drop_annotation(
                task,
                annotation,
                "bad lead time",
                f"lead_time: {_short(annotation['lead_time'])} is not a number of seconds in 0-{LEAD_TIME_MAX}; "
                "stored as null, labels kept",
                "lead_time",
                error=False,
            )
            return {**annotation, "result": result, "lead_time": None}
        return {**annotation, "result": result}


_JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "null": (type(None),), "boolean": (bool,)}


def _leaf_checks(schema: dict) -> list[tuple[str, bool, tuple, float, float, int]]:
    """(key, required, Python types, minimum, maximum, minLength) for each property of an object schema whose
    properties are plain values; a keyword this does not know raises ValueError (the fast path must not guess)."""
    required = set(schema.get("required", ()))
    checks = []
    for key, spec in schema["properties"].items():
        unknown = set(spec) - {"type", "minimum", "maximum", "minLength"}
        if unknown:
            raise ValueError(f"the fast path does not know {sorted(unknown)} (data.{key})")
        kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        types = tuple(t for kind in kinds for t in _JSON_TYPES[kind])
        checks.append(
            (
                key,
                key in required,
                types,
                spec.get("minimum", float("-inf")),
                spec.get("maximum", float("inf")),
                spec.get("minLength", 0),
            )
        )
    return checks


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # beyond these, orjson reads a float (or fails), msgspec an int
# The keys of each object the typed decoder knows; a schema with others is not the one it was written for.
_TASK_KEYS = {"task_id", "data", "annotations", "predictions"}
_ANNOTATION_KEYS = {"id", "annotator", "result", "was_cancelled", "ground_truth", "lead_time"}
_RESULT_ITEM_KEYS = {"id", "origin", "from_name", "to_name", "type", "value"}


def _leaf_type(types: tuple, low: float, high: float, min_length: int):
    """The msgspec type of a JSON Schema leaf (`_leaf_checks`' types, bounds and minLength)."""
    kinds = []
    for kind in types:
        if kind is int:  # bounded to int64 at most: orjson reads a longer integer as a float
            kinds.append(Annotated[int, Meta(ge=max(low, INT64_MIN), le=min(high, INT64_MAX))])
        elif kind is float:
            bounds = {k: v for k, v in (("ge", low), ("le", high)) if v not in (float("-inf"), float("inf"))}
            kinds.append(Annotated[float, Meta(**bounds)] if bounds else float)
        elif kind is str:
            kinds.append(Annotated[str, Meta(min_length=min_length)] if min_length else str)
        else:  # bool, None
            kinds.append(kind)
    return Union[tuple(kinds)] if len(kinds) > 1 else kinds[0]  # noqa: UP007 (a runtime tuple of types)


def _struct(name: str, checks: list[tuple], **options) -> type:
    """A msgspec Struct of the leaf `checks`; a field not required may be missing (UNSET), never null unless
    its type allows null. Unknown fields fail the decoding (msgspec skips them without reading them)."""
    fields = []
    for key, required, types, low, high, min_length in checks:
        if not key.isidentifier():
            raise ValueError(f"the fast path needs field names that are identifiers ({key!r})")
        kind = _leaf_type(types, low, high, min_length)
        fields.append((key, kind) if required else (key, Union[kind, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
    return msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=True, gc=False, **options)


def _typed_task_decoder(schema: dict, project: Project) -> tuple[msgspec.json.Decoder, type]:
    """(a msgspec decoder of the tasks the fast path takes, made from the task schema and the project's labels;
    the type of a decoded stance result item).

    What it decodes is schema-valid in every type, enum and bound (data's fields, integers as JSON integers,
    one known label or choice, the lead time's range), has no field the schema does not name (but a
    prediction's score), and is read by orjson too. Raises ValueError for a schema it was not written for.
    """
    if not (project.has_stance and project.has_entities):
        raise ValueError("the fast path reads both-scheme tasks only")
    properties = schema["properties"]
    annotation_schema = schema["$defs"]["annotation"]["properties"]
    item_schema = schema["$defs"]["result_item"]["allOf"]
    if (
        set(properties) != _TASK_KEYS
        or set(annotation_schema) != _ANNOTATION_KEYS
        or any(set(branch["then"]["properties"]) != _RESULT_ITEM_KEYS for branch in item_schema)
    ):
        raise ValueError("the fast path does not know this task schema")
    data = _struct("Data", _leaf_checks(properties["data"]))
    ((_, _, lead_types, lead_min, lead_max, _),) = _leaf_checks(
        {"properties": {"lead_time": annotation_schema["lead_time"]}}
    )
    offset = Annotated[int, Meta(ge=0, le=INT32_MAX)]
    one_of = lambda values: Annotated[list[Literal[tuple(values)]], Meta(min_length=1, max_length=1)]  # noqa: E731
    item_options = {"id": (str, msgspec.UNSET), "origin": (str, msgspec.UNSET)}
    optional = [(key, Union[kind, msgspec.UnsetType], default) for key, (kind, default) in item_options.items()]  # noqa: UP007
    span_value = msgspec.defstruct(
        "SpanValue",
        [("start", offset), ("end", offset), ("text", str), ("labels", one_of(project.entity_values))],
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    choice_value = msgspec.defstruct(
        "ChoiceValue", [("choices", one_of(project.stance_values))], forbid_unknown_fields=True, gc=False
    )
    items = [
        msgspec.defstruct(
            name,
            [("to_name", Literal[SENTENCE]), ("type", Literal[kind]), ("value", value), *optional],
            kw_only=True,
            forbid_unknown_fields=True,
            gc=False,
            tag_field="from_name",
            tag=control,
        )
        for name, control, kind, value in (
            ("SpanItem", ENTITIES, "labels", span_value),
            ("ChoiceItem", STANCE, "choices", choice_value),
        )
    ]
    integer = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
    annotation = msgspec.defstruct(
        "Annotation",
        [
            ("id", integer),
            ("annotator", str),  # its pattern is matched by the fast path, once per name
            ("result", list[Union[tuple(items)]]),  # noqa: UP007
            ("was_cancelled", bool),
            ("ground_truth", bool, False),
            ("lead_time", _leaf_type(lead_types, lead_min, lead_max, 0), None),
        ],
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    # Predictions are not read by validation; `score` is what `builder pull` writes besides the schema's two.
    prediction = msgspec.defstruct(
        "Prediction",
        [("model_version", str), ("result", list), ("score", Any, None)],
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    task = msgspec.defstruct(
        "Task",
        [
            ("task_id", integer),
            ("data", data),
            ("annotations", list[annotation]),
            ("predictions", list[prediction], []),
        ],
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(task), items[1]


_JSON_SCALARS = frozenset((str, int, bool, type(None)))


def _plain_json(value: object) -> bool:
    """True when `value` holds only dicts with str keys, lists, str, int, finite float, bool and None, exactly
    those types: what its JSON line reads back to as it is. NaN and infinities (written as null), tuples,
    subclasses, enums and dates (written as what they stand for) are not."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is float:
            if item - item != 0.0:  # NaN or an infinity
                return False
        elif kind not in _JSON_SCALARS:
            return False
    return True


def _first_non_integer(task: dict) -> tuple[str, object] | None:
    """(field, value) of the first integer field of a schema-valid task that holds a float (`0.0`)."""
    if type(task["task_id"]) is not int:
        return "task_id", task["task_id"]
    data = task["data"]
    for key in TASK_DATA_INTEGERS:
        value = data.get(key)
        if value is not None and type(value) is not int:
            return f"data.{key}", value
    return None


def _annotator(annotation: dict) -> str:
    """The annotator's pseudonym, for reports; anything else is not shown (it may be an e-mail)."""
    name = annotation.get("annotator", "?")
    return name if is_pseudonym(name) else NOT_A_PSEUDONYM


def _schema_reason(error: jsonschema.ValidationError, path: list) -> str:
    if path[:1] == ["annotator"]:
        return "not a pseudonym"
    if "labels" in path and error.validator == "enum":
        return "unknown label"
    if "choices" in path and error.validator == "enum":
        return "unknown choice"
    if path[-1:] == ["from_name"] or (error.validator in ("enum", "const") and "from_name" in path):
        return "unknown control"
    if path[-1:] == ["to_name"]:
        return "unknown object"
    return "schema"


def validate_tasks(
    tasks: Iterable[dict], project: Project, report: Report, assume_sorted: bool = False
) -> Iterator[dict]:
    """The library stage: valid tasks out, every problem in `report`."""
    return TaskValidator(project, report, assume_sorted).validate(tasks)


def validated_records(
    tasks: Iterable[dict],
    project: Project,
    report: Report,
    gold: Mapping | None = None,
    assume_sorted: bool = False,
    dataset_format: int = DATASET_FORMAT,
) -> Iterator[dict]:
    """`to_records(validate_tasks(tasks, ...), ...)`: the records of the valid tasks (as `dataset_format` has
    them), gold questions left out (counted), every problem in `report`; in one pass per task where it can
    (majority aggregation)."""
    validator = TaskValidator(project, report, assume_sorted, dataset_format)
    if project.aggregation == DAWID_SKENE:
        return to_records(validator.validate(tasks), project, gold, report, dataset_format)
    return validator.records(tasks, gold or {})
