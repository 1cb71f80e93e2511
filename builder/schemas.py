"""JSON Schemas (draft 2020-12) generated from the label scheme: a pulled task, a published record.

`builder schema` writes them to schema/; a test checks the committed files equal what the
repository's builder.toml generates.
"""

from __future__ import annotations

import json
from pathlib import Path

from builder.labelstudio.config import ENTITIES, SENTENCE, STANCE
from builder.pseudonyms import PATTERN
from builder.scheme import Project

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NULLABLE_NUMBER = {"type": ["number", "null"]}
INT32_MAX = 2**31 - 1  # the dataset stores sentence_index, span offsets and num_annotators as int32
# Seconds an annotator spent on a task (Label Studio's lead_time): about 11.6 days at most, which
# covers a task left open over a holiday, and float32 (the dataset's type) holds it to 1/16 s.
LEAD_TIME_MAX = 1_000_000
LEAD_TIME = {"type": ["number", "null"], "minimum": 0, "maximum": LEAD_TIME_MAX}
NON_NEGATIVE_INT32 = {"type": "integer", "minimum": 0, "maximum": INT32_MAX}
PSEUDONYM = {"type": "string", "pattern": PATTERN.pattern}


def _span(project: Project, label_key: str, label_items: dict) -> dict:
    return {
        "type": "object",
        "required": ["start", "end", "text", label_key],
        "properties": {
            "start": NON_NEGATIVE_INT32,
            "end": NON_NEGATIVE_INT32,
            "text": {"type": "string"},
            label_key: label_items,
        },
    }


def _result_item(from_name: str, result_type: str, value: dict) -> dict:
    """One item of an annotation's `result`, from the control tag `from_name` on the sentence."""
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
    """A task in annotations/snapshot.jsonl, as `builder pull` writes it."""
    entity_item = _result_item(ENTITIES, "labels", _span(project, "labels", {"type": "array", "minItems": 1, "maxItems": 1, "items": {"enum": project.entity_values}}))
    stance_item = _result_item(
        STANCE,
        "choices",
        {
            "type": "object",
            "required": ["choices"],
            "properties": {"choices": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"enum": project.stance_values}}},
        },
    )
    return {
        "$schema": DRAFT,
        "$id": "https://github.com/builder/schema/task.schema.json",
        "title": f"A pulled Label Studio task of {project.name}",
        "description": "One line of annotations/snapshot.jsonl. Generated from builder.toml by `builder schema`.",
        "type": "object",
        "required": ["task_id", "data", "annotations"],
        "properties": {
            "task_id": {"type": "integer"},
            "data": {
                "type": "object",
                "required": ["sentence_id", "article_id", "sentence_index", "text"],
                "properties": {
                    "sentence_id": {"type": "string", "minLength": 1},
                    "article_id": {"type": "string", "minLength": 1},
                    "article_title": {"type": "string"},
                    "sentence_index": NON_NEGATIVE_INT32,
                    "occurrence": {"type": ["integer", "null"], "minimum": 0, "maximum": INT32_MAX},
                    "text": {"type": "string", "minLength": 1},
                    "prev_text": {"type": "string"},
                    "next_text": {"type": "string"},
                    "target": {"type": "string"},
                    "start": NON_NEGATIVE_INT32,
                    "end": NON_NEGATIVE_INT32,
                },
            },
            "annotations": {"type": "array", "items": {"$ref": "#/$defs/annotation"}},
            "predictions": {
                "type": "array",
                "items": {"type": "object", "required": ["model_version", "result"], "properties": {"model_version": {"type": "string"}, "result": {"type": "array"}}},
            },
        },
        "$defs": {
            "annotation": {
                "type": "object",
                "required": ["id", "annotator", "result", "was_cancelled"],
                "properties": {
                    "id": {"type": "integer"},
                    "annotator": PSEUDONYM,
                    "result": {"type": "array", "items": {"$ref": "#/$defs/result_item"}},
                    "was_cancelled": {"type": "boolean"},
                    "ground_truth": {"type": "boolean"},
                    "lead_time": LEAD_TIME,
                },
            },
            "result_item": {
                "type": "object",
                "required": ["from_name"],
                "properties": {"from_name": {"enum": [ENTITIES, STANCE]}},
                "allOf": [
                    {"if": {"properties": {"from_name": {"const": ENTITIES}}}, "then": entity_item},
                    {"if": {"properties": {"from_name": {"const": STANCE}}}, "then": stance_item},
                ],
            },
        },
    }


def record_schema(project: Project) -> dict:
    """A published record: one sentence with its aggregated and individual labels."""
    stance = {"enum": [*project.stance_values, None]}
    entity = _span(project, "label", {"enum": project.entity_values})
    return {
        "$schema": DRAFT,
        "$id": "https://github.com/builder/schema/record.schema.json",
        "title": f"A record of {project.name}",
        "description": "One sentence of the dataset. Generated from builder.toml by `builder schema`.",
        "type": "object",
        "required": ["id", "article_id", "sentence_index", "text", "target", "stance", "stance_status", "entities", "annotations", "num_annotators", "agreement"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "article_id": {"type": "string"},
            "sentence_index": NON_NEGATIVE_INT32,
            "text": {"type": "string"},
            "target": {"type": "string"},
            "stance": stance,
            "stance_status": {"enum": ["ground_truth", "unanimous", "majority", "tie", "none"]},
            "entities": {"type": "array", "items": entity},
            "annotations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["annotator", "stance", "entities", "lead_time", "ground_truth"],
                    "additionalProperties": False,
                    "properties": {
                        "annotator": PSEUDONYM,
                        "stance": stance,
                        "entities": {"type": "array", "items": entity},
                        "lead_time": LEAD_TIME,
                        "ground_truth": {"type": "boolean"},
                    },
                },
            },
            "num_annotators": {"type": "integer", "minimum": 1, "maximum": INT32_MAX},
            "agreement": NULLABLE_NUMBER,
        },
    }


def write_schemas(project: Project, folder: Path) -> list[Path]:
    """Write task.schema.json and record.schema.json (stable formatting)."""
    from builder.jsonio import atomic_write

    written = []
    for name, schema in (("task", task_schema(project)), ("record", record_schema(project))):
        path = folder / f"{name}.schema.json"
        with atomic_write(path, "w") as handle:
            handle.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written
