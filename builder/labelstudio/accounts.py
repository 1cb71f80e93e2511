"""Annotator accounts of the Label Studio organization: add, list with progress, remove.

An account is made the way a person joins: the organization's invite link and its sign-up form
(accounts made with the API's `users.create` cannot log in). Listing shows each account under the
pseudonym `builder pull` gives it, never its Label Studio id. Removing an account is Label Studio's
own soft delete of the membership: its annotations stay, and keep their pseudonym in later pulls.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from builder.errors import BuilderError, LabelStudioError
from builder.labelstudio.client import LIST_PAGE, Connection, calling, check_response, task_pages, unexpected_answer
from builder.labelstudio.users import invite_token, invite_url, sign_up
from builder.project import Project

ADDED = "added"
ALREADY_MEMBER = "already a member"
REMOVED_EARLIER = "removed earlier: not re-added"
TO_SIGN_UP = "to sign up with the invite link"
AFTER_FIRST_PULL = "(after the first pull)"
# Label Studio shows an account removed from the organization as first name "Deleted", last name
# "User", e-mail "Deleted" (never an address: sign-up requires one).
_REMOVED_EMAIL = "Deleted"
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}$")
RESOLVE_BATCH = 100  # tasks per request when who skipped what must be read from the annotations


def checked_emails(emails: Iterable[str]) -> list[str]:
    """The e-mails lower-cased (as Label Studio stores them), without repeats; one error naming every invalid one."""
    result, invalid = [], []
    for given in emails:
        email = given.strip().lower()
        local, _, domain = email.rpartition("@")
        if len(email) > 254 or not _LOCAL.match(local) or not _DOMAIN.match(domain):
            invalid.append(given)
        elif email not in result:
            result.append(email)
    if invalid:
        raise BuilderError(
            f"not an e-mail address: {', '.join(repr(e) for e in invalid)}; nothing was changed in Label Studio"
        )
    return result


def mask_email(email: str | None) -> str:
    """`a•••@example.org`: the first character and the domain, enough to tell accounts apart on screen."""
    if not email:
        return "-"
    local, at, domain = email.partition("@")
    return f"{local[:1]}•••{at}{domain}"


@dataclass(frozen=True)
class User:
    id: int
    email: str | None  # None once removed from the organization (Label Studio hides it)
    active: bool


def organization_users(connection: Connection) -> list[User]:
    """Every account of the organization, removed ones included (as inactive, without e-mail), by id."""
    doing = "listing the organization's accounts"
    with calling(connection, doing):
        listed = list(connection.client().users.list())
    users = []
    for user in listed:
        user_id, email = getattr(user, "id", None), getattr(user, "email", None)
        if type(user_id) is not int:
            raise unexpected_answer(connection, doing, "users with integer ids")
        if email is not None and not isinstance(email, str):  # its value is never shown: it may hold an address
            raise LabelStudioError(
                f"Label Studio at {connection.url} lists user {user_id} with an e-mail that is not a string "
                f"(field email: {type(email).__name__}); nothing was changed: fix or remove that account"
            )
        removed = email == _REMOVED_EMAIL and getattr(user, "last_name", None) == "User"
        users.append(User(user_id, None if removed or not email else email.strip().lower(), not removed))
    return sorted(users, key=lambda u: u.id)


def _whoami(connection: Connection):
    with calling(connection, "identifying the API key's account"):
        return connection.client().users.whoami()


# --- add ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    email: str
    status: str  # ADDED, ALREADY_MEMBER, REMOVED_EARLIER or TO_SIGN_UP
    password: str | None = None


@dataclass
class AddResult:
    accounts: list[Added] = field(default_factory=list)
    login_url: str = ""
    invite_url: str | None = None  # only with invite_only


def add_annotators(
    connection: Connection,
    emails: Iterable[str],
    invite_only: bool = False,
    on_account: Callable[[Added], None] = lambda account: None,
) -> AddResult:
    """Make an account for each e-mail through the invite link's sign-up form, with a generated password.

    All e-mails are checked before anything is made. An e-mail that is a member already is reported,
    not changed; one whose account was removed from the organization cannot be re-added this way (Label
    Studio keeps the account and refuses a second sign-up). `invite_only` makes nothing: it returns the
    invite link for people to sign up with a password of their own. `on_account` sees each account as
    soon as it is made, so that a failure later never loses a password already set.
    """
    wanted = checked_emails(emails)
    members = {user.email for user in organization_users(connection) if user.active}
    token = invite_token(connection)
    result = AddResult(login_url=f"{connection.public_url}/user/login/")
    if invite_only:
        result.invite_url = invite_url(connection, token)
    for email in wanted:
        if email in members:
            account = Added(email, ALREADY_MEMBER)
        elif invite_only:
            account = Added(email, TO_SIGN_UP)
        else:
            password = secrets.token_urlsafe(12)
            made = sign_up(connection, email, password, token)
            account = Added(email, ADDED, password) if made else Added(email, REMOVED_EARLIER)
        result.accounts.append(account)
        on_account(account)
    return result


# --- list --------------------------------------------------------------------------------------


@dataclass
class Annotator:
    email: str | None
    pseudonym: str
    active: bool
    annotated: int  # tasks with an annotation of theirs that is not cancelled
    skipped: int  # tasks they only skipped (cancelled annotations)
    remaining: int | None  # tasks they have not touched that still need annotations; None when removed
    assigned: int | None = None  # blind projects: the tasks of their copy (their share, gold questions included)


@dataclass
class AnnotatorList:
    project_title: str
    tasks: int
    overlap: int | None  # the project's annotators per task (maximum_annotations)
    annotators: list[Annotator]
    pushed: bool = True  # False before the first `builder push`: no project in Label Studio, no progress

    def note(self) -> str:
        """The line above the rows: the project's size, or that nothing is pushed yet."""
        if not self.pushed:
            return (
                f"project '{self.project_title}': nothing pushed yet (`builder push` makes it), so no progress; "
                f"{self.overlap} annotator(s) per task once pushed"
            )
        return f"project '{self.project_title}': {self.tasks} tasks, {self.overlap} annotator(s) per task"

    def as_dict(self, show_emails: bool = False) -> dict:
        return {
            "project": self.project_title,
            "pushed": self.pushed,
            "tasks": self.tasks,
            "overlap": self.overlap,
            "annotators": [
                {
                    "pseudonym": a.pseudonym,
                    "active": a.active,
                    "annotated": a.annotated,
                    "skipped": a.skipped,
                    "remaining": a.remaining,
                    **({"assigned": a.assigned} if a.assigned is not None else {}),
                    "email": a.email if show_emails or a.email is None else mask_email(a.email),
                }
                for a in self.annotators
            ],
        }


@dataclass
class _Progress:
    tasks: int = 0
    open_tasks: int = 0  # tasks with fewer annotations than their overlap
    annotated: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    open_touched: Counter = field(default_factory=Counter)  # open tasks each user annotated or skipped
    unclear: list[int] = field(default_factory=list)  # tasks where who skipped must be read from the annotations


def _progress(connection: Connection, project_id: int) -> _Progress:
    """Per-user counts from one listing of the tasks with their annotators and annotation counts.

    `review=1` makes Label Studio compute each task's `annotators` (everyone with an annotation, skipped
    or not). Only a task with both kinds of annotation and several annotators leaves open who skipped;
    those few are read with their annotations afterwards, in batches.
    """
    doing = "listing the project's tasks with their annotators"
    params = {
        "fields": "task_only",
        "review": 1,
        "include": "id,overlap,total_annotations,cancelled_annotations,annotators",
        "query": json.dumps({"ordering": ["tasks:id"]}),
    }
    progress = _Progress()
    for tasks in task_pages(connection, project_id, params, doing, LIST_PAGE):
        for task in tasks:
            try:
                who = {int(u) for u in task["annotators"] if u is not None}
                done, cancelled, overlap = (
                    int(task["total_annotations"]),
                    int(task["cancelled_annotations"]),
                    int(task["overlap"]),
                )
                task_id = int(task["id"])
            except (KeyError, TypeError, ValueError):
                raise unexpected_answer(connection, doing, "tasks with annotators and annotation counts") from None
            progress.tasks += 1
            if done < overlap:
                progress.open_tasks += 1
                progress.open_touched.update(who)
            if cancelled == 0:
                progress.annotated.update(who)
            elif done == 0:
                progress.skipped.update(who)
            elif len(who) == 1:  # one person made them all, a submitted one among them
                progress.annotated.update(who)
            else:
                progress.unclear.append(task_id)
    _resolve(connection, project_id, progress)
    return progress


def _resolve(connection: Connection, project_id: int, progress: _Progress) -> None:
    doing = "reading who skipped which task"
    for start in range(0, len(progress.unclear), RESOLVE_BATCH):
        batch = progress.unclear[start : start + RESOLVE_BATCH]
        params = {"fields": "all", "query": json.dumps({"selectedItems": {"all": False, "included": batch}})}
        for tasks in task_pages(connection, project_id, params, doing, RESOLVE_BATCH):
            for task in tasks:
                submitted, skipped = set(), set()
                try:
                    for annotation in task["annotations"]:
                        user = annotation["completed_by"]
                        user = user["id"] if isinstance(user, dict) else user
                        if user is not None:
                            (skipped if annotation["was_cancelled"] else submitted).add(int(user))
                except (KeyError, TypeError, ValueError):
                    raise unexpected_answer(connection, doing, "tasks with their annotations") from None
                progress.annotated.update(submitted)
                progress.skipped.update(skipped - submitted)


def list_annotators(connection: Connection, project: Project) -> AnnotatorList:
    """Each account of the organization with its pseudonym and its progress in the project.

    The pseudonym is the one `builder pull` gives: the account's recorded name from earlier pulls,
    else the one the project's pseudonym key gives its e-mail; without a key (nothing pulled yet) it
    is AFTER_FIRST_PULL, and no key is made here. The account the API key belongs to (the admin
    builder made) is left out unless it annotated in the project. Before the first push there is no
    project to count in: the accounts are listed all the same (a team admin adds them before pushing),
    with no progress and `pushed` False.
    """
    from builder.labelstudio.project_api import find_project

    project_id = find_project(connection, project)
    users = organization_users(connection)
    if project_id is None:
        return _before_first_push(connection, project, users)
    with calling(connection, "reading the project's settings"):
        overlap = connection.client().projects.get(project_id).maximum_annotations
    progress = _progress(connection, project_id)
    names = _pseudonyms(connection, project)
    me = _whoami(connection).id
    known = {user.id for user in users}
    # accounts that annotated but are not listed among the organization's users any more
    others = sorted((set(progress.annotated) | set(progress.skipped)) - known)
    rows = []
    for user in [*users, *(User(user_id, None, False) for user_id in others)]:
        annotated, skipped = progress.annotated[user.id], progress.skipped[user.id]
        if user.id == me and not annotated and not skipped:
            continue
        rows.append(
            Annotator(
                email=user.email,
                pseudonym=names(user.id) if names else AFTER_FIRST_PULL,
                active=user.active,
                annotated=annotated,
                skipped=skipped,
                remaining=progress.open_tasks - progress.open_touched[user.id] if user.active else None,
            )
        )
    return AnnotatorList(project.project_title, progress.tasks, overlap, rows)


def _before_first_push(connection: Connection, project: Project, users: list[User]) -> AnnotatorList:
    """Every account but the API key's, with nothing annotated and nothing remaining yet (no tasks)."""
    names = _pseudonyms(connection, project)
    me = _whoami(connection).id
    rows = [
        Annotator(
            email=user.email,
            pseudonym=names(user.id) if names else AFTER_FIRST_PULL,
            active=user.active,
            annotated=0,
            skipped=0,
            remaining=None,
        )
        for user in users
        if user.id != me
    ]
    return AnnotatorList(project.project_title, 0, project.annotators_per_sentence, rows, pushed=False)


def _pseudonyms(connection: Connection, project: Project) -> Callable[[int], str] | None:
    """User id -> the pseudonym `builder pull` gives; None when the project has no pseudonym key yet."""
    from builder.labelstudio.annotator_names import annotator_names
    from builder.pseudonyms import Pseudonymizer, load_key

    key = load_key(project.root)
    if key is None:
        return None
    return annotator_names(connection, project, Pseudonymizer(key, project.name))  # an unknown id: as a pull names it


# --- remove ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removed:
    email: str
    pseudonym: str | None  # the name its annotations keep; None when nothing was pulled yet (no key)


def remove_annotator(connection: Connection, email: str, project: Project | None = None) -> Removed:
    """Remove the account with `email` from the organization; its annotations stay.

    Label Studio's membership delete is a soft delete: the account and everything it annotated stay in
    the database, the account loses access, and Label Studio hides its e-mail from then on. So that a
    later pull still gives its annotations the same pseudonym, the account's name is first recorded in
    the committed registry, `annotations/label-studio.json` (when the project has a pseudonym key).
    """
    [email] = checked_emails([email])
    matches = [user for user in organization_users(connection) if user.active and user.email == email]
    if not matches:
        raise LabelStudioError(
            f"no account of the organization at {connection.url} has this e-mail (removed already, or never added): "
            "see `builder annotators list --show-emails`"
        )
    user = matches[0]
    me = _whoami(connection)
    if user.id == me.id:
        raise LabelStudioError("this is the account builder's API key belongs to; Label Studio never removes it")
    pseudonym = _remember(connection, project, user.id) if project is not None else None
    doing = "removing the account from the organization"
    with calling(connection, doing):
        response = connection.http().request(
            f"api/organizations/{me.active_organization}/memberships/{user.id}/", method="DELETE"
        )
    check_response(connection, response, doing)
    return Removed(email, pseudonym)


def _remember(connection: Connection, project: Project, user_id: int) -> str | None:
    """Record the account's pseudonym in the committed registry; None without a key."""
    from builder.labelstudio.annotator_names import annotator_names, remember_names
    from builder.pseudonyms import Pseudonymizer, load_key

    key = load_key(project.root)
    if key is None:
        return None
    named = annotator_names(connection, project, Pseudonymizer(key, project.name))
    remember_names(project, named, [user_id])
    return named.names[user_id]
