"""Connecting to Label Studio and turning its failures into one-line, actionable errors."""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from builder.errors import LabelStudioError
from builder.labelstudio import server

URL_VARIABLE = "LABEL_STUDIO_URL"
KEY_VARIABLE = "LABEL_STUDIO_API_KEY"
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Connection:
    """Where Label Studio is and how to authenticate; `repr` never shows the key."""

    url: str
    api_key: str
    source: str
    data_dir: str | None = None  # the local server's data folder, when builder started it
    shared_url: str | None = None  # the URL annotators on other machines open (`server start --host`)

    @property
    def public_url(self) -> str:
        """The URL to give people: the shared one when the local server was started with --host."""
        return self.shared_url or self.url

    def __repr__(self) -> str:
        return f"Connection(url={self.url!r}, source={self.source!r})"

    def client(self):
        import httpx
        from label_studio_sdk import LabelStudio

        # What the SDK would make itself, but with the process's one SSL context: made per client, it loads the
        # CA bundle each time (~0.1-0.2 s), which was half of a small pull's time
        http = httpx.Client(timeout=TIMEOUT_S, follow_redirects=True, verify=ssl_context())
        return LabelStudio(base_url=self.url, api_key=self.api_key, timeout=TIMEOUT_S, httpx_client=http)

    def http(self):
        """The SDK's own httpx client, for the few endpoints the SDK does not wrap."""
        return self.client()._client_wrapper.httpx_client


@functools.cache
def ssl_context():
    """httpx's default SSL context (certifi's CA bundle, or SSL_CERT_FILE/SSL_CERT_DIR), made once per process."""
    import httpx

    return httpx.create_ssl_context()


def resolve_connection(root: Path) -> Connection:
    """LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY when set, else the project's local server."""
    url, key = os.environ.get(URL_VARIABLE), os.environ.get(KEY_VARIABLE)
    if url and key:
        return Connection(_checked_url(url), _checked_key(key), "environment")
    if url or key:
        missing = KEY_VARIABLE if url else URL_VARIABLE
        raise LabelStudioError(
            f"{missing} is not set: set both {URL_VARIABLE} and {KEY_VARIABLE}, or neither to use the local server"
        )
    state = server.read_state(root)
    if state is not None and not server.belongs_to(state, root):
        raise LabelStudioError(
            f"{server.state_path(root)} belongs to another project folder ({state.data_dir}): "
            "run `builder server start` to start this project's own server"
        )
    if state is None or not server.is_running(state):
        raise LabelStudioError(
            f"no Label Studio to talk to: run `builder server start`, or set {URL_VARIABLE} and {KEY_VARIABLE}"
        )
    return Connection(state.url, state.token, "local server", state.data_dir, server.share_url(state))


def _checked_url(url: str) -> str:
    """LABEL_STUDIO_URL as an http(s) URL without credentials (they would appear in every message)."""
    from urllib.parse import urlsplit

    if not url.strip().isprintable() or any(c.isspace() for c in url.strip()):
        raise LabelStudioError(
            f"{URL_VARIABLE} holds spaces or control characters: give a URL such as http://localhost:8080"
        )
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        raise LabelStudioError(f"{URL_VARIABLE} is not a URL such as http://localhost:8080") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabelStudioError(f"{URL_VARIABLE} is not an http(s) URL such as http://localhost:8080")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise LabelStudioError(f"{URL_VARIABLE} must be Label Studio's address alone, without '?...' or '#...'")
    if parts.username or parts.password:
        raise LabelStudioError(
            f"{URL_VARIABLE} must not hold a user name or password: put the API key in {KEY_VARIABLE}"
        )
    return url.strip().rstrip("/")


def _checked_key(key: str) -> str:
    if not key.isascii() or not key.isprintable() or " " in key.strip():
        raise LabelStudioError(
            f"{KEY_VARIABLE} is not an API key (printable ASCII without spaces): "
            "copy it from Label Studio's Account page"
        )
    return key.strip()


@contextlib.contextmanager
def calling(connection: Connection, doing: str):
    """Translate SDK and network failures while `doing` into a LabelStudioError."""
    import httpx
    import pydantic
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ApiError as exc:
        status = exc.status_code or 0
        if status in (401, 403):
            hint = (
                f"check {KEY_VARIABLE}"
                if connection.source == "environment"
                else "run `builder server stop` then `builder server start`"
            )
            raise LabelStudioError(
                f"Label Studio at {connection.url} refused the API key ({status}) while {doing}: {hint}"
            ) from None
        if status == 404:
            raise LabelStudioError(f"Label Studio at {connection.url} has no such object (404) while {doing}") from None
        if status >= 500:
            raise LabelStudioError(
                f"Label Studio at {connection.url} failed ({status}) while {doing}; nothing was written: "
                "retry, and see the server's log if it persists"
            ) from None
        raise LabelStudioError(
            f"Label Studio at {connection.url} rejected the request ({status}) while {doing}: {_short(exc.body)}"
        ) from None
    except pydantic.ValidationError:
        raise unexpected_answer(connection, doing, "the shape label-studio-sdk knows") from None
    except httpx.TimeoutException:
        raise LabelStudioError(f"Label Studio at {connection.url} timed out while {doing}; retry") from None
    except httpx.HTTPError as exc:
        raise LabelStudioError(
            f"cannot reach Label Studio at {connection.url} while {doing} ({type(exc).__name__}): "
            "is it running? try `builder server status`"
        ) from None


def unexpected_answer(connection: Connection, doing: str, expected: str) -> LabelStudioError:
    """The error for an answer whose shape builder does not know (another version, or a proxy's page)."""
    return LabelStudioError(
        f"Label Studio at {connection.url} gave an unexpected answer while {doing} (expected {expected}); "
        f"is it Label Studio {server.LABEL_STUDIO_VERSION}? retry, and see the server's log if it persists"
    )


def _short(body) -> str:
    text = str(body)
    return text if len(text) <= 200 else text[:200] + "..."


def check_response(connection: Connection, response, doing: str):
    """Raise the same errors as `calling` for a raw httpx response; return its JSON."""
    from label_studio_sdk.core.api_error import ApiError

    if response.status_code >= 400:
        with calling(connection, doing):
            raise ApiError(status_code=response.status_code, body=response.text[:500])
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise unexpected_answer(connection, doing, "JSON") from None


def post_json(connection: Connection, path: str, body, doing: str):
    """The raw response to a POST of `body` (JSON, encoded by orjson) to `path`; never retried: a retried write
    the server had committed would be made twice."""
    import orjson

    with calling(connection, doing):
        return connection.http().request(
            path,
            method="POST",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
            request_options={"max_retries": 0},
        )


def guard_answers(connection: Connection, path: str, header: str) -> bool:
    """Whether the local server's guard answers its request `path`: a malformed one (refused, nothing made),
    answered with the guard's `header` (Label Studio itself answers 404 without it)."""
    try:
        response = post_json(connection, path, {}, f"asking the local server's guard whether it answers {path}")
    except LabelStudioError:
        return False
    return response.headers.get(header) == "1"


@dataclass(frozen=True)
class ServerStatus:
    """Which Label Studio the other commands use, and whether it answers (`builder server status`).

    `source` is "environment" (LABEL_STUDIO_URL is set), "local server" (this project's, running),
    or None when there is nothing to talk to.
    """

    source: str | None
    url: str | None = None
    healthy: bool = False
    pid: int | None = None
    version: str | None = None
    data_dir: str | None = None
    database: str | None = None  # which database the local server uses (never its password)


def status(root: Path) -> ServerStatus:
    """LABEL_STUDIO_URL when set, else the local server of the project at `root` if it runs; with its health."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        return ServerStatus("environment", url, server.is_healthy(url.rstrip("/")))
    state = server.read_state(root)
    if not server.is_running(state):
        return ServerStatus(None)
    healthy = server.is_healthy(state.url)
    database = server.describe_database(state)
    return ServerStatus("local server", state.url, healthy, state.pid, state.version, state.data_dir, database)


LIST_PAGE = 5000  # tasks per page of the Data Manager's task listing


def task_pages(connection: Connection, project_id: int, params: dict, doing: str, page_size: int = LIST_PAGE):
    """Pages of the Data Manager's task listing (`api/tasks/` with `params`), each a list of task dicts;
    `doing` names the step in errors. Label Studio answers 404 for a page past the last."""
    page = 1
    while True:
        with calling(connection, doing):
            response = connection.http().request(
                "api/tasks/",
                method="GET",
                params={"project": project_id, "page": page, "page_size": page_size, **params},
            )
        if response.status_code == 404 and page > 1:
            return
        body = check_response(connection, response, doing)
        tasks = body.get("tasks") if isinstance(body, dict) else None
        if not isinstance(tasks, list):
            raise unexpected_answer(connection, doing, "a page of tasks")
        yield tasks
        if len(tasks) < page_size:
            return
        page += 1
