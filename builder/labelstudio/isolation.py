"""Blind annotation on builder's local server: one Label Studio organization per annotator.

Label Studio Community shows every account every project and every annotation of its organization (roles are
an Enterprise feature). An organization is the one boundary it keeps: a user of a second organization sees
none of the first's projects, tasks, users or predictions. `isolate_annotator` moves an annotator's account
into an organization of its own (no longer a member of the first one), made through Label Studio's own Django
models, inside the running server (a request only builder's admin token may make, answered by the guard) or,
for a server an older builder started, in a process of the server's virtual environment. Each such organization gets
an admin account builder owns, with its own API token, through which builder pushes that annotator's copy of
the project and pulls it back.

The few views Label Studio answers without looking at organizations (`/api/annotations/ID` among them) are
closed by the guard the local server runs (`in_server/builder_guard_settings.py`); `guarded` checks a server
runs it. The tokens are kept in `.builder/organizations.json` (0600, git-ignored), the only file they are
written to, like the main token in `.builder/server.json`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.errors import LabelStudioError
from builder.jsonio import STATE_DIR, atomic_write, state_dir
from builder.labelstudio import server
from builder.labelstudio.client import Connection

ORGANIZATIONS_FILE = "organizations.json"
ISOLATE_PATH = "/builder-guard/isolate-annotators/"  # the guard's own request (in_server/builder_guard_settings.py)
ISOLATE_HEADER = "X-Builder-Isolate"  # on the guard's every answer to it: a server without it predates the request
_MISSING = "no account with this e-mail on the local server: add it with `builder annotators add`"
BLIND_FILE = "blind.json"  # a shared project made blind (`builder annotators blind`)
ADMIN_DOMAIN = "builder.local"

# Run with the server's own Python and environment (secrets from the environment, never argv), which puts the
# guard's folder on PYTHONPATH: the same move as the guard's request (`move_accounts`), in a process of its own.
_ISOLATE = """
import json, os, sys
import label_studio
sys.path.insert(0, os.path.dirname(label_studio.__file__))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
import django
django.setup()
from builder_guard_settings import MoveRefused, move_accounts
try:
    made = move_accounts(json.loads(os.environ["BUILDER_ISOLATE"]))
except MoveRefused as refused:
    print(refused.detail, file=sys.stderr)
    sys.exit(3 if refused.status == 409 else 4)
print(json.dumps(made))
"""


@dataclass(frozen=True)
class AnnotatorOrganization:
    """An annotator's own organization on the local server, and the admin account builder keeps in it."""

    email: str  # the annotator's
    organization: int
    admin: str
    token: str
    removed: bool = False  # `builder annotators remove`: given no more work; what they did stays in their copy

    def __repr__(self) -> str:  # never show secrets (or the annotator's e-mail) in logs or tracebacks
        return f"AnnotatorOrganization(organization={self.organization}, admin={self.admin!r})"

    def connection(self, url: str) -> Connection:
        return Connection(url, self.token, f"organization {self.organization}")


def organizations_path(root: Path) -> Path:
    return root / STATE_DIR / ORGANIZATIONS_FILE


def read_organizations(root: Path) -> dict[str, AnnotatorOrganization]:
    """The annotators' organizations recorded for the project at `root`, by annotator e-mail."""
    path = organizations_path(root)
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        # records of an earlier builder carry the admin's password, which nothing uses now: dropped
        return {
            email: AnnotatorOrganization(**{k: v for k, v in entry.items() if k != "password"})
            for email, entry in raw.items()
        }
    except (ValueError, TypeError):
        raise LabelStudioError(
            f"{path}: unreadable record of the annotators' organizations; restore it from a backup "
            "(builder cannot reach the annotators' copies without it)"
        ) from None


def _write_organizations(root: Path, organizations: dict[str, AnnotatorOrganization]) -> None:
    state_dir(root)
    with atomic_write(organizations_path(root), "w", private=True) as handle:
        json.dump({email: asdict(entry) for email, entry in sorted(organizations.items())}, handle, indent=2)


def mark_removed(root: Path, email: str) -> None:
    """Record that the annotator `email` was removed: no blind push or hand-over gives them work again."""
    organizations = read_organizations(root)
    organizations[email] = AnnotatorOrganization(**{**asdict(organizations[email]), "removed": True})
    _write_organizations(root, organizations)


def blind_marker_path(root: Path) -> Path:
    return root / STATE_DIR / BLIND_FILE


def read_blind_marker(root: Path) -> dict | None:
    """What `builder annotators blind` recorded when it made a shared project blind (None: never made so).

    {"shared_project": the shared project's id on the local server (its annotations stay there and every blind
    pull merges them), "holders": {sentence id: who annotated it there (e-mail, or user-ID of a removed account)}}"""
    path = blind_marker_path(root)
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(marker, dict) or not isinstance(marker.get("holders"), dict):
            raise ValueError
    except ValueError:
        marker = None
    if marker is None:
        raise LabelStudioError(
            f"{path}: unreadable record of the project made blind; restore it from a backup"
        ) from None
    return marker


def write_blind_marker(root: Path, shared_project: int, holders: dict[str, list[str]]) -> None:
    state_dir(root)
    with atomic_write(blind_marker_path(root), "w", private=True) as handle:  # holds e-mails: private
        json.dump({"shared_project": shared_project, "holders": dict(sorted(holders.items()))}, handle, indent=1)


def _admin_email(email: str) -> str:
    """The admin builder keeps in the annotator's organization: named by a hash, never by the e-mail."""
    return f"org-{hashlib.sha256(email.encode()).hexdigest()[:12]}@{ADMIN_DOMAIN}"


def isolate_annotator(root: Path, state: server.ServerState, email: str) -> AnnotatorOrganization:
    """Move the account `email` into an organization of its own on the local server (idempotent)."""
    return isolate_annotators(root, state, [email])[email]


def isolate_annotators(root: Path, state: server.ServerState, emails: list[str]) -> dict[str, AnnotatorOrganization]:
    """Move each account of `emails` into an organization of its own on the local server (idempotent).

    The accounts must exist (`builder annotators add` made them). Their membership of every other organization
    is deleted; their annotations stay where they are. Each organization's admin and token are recorded first, so
    a crash between recording and the move is redone by the next call with the same credentials. One request
    does every account, answered inside the running server by its guard: starting Django in a process of
    its own, as builder did before (and still does for a server an older builder started), costs about 10 s on 2
    cores, a minute under load."""
    if not emails:
        return {}
    organizations = read_organizations(root)
    fresh = False
    for email in emails:
        if email not in organizations:
            organizations[email] = AnnotatorOrganization(
                email=email,
                organization=0,
                admin=_admin_email(email),
                token=secrets.token_hex(20),
            )
            fresh = True
    if fresh:
        _write_organizations(root, organizations)
    entries = [
        {
            "email": email,
            "admin": organizations[email].admin,
            "token": organizations[email].token,
            "title": f"builder annotator {organizations[email].admin.split('@')[0]}",
        }
        for email in emails
    ]
    made = _isolate_in_server(state, entries)
    if made is None:  # a server started by an older builder, whose guard has no such request: a Django process
        made = _isolate_in_new_process(state, entries)
    changed = False
    for email, organization in made.items():
        if organization != organizations[email].organization:
            organizations[email] = AnnotatorOrganization(
                **{**asdict(organizations[email]), "organization": organization}
            )
            changed = True
    if changed:
        _write_organizations(root, organizations)
    return {email: organizations[email] for email in emails}


def _isolate_in_server(state: server.ServerState, entries: list[dict]) -> dict[str, int] | None:
    """Ask the running local server's guard to move the accounts (`ISOLATE_PATH` in in_server/
    builder_guard_settings.py, answered to builder's admin token only); None when its guard predates that request."""
    request = urllib.request.Request(
        f"{state.url}{ISOLATE_PATH}",
        data=json.dumps(entries).encode(),
        method="POST",
        headers={"Authorization": f"Token {state.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            if response.headers.get(ISOLATE_HEADER) != "1":
                return None  # not the guard's answer (Label Studio's own page)
            return json.loads(response.read())["made"]
    except urllib.error.HTTPError as exc:
        if exc.headers.get(ISOLATE_HEADER) != "1":
            return None
        if exc.code == 409:
            raise LabelStudioError(_MISSING) from None
        try:
            detail = json.loads(exc.read()).get("detail", "")
        except (ValueError, AttributeError):
            detail = ""
        raise LabelStudioError(
            f"could not give an annotator an organization of their own: the local server answered {exc.code}"
            + (f" ({str(detail)[:200]})" if detail else "")
        ) from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise LabelStudioError(
            f"could not give an annotator an organization of their own: the local server did not answer ({exc})"
        ) from None


def _isolate_in_new_process(state: server.ServerState, entries: list[dict]) -> dict[str, int]:
    """The same move through Label Studio's Django models in a process of its own (10 s or more to start)."""
    python = server.ensure_installed(lambda message: None).parent / "python"
    env = {**server._server_environment(state), "BUILDER_ISOLATE": json.dumps(entries)}  # secrets never in argv
    result = subprocess.run([str(python), "-c", _ISOLATE], env=env, capture_output=True, text=True, umask=0o077)
    if result.returncode == 3:
        raise LabelStudioError(_MISSING)
    if result.returncode != 0:
        last = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        raise LabelStudioError(f"could not give an annotator an organization of their own: {last[:200]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def guarded(url: str, timeout: float = 10.0) -> bool:
    """Whether the Label Studio at `url` runs builder's organization guard (its answers carry the header)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.headers.get(server.GUARD_HEADER) == "1"
    except urllib.error.HTTPError as exc:
        return exc.headers.get(server.GUARD_HEADER) == "1"
    except (urllib.error.URLError, OSError, ValueError):
        return False
