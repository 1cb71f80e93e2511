"""Annotators' names in a pull: every Label Studio account's pseudonym, and the check that a pull does not
rename the annotators of a snapshot it replaces.

Names are kept apart from the pull that uses them because they must not depend on it: an account keeps
the name it was first given (the committed registry), whatever its e-mail becomes, and a pull with
another pseudonym key is refused before it would rename everyone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builder.labelstudio.client import Connection, calling, unexpected_answer
from builder.labelstudio.pull_state import read_accounts
from builder.project import Project
from builder.pseudonyms import LEGACY_SCHEME, Pseudonymizer, create_key, load_key, scheme_of
from builder.records.snapshot import TaskStore

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def pseudonymizer_for(project: Project, output: Path, log: Callable[[str], None]) -> Pseudonymizer:
    """The project's pseudonym key; a new one only if nothing was pulled with another key before."""
    key = load_key(project.root)
    if key is None:
        if output.is_file():
            from builder.jsonio import read_jsonl

            tasks = (t for t in read_jsonl(output, on_bad_line=lambda where, detail: None) if isinstance(t, dict))
            names = {
                a.get("annotator")
                for t in tasks
                if isinstance(t.get("annotations"), list)
                for a in t["annotations"]
                if isinstance(a, dict)
            }
            if scheme_of(n for n in names if isinstance(n, str)) not in (None, "sha256-unkeyed/8"):
                from builder.pseudonyms import KEY_VARIABLE, PseudonymKeyError, key_path

                raise PseudonymKeyError(
                    f"{output} was pulled with a pseudonym key, and {key_path(project.root)} is missing: "
                    "copy it from the maintainer who pulled (docs/team-admins.md: 'The pseudonym key'), "
                    f"or set {KEY_VARIABLE}; "
                    "a new key would rename every annotator"
                )
        key = create_key(project.root)
        log(
            "made a new pseudonym key in .builder/pseudonym.key "
            "(keep a copy: every maintainer who pulls needs the same key)"
        )
    return Pseudonymizer(key, project.name)


@dataclass
class AccountNames:
    """Label Studio user id -> pseudonym on one server (`server`: its identity, registry.server_identity).

    `unnamed`: the names made from an account's id because neither a recorded name nor an e-mail was
    there (a removed account whose name was never recorded): what a rename is then due to."""

    server: str
    names: dict[int, str]
    pseudonymize: Pseudonymizer
    unnamed: set[str] = field(default_factory=set)
    # the recorded name of an account the server does not list (no longer a member of this organization at all,
    # as an annotator moved into an organization of their own by `builder annotators blind`)
    recorded: Callable[[int], str | None] = lambda user_id: None

    def __call__(self, user_id) -> str:
        if user_id in self.names:
            return self.names[user_id]
        recorded = self.recorded(user_id) if type(user_id) is int else None
        if recorded is not None:
            self.names[user_id] = recorded
            return recorded
        name = self.pseudonymize(f"user-{user_id}@{self.server}")
        self.unnamed.add(name)
        return name


def annotator_names(connection: Connection, project: Project, pseudonymize: Pseudonymizer) -> AccountNames:
    """Every account's pseudonym (ids and e-mails never leave builder's memory).

    An account keeps the name it was first given (recorded in the committed registry, `annotations/
    label-studio.json`, per server and key), so a changed e-mail never renames anyone; Label Studio
    sets the e-mail of every account removed from the organization to "Deleted", which must not merge
    those people into one. A new account is named from its e-mail, so the same person gets the same
    name on any server; an account without a usable e-mail is named from its id on this server (the
    server's identity, not its URL).
    """
    from builder.labelstudio.registry import known_names, server_identity

    server = server_identity(connection)
    doing = "listing users"
    with calling(connection, doing):
        users = list(connection.client().users.list())
    if not all(type(getattr(user, "id", None)) is int for user in users):
        raise unexpected_answer(connection, doing, "users with integer ids")
    legacy = read_accounts(project, pseudonymize.key_id, connection.url)
    known = {int(user_id): name for user_id, name in legacy.items()}
    known.update(known_names(project, server, pseudonymize, [user.id for user in users]))
    named = AccountNames(
        server,
        {},
        pseudonymize,
        recorded=lambda user_id: known_names(project, server, pseudonymize, [user_id]).get(user_id),
    )
    for user in users:
        email = getattr(user, "email", None)
        if user.id in known:
            named.names[user.id] = known[user.id]
        elif isinstance(email, str) and _EMAIL.match(email.strip()):
            named.names[user.id] = pseudonymize(email)
        else:
            named.names[user.id] = named(user.id)
    return named


def remember_names(project: Project, named: AccountNames, user_ids=None) -> None:
    """Record the names of these accounts (all listed ones by default) in the committed registry."""
    from builder.labelstudio.registry import remember_names as record

    chosen = named.names if user_ids is None else {u: named.names[u] for u in user_ids if u in named.names}
    record(project, named.server, named.pseudonymize, chosen)


def give_names(connection: Connection, project: Project, pseudonymize: Pseudonymizer, by_email: dict[str, str]) -> int:
    """Record `by_email`'s pseudonym (e-mail -> name) for each of these accounts on the server, so that the next
    pull names them so whatever the key: `builder run` pulls the bundled sample under the names of the committed
    snapshot, which was pulled with the maintainers' key. Returns how many accounts were found and named."""
    from builder.labelstudio.registry import remember_names as record
    from builder.labelstudio.registry import server_identity

    wanted = {email.strip().lower(): name for email, name in by_email.items()}
    doing = "listing users"
    with calling(connection, doing):
        users = list(connection.client().users.list())
    chosen = {}
    for user in users:
        email = getattr(user, "email", None)
        if type(getattr(user, "id", None)) is int and isinstance(email, str) and email.strip().lower() in wanted:
            chosen[user.id] = wanted[email.strip().lower()]
    record(project, server_identity(connection), pseudonymize, chosen, replace=True)
    return len(chosen)


class RenameCheck:
    """Refuses a pull that would give an annotation already in the output another keyed pseudonym.

    The same annotation (task id, annotation id, sentence and labels) under another name means another
    pseudonym key (every annotator would be renamed), unless the new name was made from the account's id
    (`unnamed`): then Label Studio no longer shows the account's e-mail (removed from the organization)
    and its name is not in the committed registry, and the message says that instead. Names of the
    unkeyed scheme of release 1.0.0 move to the keyed scheme, as intended, and that is said.
    """

    def __init__(self, unnamed: set[str] | None = None) -> None:
        self.renamed, self.example, self.legacy = 0, None, 0
        self.unnamed = unnamed if unnamed is not None else set()
        self.by_key = 0  # renamed annotations whose new name came from an e-mail (or a recorded name)

    def compare(self, old, new: dict | None) -> None:
        if not isinstance(old, dict) or not isinstance(old.get("annotations"), list):
            return
        if (
            new is None
            or not isinstance(old.get("data"), dict)
            or old["data"].get("sentence_id") != new["data"].get("sentence_id")
        ):
            return
        now_named = {a["id"]: a for a in new["annotations"]}
        for annotation in old["annotations"]:
            if not isinstance(annotation, dict) or annotation.get("id") not in now_named:
                continue
            same = now_named[annotation["id"]]
            if same["result"] != annotation.get("result") or same["annotator"] == annotation.get("annotator"):
                continue
            if scheme_of([str(annotation.get("annotator"))]) == LEGACY_SCHEME:
                self.legacy += 1
                continue
            self.renamed += 1
            self.by_key += same["annotator"] not in self.unnamed
            self.example = self.example or (annotation.get("annotator"), same["annotator"])

    def against(self, output: Path, store: TaskStore) -> None:
        """Compare every task of `output` (any content) with the task of the same id in `store`."""
        from builder.jsonio import read_jsonl

        for old in read_jsonl(output, on_bad_line=lambda where, detail: None):
            if isinstance(old, dict) and isinstance(old.get("annotations"), list):
                task_id = old.get("task_id")
                if type(task_id) is int:
                    self.compare(old, store.get(task_id))

    def finish(self, output: Path, log: Callable[[str], None]) -> None:
        from builder.pseudonyms import KEY_VARIABLE, PseudonymKeyError

        if self.legacy:
            log(
                f"{self.legacy} annotations in {output} move from the unkeyed pseudonyms of release 1.0.0 to keyed ones"
            )
        if self.renamed and not self.by_key:
            from builder.labelstudio.registry import REGISTRY_NAME

            raise PseudonymKeyError(
                f"pulling would rename the annotators of {self.renamed} annotations in {output} "
                f"(e.g. {self.example[0]} -> {self.example[1]}): their accounts were removed from the organization "
                f"(Label Studio hides their e-mail) and their names are not in annotations/{REGISTRY_NAME}; "
                "restore that file from git (it keeps every account's name), or pass --rename-annotators "
                "to rename them on purpose"
            )
        if self.renamed:
            raise PseudonymKeyError(
                f"pulling would rename the annotators of {self.renamed} annotations in {output} "
                f"(e.g. {self.example[0]} -> {self.example[1]}): "
                "this is not the pseudonym key they were pulled with; use that key "
                f"(.builder/pseudonym.key or {KEY_VARIABLE}), or pass --rename-annotators to rename them on purpose"
            )
