"""Label Studio Data Manager views of the sentences a maintainer must adjudicate: one of the unresolved
stances, one of the entity conflicts (spans the vote could not decide). An adjudicator opens the task,
stars an annotation as ground truth (or adds one and stars it); the next pull and build take its
stance and spans, marked `ground_truth` in the dataset."""

from __future__ import annotations

from builder.labelstudio.client import Connection
from builder.labelstudio.project_api import require_project
from builder.labelstudio.views import upsert_view
from builder.project import Project

REVIEW_VIEW_TITLE = "builder: unresolved stance"
ENTITY_REVIEW_VIEW_TITLE = "builder: entity conflicts"


def create_review_view(
    connection: Connection, project: Project, sentence_ids: list[str], title: str = REVIEW_VIEW_TITLE
) -> str:
    """Create or replace the review view titled `title` of `sentence_ids`; returns its URL."""
    project_id = require_project(connection, project)
    filters = {
        "conjunction": "or",
        "items": [
            {"filter": "filter:tasks:data.sentence_id", "operator": "equal", "type": "String", "value": sid}
            for sid in sorted(sentence_ids)
        ],
    }
    view_id = upsert_view(connection, project_id, title, filters, "creating the review view")
    return f"{connection.url}/projects/{project_id}/data?tab={view_id}"


def describe_spans(spans: list[dict]) -> str:
    """Spans as a review line shows them: `LABEL 'text' start-end`, `;`-separated; `(none)` when there are none."""
    return "; ".join(f"{s['label']} {s['text']!r} {s['start']}-{s['end']}" for s in spans) or "(none)"


def entity_conflict_lines(record: dict) -> list[str]:
    """What `builder review` prints of a record with entity conflicts: the sentence, each annotator's spans
    (by pseudonym, a ground-truth annotation starred) and the spans the vote could not decide."""
    lines = [f"{record['id']}  {record['article_id']}#{record['sentence_index']}  {record['text']}"]
    for annotation in record["annotations"]:
        star = " (ground truth)" if annotation["ground_truth"] else ""
        lines.append(f"    {annotation['annotator']}{star}: {describe_spans(annotation['entities'])}")
    lines.append(f"    unresolved: {describe_spans(record['unresolved_entities'])}")
    return lines
