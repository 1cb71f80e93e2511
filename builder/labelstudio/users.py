"""Annotator accounts: sign-up through the organisation's invite link, then an API token per user.

Users made with the API's `users.create` cannot log in; an annotator joins the way a person
would: the invite link (`GET /api/invite`), the sign-up form, then their own token.
"""

from __future__ import annotations

import html
import re

from builder.errors import LabelStudioError
from builder.labelstudio.client import Connection, check_response, ssl_context, unexpected_answer

_FIELD_ERRORS = re.compile(r'<ul class="field_errors">(.*?)</ul>', re.S)
_ITEM = re.compile(r"<li>(.*?)</li>", re.S)
ALREADY_EXISTS = "User with this email already exists"


def invite_token(connection: Connection) -> str:
    """The organisation's invite token (what `/user/signup/?token=...` links carry)."""
    doing = "fetching the invite link"
    response = connection.http().request("api/invite", method="GET")
    body = check_response(connection, response, doing)
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
        raise unexpected_answer(connection, doing, "the organization's invite token")
    return body["token"]


def invite_url(connection: Connection, token: str | None = None) -> str:
    """The link a person opens to join the organization (its sign-up page with the invite token)."""
    return f"{connection.public_url}/user/signup/?token={token or invite_token(connection)}"


def _form(session, url: str) -> str:
    page = session.get(url)
    if page.status_code >= 400:
        raise LabelStudioError(f"Label Studio answered {page.status_code} for {url.split('?')[0]}")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    return match.group(1) if match else session.cookies.get("csrftoken", "")


def _form_errors(page: str) -> list[str]:
    """The field errors a Label Studio form page shows (e-mail taken, password too short, ...)."""
    return [html.unescape(item).strip() for block in _FIELD_ERRORS.findall(page) for item in _ITEM.findall(block)]


def _session(connection: Connection):
    import httpx

    return httpx.Client(base_url=connection.url, follow_redirects=True, timeout=60, verify=ssl_context())


def _sign_up(session, connection: Connection, email: str, password: str, token: str) -> list[str] | None:
    """Post the sign-up form in `session`: None when the account was made (and is logged in), else the
    form's reasons for refusing (such as ALREADY_EXISTS)."""
    signup = f"/user/signup/?token={token}"
    csrf = _form(session, signup)
    page = session.post(
        signup,
        data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{connection.url}/user/signup/"},
    )
    if session.get("/api/current-user/whoami").status_code == 200:
        return None
    return _form_errors(page.text) or [f"answer {page.status_code}"]


def sign_up(connection: Connection, email: str, password: str, token: str | None = None) -> bool:
    """Make an account the way a person joins: the invite link's sign-up form.

    True when the account was made; False when the e-mail has an account already (nothing changes);
    any other refusal is an error naming the form's reasons.
    """
    with _session(connection) as session:
        refused = _sign_up(session, connection, email, password, token or invite_token(connection))
        if refused is None:  # signed in as the new account: builder needs nothing more from it
            session.get("/user/logout/")
    if refused is None:
        return True
    if ALREADY_EXISTS in refused:
        return False
    raise LabelStudioError(f"Label Studio at {connection.url} refused the sign-up form: {'; '.join(refused)}")


def annotator_connection(connection: Connection, email: str, password: str) -> Connection:
    """Sign `email` up through the invite link (or log in if it exists) and return a connection as them."""
    with _session(connection) as session:
        refused = _sign_up(session, connection, email, password, invite_token(connection))
        if refused is not None:  # an existing account, presumably: log in
            csrf = _form(session, "/user/login/")
            session.post(
                "/user/login/",
                data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
                headers={"Referer": f"{connection.url}/user/login/"},
            )
        response = session.get("/api/current-user/token")
        if response.status_code != 200:
            raise LabelStudioError(
                f"could not sign up or log in an annotator account at {connection.url} ({response.status_code}; "
                f"sign-up refused: {'; '.join(refused or [])})"
            )
        return Connection(connection.url, response.json()["token"], f"annotator {email}")
