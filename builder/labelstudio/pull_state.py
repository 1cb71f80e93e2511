"""The pull state file, `.builder/pull-state.json`: what the last pull into each output wrote, so that the
next one can be incremental, and when it cannot be (an output changed since, another key, an unreadable or
foreign file), why: a pull then runs in full and says so.

Kept per server (its organization, whatever the URL), project and output file, on this machine only
(private, never committed); annotators' names are not kept here any more but in the committed registry
(registry.py), and `read_accounts` reads the ones earlier versions wrote so that they move there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from builder.jsonio import STATE_DIR, atomic_write, sha256_file, state_dir
from builder.project import Project
from builder.pseudonyms import Pseudonymizer, is_pseudonym

STATE_FORMAT = 2


def _state_path(project: Project) -> Path:
    return project.root / STATE_DIR / "pull-state.json"


def state_key(server: str, project_id: int, output: Path) -> str:
    return f"{server}#{project_id}#{output.resolve()}"


def _load_state(project: Project) -> tuple[dict, str]:
    """The whole state file (`pulls` and `accounts`), and a problem when it cannot be used (then it is empty)."""
    path = _state_path(project)
    empty = {"pulls": {}, "accounts": {}}
    if not path.is_file():
        return empty, ""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return empty, f"{path} is unreadable ({str(exc)[:80]})"
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not isinstance(state.get("pulls"), dict):
        return empty, f"{path} is from another builder version"
    accounts = state.get("accounts")
    return {"pulls": state["pulls"], "accounts": accounts if isinstance(accounts, dict) else {}}, ""


def read_pull_state(project: Project) -> tuple[dict, str]:
    """(pulls by key, problem): an unreadable or foreign state file is an empty one, and says so."""
    state, problem = _load_state(project)
    return state["pulls"], problem


def _accounts_of(state: dict, key_id: str, url: str) -> dict:
    per_key = state["accounts"].get(key_id)
    known = per_key.get(url) if isinstance(per_key, dict) else None
    return known if isinstance(known, dict) else {}


def read_accounts(project: Project, key_id: str, url: str) -> dict[str, str]:
    """The pseudonyms earlier versions recorded in this machine's pull state for a server's URL (user id ->
    pseudonym): read once more, so that they move into the committed registry (registry.py)."""
    known = _accounts_of(_load_state(project)[0], key_id, url)
    return {k: v for k, v in known.items() if isinstance(k, str) and k.isascii() and k.isdigit() and is_pseudonym(v)}


def write_pull_state(project: Project, key: str, entry: dict) -> None:
    state, _ = _load_state(project)
    state["pulls"][key] = entry
    path = _state_path(project)
    state_dir(project.root)
    with atomic_write(path, "w", private=True) as handle:
        json.dump({"format": STATE_FORMAT, **state}, handle, indent=2, sort_keys=True)


def previous_since(previous: dict | None) -> str:
    """Fallback when the server sends no Date header: the previous `since` (never later than now)."""
    return (previous or {}).get("since") or "1970-01-01T00:00:00.000000Z"


def why_not_incremental(previous: dict | None, output: Path, pseudonymize: Pseudonymizer, now: datetime | None) -> str:
    if previous is None:
        return f"no earlier pull into {output} from this server and project"
    if not output.is_file():
        return f"{output} does not exist"
    if not isinstance(previous, dict) or not all(
        isinstance(previous.get(k), str) for k in ("since", "snapshot_sha256", "key_id")
    ):
        return "the pull state is incomplete"
    try:
        since = datetime.strptime(previous["since"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return "the pull state's time is unreadable"
    if now is not None and since > now:
        return "the pull state's time is later than the server's clock"
    if sha256_file(output) != previous["snapshot_sha256"]:
        return f"{output} changed since the last pull into it"
    if previous["key_id"] != pseudonymize.key_id:
        return "the pseudonym key changed"
    return ""
