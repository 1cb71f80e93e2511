"""Annotator accounts: sign-up through the organisation's invite link, then an API token per user.

Users made with the API's `users.create` cannot log in; an annotator joins the way a person
would: the invite link (`GET /api/invite`), the sign-up form, then their own token.
"""

from __future__ import annotations

import re

from builder.errors import LabelStudioError
from builder.labelstudio.client import Connection, check_response


def invite_token(connection: Connection) -> str:
    """The organisation's invite token (what `/user/signup/?token=...` links carry)."""
    response = connection.http().request("api/invite", method="GET")
    return check_response(connection, response, "fetching the invite link")["token"]


def _form(session, url: str) -> str:
    page = session.get(url)
    if page.status_code >= 400:
        raise LabelStudioError(f"Label Studio answered {page.status_code} for {url}")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    return match.group(1) if match else session.cookies.get("csrftoken", "")


def annotator_connection(connection: Connection, email: str, password: str) -> Connection:
    """Sign `email` up through the invite link (or log in if it exists) and return a connection as them."""
    import httpx

    with httpx.Client(base_url=connection.url, follow_redirects=True, timeout=60) as session:
        signup = f"/user/signup/?token={invite_token(connection)}"
        csrf = _form(session, signup)
        headers = {"Referer": f"{connection.url}{signup}"}
        session.post(signup, data={"email": email, "password": password, "csrfmiddlewaretoken": csrf}, headers=headers)
        if session.get("/api/current-user/whoami").status_code != 200:
            csrf = _form(session, "/user/login/")
            session.post(
                "/user/login/",
                data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
                headers={"Referer": f"{connection.url}/user/login/"},
            )
        response = session.get("/api/current-user/token")
        if response.status_code != 200:
            raise LabelStudioError(
                f"could not sign up or log in an annotator account at {connection.url} ({response.status_code})"
            )
        return Connection(connection.url, response.json()["token"], f"annotator {email}")
