"""Data Manager views (saved task filters) that builder creates by title."""

from __future__ import annotations

from builder.labelstudio.client import Connection, calling


def upsert_view(connection: Connection, project_id: int, title: str, filters: dict, doing: str) -> int:
    """Create the view titled `title`, or replace its filters if it exists; returns its id."""
    client = connection.client()
    data = {"title": title, "filters": filters}
    with calling(connection, doing):
        for view in client.views.list(project=project_id):
            if isinstance(view.data, dict) and view.data.get("title") == title:
                client.views.update(str(view.id), project=project_id, data=data)
                return view.id
        return client.views.create(project=project_id, data=data).id
