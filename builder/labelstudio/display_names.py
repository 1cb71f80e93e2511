"""Accounts builder makes are shown under their pseudonym, in Label Studio and in `builder annotators add`.

Label Studio shows an account's first and last name wherever it names a person (annotation tabs, the
Data Manager, the members page), and its e-mail only when both are empty. So each account `annotators
add` makes (or finds a member already) gets as its first name the pseudonym the published dataset gives
it, and no last name: other annotators see `annotator-…`, never the e-mail. The pseudonym is the one
`builder pull` gives the account (annotator_names.py): its recorded name, else the keyed pseudonym of
its e-mail; the project's pseudonym key is made here when nothing was pulled yet, as a first pull would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from builder.labelstudio.accounts import (
    ADDED,
    ALREADY_MEMBER,
    Added,
    AddResult,
    add_annotators,
    checked_emails,
    organization_users,
)
from builder.labelstudio.client import Connection, calling, check_response
from builder.project import Project


def _find_user(connection: Connection, email: str) -> int | None:
    return next((user.id for user in organization_users(connection) if user.active and user.email == email), None)


def show_as(connection: Connection, user_id: int, pseudonym: str) -> None:
    """Set the account's first name to `pseudonym` and clear its last name (what Label Studio shows)."""
    import json

    doing = "naming the account after its pseudonym"
    with calling(connection, doing):
        response = connection.http().request(
            f"api/users/{user_id}",
            method="PATCH",
            content=json.dumps({"first_name": pseudonym, "last_name": ""}),
            headers={"Content-Type": "application/json"},
        )
    check_response(connection, response, doing)


def planned_pseudonyms(
    connection: Connection, project: Project, emails: Iterable[str], log: Callable[[str], None] = lambda message: None
) -> dict[str, str]:
    """E-mail -> the pseudonym a pull gives its account (a member's recorded name, else the e-mail's keyed one)."""
    from builder.labelstudio.annotator_names import annotator_names, pseudonymizer_for

    # the accounts first: an answer builder cannot read stops here, before a pseudonym key is made
    members = {user.email: user.id for user in organization_users(connection) if user.active and user.email}
    pseudonymize = pseudonymizer_for(project, project.snapshot_path, log)
    named = annotator_names(connection, project, pseudonymize)
    return {email: named(members[email]) if email in members else pseudonymize(email) for email in emails}


def add_named_annotators(
    connection: Connection,
    project: Project,
    emails: Iterable[str],
    invite_only: bool = False,
    on_account: Callable[[Added, str], None] = lambda account, pseudonym: None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[AddResult, dict[str, str]]:
    """`accounts.add_annotators`, each account then named after its pseudonym in Label Studio.

    Returns the result and each e-mail's pseudonym; `on_account` sees each account with its pseudonym as
    soon as it is made and named. A person who signs up through the invite link (--invite-only) is named
    once `annotators add` is run with their e-mail afterwards (they are a member then); until then Label
    Studio shows their e-mail. `log` hears of a pseudonym key made here."""
    wanted = checked_emails(emails)
    names = planned_pseudonyms(connection, project, wanted, log)

    def named(account: Added) -> None:
        if account.status in (ADDED, ALREADY_MEMBER):
            user_id = _find_user(connection, account.email)
            if user_id is not None:
                show_as(connection, user_id, names[account.email])
        on_account(account, names[account.email])

    result = add_annotators(connection, wanted, invite_only, on_account=named)
    return result, names
