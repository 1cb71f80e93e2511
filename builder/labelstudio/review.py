"""A Label Studio Data Manager view of the sentences a maintainer must adjudicate."""

from __future__ import annotations

from builder.labelstudio.client import Connection, calling
from builder.labelstudio.push import require_project
from builder.scheme import Project

REVIEW_VIEW_TITLE = "builder: unresolved stance"


def create_review_view(connection: Connection, project: Project, sentence_ids: list[str]) -> str:
    """Create or replace the review view; returns its URL."""
    project_id = require_project(connection, project)
    client = connection.client()
    data = {
        "title": REVIEW_VIEW_TITLE,
        "filters": {
            "conjunction": "or",
            "items": [
                {"filter": "filter:tasks:data.sentence_id", "operator": "equal", "type": "String", "value": sid}
                for sid in sorted(sentence_ids)
            ],
        },
    }
    with calling(connection, "creating the review view"):
        for view in client.views.list(project=project_id):
            if (view.data or {}).get("title") == REVIEW_VIEW_TITLE:
                client.views.update(str(view.id), project=project_id, data=data)
                view_id = view.id
                break
        else:
            view_id = client.views.create(project=project_id, data=data).id
    return f"{connection.url}/projects/{project_id}/data?tab={view_id}"
