"""`annotations/label-studio.json`: what ties this repository to its Label Studio project and accounts.

It is committed beside the snapshot, so that a second maintainer with the repository and the pseudonym
key reproduces every name a pull gives, on any machine, whatever `.builder/` holds:

- A server is its organization (the id and creation time Label Studio reports for it), never the URL it
  was reached by: `http://localhost:8080`, `http://127.0.0.1:8080` and a TLS proxy in front of it are
  one server, and a database moved to PostgreSQL keeps its organization.
- `project`: the id and creation time of the project `builder push` made on that server. Any member of
  the organization can make a project with the same title; such a look-alike is refused, never adopted
  (`builder push --adopt-project` adopts the one project of that title on purpose).
- `accounts`: the pseudonym each account was given, per pseudonym key, under a tag HMAC(key, server,
  user id). Label Studio hides the e-mail of an account removed from the organization, so the name it
  had must be kept; without the key the tags do not say which account is which.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from builder.errors import InputError
from builder.labelstudio.client import Connection, calling, check_response, unexpected_answer
from builder.project import Project

REGISTRY_NAME = "label-studio.json"
FORMAT = 1
_IDENTITIES: dict[tuple[str, str], str] = {}
_ELSEWHERE: ContextVar[Path | None] = ContextVar("registry elsewhere", default=None)


def registry_path(project: Project) -> Path:
    return _ELSEWHERE.get() or project.annotations_dir / REGISTRY_NAME


@contextlib.contextmanager
def registry_at(path: Path) -> Iterator[None]:
    """Keep the registry at `path` for the block: `builder run` pushes the bundled sample to a throwaway local
    server, whose project and accounts have no place in the repository's committed registry."""
    token = _ELSEWHERE.set(path)
    try:
        yield
    finally:
        _ELSEWHERE.reset(token)


def moment(text: str) -> str:
    """A creation time as Label Studio gives it, in one spelling: UTC, milliseconds. The same row reads
    differently on SQLite and PostgreSQL (`builder server migrate` keeps it), so the text itself is no identity."""
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return text.strip()
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds")


def server_identity(connection: Connection) -> str:
    """A name for the Label Studio organization `connection` reaches, the same by any URL (16 hex digits).

    Made from the organization's id and creation time, which only that server holds; asked once per process."""
    cached = _IDENTITIES.get((connection.url, connection.api_key))
    if cached is not None:
        return cached
    doing = "identifying the server's organization"
    with calling(connection, doing):
        response = connection.http().request("api/current-user/whoami", method="GET")
    me = check_response(connection, response, doing)
    organization = me.get("active_organization") if isinstance(me, dict) else None
    if type(organization) is not int:
        raise unexpected_answer(connection, doing, "the account's active organization")
    with calling(connection, doing):  # the listing: ids, titles and creation times (the detail holds the invite token)
        response = connection.http().request("api/organizations/", method="GET")
    body = check_response(connection, response, doing)
    listed = body.get("results") if isinstance(body, dict) else body
    ours = (
        [o for o in listed if isinstance(o, dict) and o.get("id") == organization] if isinstance(listed, list) else []
    )
    created = ours[0].get("created_at") if ours else None
    if not isinstance(created, str) or not created:
        raise unexpected_answer(connection, doing, "the organization with its creation time")
    made = moment(created)
    identity = hashlib.sha256(f"label-studio organization\x00{organization}\x00{made}".encode()).hexdigest()[:16]
    _IDENTITIES[(connection.url, connection.api_key)] = identity
    return identity


def read_registry(project: Project) -> dict:
    """The registry's `servers` ({} when the file does not exist); a file builder cannot read is one error line."""
    path = registry_path(project)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc}); restore it from git") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); restore it from git") from None
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(servers, dict):
        raise InputError(f"{path}: not a registry of this builder version (format {FORMAT}); restore it from git")
    return {sid: entry for sid, entry in servers.items() if isinstance(entry, dict)}


@contextlib.contextmanager
def _updating(project: Project):
    """The registry's servers to change in place, written back atomically (under a lock) when the block ends."""
    from builder.jsonio import atomic_write
    from builder.locks import exclusive, lock_path

    path = registry_path(project)
    with exclusive(lock_path("registry", str(path.resolve()))):
        servers = read_registry(project)
        before = json.dumps(servers, sort_keys=True)
        yield servers
        if json.dumps(servers, sort_keys=True) == before:
            return
        with atomic_write(path, "w") as handle:
            json.dump({"format": FORMAT, "servers": servers}, handle, indent=2, sort_keys=True, ensure_ascii=False)
            handle.write("\n")


def bound_project(project: Project, server: str) -> dict | None:
    """{"id", "created_at", "title"} of the project builder made (or was told to adopt) on `server`, or None."""
    entry = read_registry(project).get(server, {}).get("project")
    if isinstance(entry, dict) and type(entry.get("id")) is int and isinstance(entry.get("created_at"), str):
        return entry
    return None


def bind_project(project: Project, server: str, project_id: int, created_at: str) -> None:
    """Record the project of this repository on `server`."""
    with _updating(project) as servers:
        entry = servers.setdefault(server, {})
        entry["project"] = {"id": project_id, "created_at": created_at, "title": project.project_title}


def known_names(project: Project, server: str, pseudonymize, user_ids) -> dict[int, str]:
    """The pseudonyms recorded for these accounts (user id -> name) under `pseudonymize`'s key."""
    from builder.pseudonyms import is_pseudonym

    accounts = read_registry(project).get(server, {}).get("accounts", {})
    recorded = accounts.get(pseudonymize.key_id) if isinstance(accounts, dict) else None
    if not isinstance(recorded, dict):
        return {}
    names = {}
    for user_id in user_ids:
        name = recorded.get(pseudonymize.tag(f"{server}\x00{user_id}"))
        if is_pseudonym(name):
            names[user_id] = name
    return names


def remember_names(project: Project, server: str, pseudonymize, names: dict[int, str], replace: bool = False) -> None:
    """Record the pseudonyms of these accounts (kept: a name once given is never changed here, unless `replace`:
    `builder run` gives the bundled sample's accounts the names its committed snapshot has, whatever an earlier
    run recorded)."""
    with _updating(project) as servers:
        entry = servers.setdefault(server, {})
        accounts = entry.get("accounts") if isinstance(entry.get("accounts"), dict) else {}
        recorded = accounts.get(pseudonymize.key_id) if isinstance(accounts.get(pseudonymize.key_id), dict) else {}
        for user_id, name in names.items():
            tag = pseudonymize.tag(f"{server}\x00{user_id}")
            if replace:
                recorded[tag] = name
            else:
                recorded.setdefault(tag, name)
        if recorded:
            accounts[pseudonymize.key_id] = dict(sorted(recorded.items()))
            entry["accounts"] = accounts
