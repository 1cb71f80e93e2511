"""Data Manager views (saved task filters and columns) that builder creates by title."""

from __future__ import annotations

from builder.labelstudio.client import Connection, calling, check_response, unexpected_answer

SENTENCES_VIEW_TITLE = "Sentences"
# The Data Manager lists a project's data columns in the order the labeling config names them, and the config
# shows the sentence before it (`prev_text`) above the sentence: without this view an annotator's task list
# starts with the context, not the sentence. Label Studio keeps no column order per view, only hidden columns.
HIDDEN_CONTEXT_COLUMNS = ["tasks:data.prev_text", "tasks:data.next_text"]


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


def ensure_sentences_view(connection: Connection, project_id: int) -> int | None:
    """Make the project's first Data Manager tab, "Sentences", the sentence its first data column, unless a
    view of that title is there (changes made to it in Label Studio are kept). Returns the new view's id, or None.

    Order -1 puts it before a "Default" tab Label Studio made when someone opened the project earlier (tabs
    are the project's, shared by every account)."""
    doing = "making the Data Manager's Sentences view"
    with calling(connection, doing):
        for view in connection.client().views.list(project=project_id):
            if isinstance(view.data, dict) and view.data.get("title") == SENTENCES_VIEW_TITLE:
                return None
    hidden = _hidden_by_default(connection, project_id)
    for mode in ("explore", "labeling"):
        hidden[mode] = [*hidden.get(mode, []), *(c for c in HIDDEN_CONTEXT_COLUMNS if c not in hidden.get(mode, []))]
    body = {"project": project_id, "order": -1, "data": {"title": SENTENCES_VIEW_TITLE, "hiddenColumns": hidden}}
    with calling(connection, doing):
        response = connection.http().request("api/dm/views/", method="POST", json=body)
    created = check_response(connection, response, doing)
    if not isinstance(created, dict) or type(created.get("id")) is not int:
        raise unexpected_answer(connection, doing, "the new view")
    return created["id"]


def _hidden_by_default(connection: Connection, project_id: int) -> dict[str, list[str]]:
    """The columns a new tab hides, per mode, as Label Studio's Data Manager computes them from the project's
    columns (`visibility_defaults`): a view's `hiddenColumns` replaces those defaults, so the view keeps them."""
    doing = "reading the Data Manager's columns"
    with calling(connection, doing):
        response = connection.http().request("api/dm/columns/", method="GET", params={"project": project_id})
    body = check_response(connection, response, doing)
    columns = body.get("columns") if isinstance(body, dict) else None
    if not isinstance(columns, list) or not all(isinstance(c, dict) and "id" in c for c in columns):
        raise unexpected_answer(connection, doing, "the project's columns")
    hidden: dict[str, list[str]] = {}
    for column in columns:
        parent = f"{column['parent']}." if column.get("parent") else ""
        path = f"{column.get('target', 'tasks')}:{parent}{column['id']}"
        for mode, visible in (column.get("visibility_defaults") or {}).items():
            if not visible:
                hidden.setdefault(mode, []).append(path)
    return hidden
