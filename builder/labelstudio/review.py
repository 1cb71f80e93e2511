"""A Label Studio Data Manager view of the sentences a maintainer must adjudicate."""

from __future__ import annotations

from builder.labelstudio.client import Connection
from builder.labelstudio.push import require_project
from builder.labelstudio.views import upsert_view
from builder.project import Project

REVIEW_VIEW_TITLE = "builder: unresolved stance"


def create_review_view(connection: Connection, project: Project, sentence_ids: list[str]) -> str:
    """Create or replace the review view; returns its URL."""
    project_id = require_project(connection, project)
    filters = {
        "conjunction": "or",
        "items": [
            {"filter": "filter:tasks:data.sentence_id", "operator": "equal", "type": "String", "value": sid}
            for sid in sorted(sentence_ids)
        ],
    }
    view_id = upsert_view(connection, project_id, REVIEW_VIEW_TITLE, filters, "creating the review view")
    return f"{connection.url}/projects/{project_id}/data?tab={view_id}"
