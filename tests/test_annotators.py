"""`builder annotators add|list|remove` against a real Label Studio (never mocked)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from builder.errors import BuilderError
from builder.jsonio import read_jsonl
from builder.labelstudio import accounts
from builder.labelstudio.accounts import checked_emails, list_annotators, mask_email
from builder.labelstudio.push import push_sentences
from builder.labelstudio.users import annotator_connection
from builder.pseudonyms import Pseudonymizer, load_key

from .conftest import cli_env, make_project, run_cli
from .proxy import FailingProxy
from .test_annotator_ui import chromium  # noqa: F401 -- the fixture: Debian's chromium, headless
from .test_labelstudio import annotate, synthetic_sentences

ROW = re.compile(
    r"^(annotator-[0-9a-f]{12})\s+(\S+)\s+(added|already a member|to sign up with the invite link)\s+(\S+)$", re.M
)


def _add(ls, cwd, *args):
    result = run_cli("annotators", "add", *args, env=cli_env(ls), cwd=cwd)
    assert ls.api_key not in result.stdout + result.stderr
    return result


def _rows(stdout: str) -> list[tuple[str, str, str]]:
    """(e-mail as shown, status, password) of each account row `annotators add` printed."""
    return [row[1:] for row in ROW.findall(stdout)]


def _passwords(stdout: str) -> list[str]:
    return [password for _, status, password in _rows(stdout) if status == "added"]


def _form_post(opener, url: str, page_url: str, fields: dict) -> str:
    """Fetch a Label Studio form page for its CSRF token, post `fields` to it; the final page's URL."""
    with opener.open(page_url) as page:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode()).group(1)
    data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(url, data=data, headers={"Referer": page_url})
    with opener.open(request) as answer:
        return answer.url


def _whoami(opener, base: str) -> str | None:
    """The e-mail of the session's account, or None when the session is not logged in."""
    try:
        with opener.open(f"{base}/api/current-user/whoami") as answer:
            return json.loads(answer.read())["email"]
    except urllib.error.HTTPError:
        return None


def _plain_session():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _plain_login(base: str, email: str, password: str) -> str | None:
    opener = _plain_session()
    _form_post(opener, f"{base}/user/login/", f"{base}/user/login/", {"email": email, "password": password})
    return _whoami(opener, base)


def test_emails_are_checked_first_and_masked():
    assert checked_emails([" Ann@Example.org", "ann@example.org", "b.c+tag@sub.example.co"]) == [
        "ann@example.org",
        "b.c+tag@sub.example.co",
    ]
    for bad in ("", "ann", "ann@", "@example.org", "ann@example", "a b@example.org", "ann@@example.org", ".a@x.org"):
        with pytest.raises(BuilderError, match="not an e-mail address"):
            checked_emails(["ok@example.org", bad])
    with pytest.raises(BuilderError) as error:
        checked_emails(["one", "ok@example.org", "two@"])
    assert "'one'" in str(error.value) and "'two@'" in str(error.value) and "\n" not in str(error.value)
    assert mask_email("ann1@example.org") == "a•••@example.org" and mask_email(None) == "-"


def test_added_accounts_log_in_through_the_login_page_and_a_plain_session(ls, chromium, tmp_path):  # noqa: F811
    make_project(tmp_path, "accounts: add")
    emails = ["add.one@example.org", "add.two@example.org"]
    added = _add(ls, tmp_path, *emails)
    assert added.returncode == 0, added.stderr
    output = added.stdout + added.stderr
    passwords = _passwords(added.stdout)
    assert len(passwords) == 2 and len(set(passwords)) == 2 and all(len(p) >= 16 for p in passwords)
    assert "a•••@example.org" in added.stdout and not any(email in output for email in emails)
    assert f"they log in at {ls.url}/user/login/" in added.stdout

    # the real login page, in headless Chromium
    page = chromium.new_page()
    page.goto(f"{ls.url}/user/login/")
    page.fill('input[name="email"]', emails[0])
    page.fill('input[name="password"]', passwords[0])
    page.click('button[type="submit"], input[type="submit"]')
    page.wait_for_load_state("networkidle")
    assert "/user/login" not in page.url
    assert page.request.get(f"{ls.url}/api/current-user/whoami").json()["email"] == emails[0]
    page.close()

    # a plain HTTP session, and a wrong password for contrast
    assert _plain_login(ls.url, emails[1], passwords[1]) == emails[1]
    assert _plain_login(ls.url, emails[1], passwords[0]) is None

    again = _add(ls, tmp_path, emails[1].upper(), "--show-emails")
    assert again.returncode == 0, again.stderr
    assert _rows(again.stdout) == [(emails[1], "already a member", "-")]
    assert _plain_login(ls.url, emails[1], passwords[1]) == emails[1]  # the password was left alone

    # one invalid e-mail: one line naming it, and nothing made
    refused = _add(ls, tmp_path, "add.three@example.org", "not-an-email")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "'not-an-email'" in refused.stderr
    assert "add.three@example.org" not in {u.email for u in accounts.organization_users(ls)}


def test_invite_only_prints_a_link_the_signup_form_accepts(ls, tmp_path):
    make_project(tmp_path, "accounts: invite")
    invited = _add(ls, tmp_path, "--invite-only", "invited@example.org")
    assert invited.returncode == 0, invited.stderr
    assert _rows(invited.stdout) == [("i•••@example.org", "to sign up with the invite link", "-")]
    assert "invited@example.org" not in {u.email for u in accounts.organization_users(ls)}  # nothing made
    [link] = re.findall(r"invite link \(anyone who has it can join the organization\): (\S+)", invited.stdout)
    assert link.startswith(f"{ls.url}/user/signup/?token=")

    opener = _plain_session()
    _form_post(opener, link, link, {"email": "invited@example.org", "password": "a password of my own"})
    assert _whoami(opener, ls.url) == "invited@example.org"
    assert _plain_login(ls.url, "invited@example.org", "a password of my own") == "invited@example.org"
    again = _add(ls, tmp_path, "invited@example.org")
    assert _rows(again.stdout) == [("i•••@example.org", "already a member", "-")]


def _listing(ls, cwd, *args) -> dict:
    listed = run_cli("annotators", "list", "--json", *args, env=cli_env(ls), cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    assert ls.api_key not in listed.stdout + listed.stderr
    return json.loads(listed.stdout)


def test_list_matches_pull_counts_progress_and_remove_keeps_annotations(ls, tmp_path, monkeypatch):
    project = make_project(tmp_path, "accounts: progress")
    pushed = push_sentences(ls, project, synthetic_sentences(4, "acc"))
    t1, t2, t3, t4 = sorted(t.id for t in ls.client().tasks.list(project=pushed.project_id))
    emails = [f"progress.{who}@example.org" for who in ("a", "b", "c", "d")]
    added = _add(ls, tmp_path, *emails)
    assert added.returncode == 0, added.stderr
    a, b, c, _ = (annotator_connection(ls, e, p) for e, p in zip(emails, _passwords(added.stdout), strict=True))

    def skip(person, task_id):
        return person.client().annotations.create(id=task_id, result=[], was_cancelled=True)

    made = {
        "a": [annotate(a, t1, [], "favor", 1.0).id, annotate(a, t2, [], "favor", 1.0).id, skip(a, t3).id],
        "b": [annotate(b, t1, [], "against", 1.0).id, skip(b, t2).id],  # t2: one submitted, one skipped
        "c": [annotate(c, t4, [], "neutral", 1.0).id],
    }
    # overlap 2: t1 is done; t2, t3 and t4 still need annotations
    expected = {"a": (2, 1, 1), "b": (1, 1, 2), "c": (1, 0, 2), "d": (0, 0, 3)}

    before_pull = _listing(ls, tmp_path)
    assert before_pull["overlap"] == 2 and before_pull["tasks"] == 4
    # `annotators add` made the pseudonym key (it named the accounts in Label Studio): listed by name at once
    named = Pseudonymizer(load_key(tmp_path), project.name)
    assert {named(email) for email in emails} <= {row["pseudonym"] for row in before_pull["annotators"]}

    pulled = run_cli("pull", env=cli_env(ls), cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    snapshot = tmp_path / "annotations" / "snapshot.jsonl"
    first = snapshot.read_bytes()
    written = {a["id"]: a["annotator"] for task in read_jsonl(snapshot) for a in task["annotations"]}
    pseudonym = Pseudonymizer(load_key(tmp_path), project.name)

    listed = run_cli("annotators", "list", env=cli_env(ls), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    masked = _listing(ls, tmp_path)
    full = _listing(ls, tmp_path, "--show-emails")
    for output in (listed.stdout + listed.stderr, json.dumps(masked, ensure_ascii=False)):
        assert not any(email in output for email in emails) and "p•••@example.org" in output
        assert "admin@builder.local" not in output
    rows = {row["email"]: row for row in full["annotators"]}
    assert "admin@builder.local" not in rows  # the admin builder made did not annotate here
    for who, email in zip("abcd", emails, strict=True):
        row = rows[email]
        assert row["pseudonym"] == pseudonym(email)
        assert all(written[annotation] == row["pseudonym"] for annotation in made.get(who, []))
        assert (row["annotated"], row["skipped"], row["remaining"]) == expected[who], who
        assert row["active"] is True and row["pseudonym"] in listed.stdout
    # the same figures when every page of the listing holds one task, and one task per batch of skips
    monkeypatch.setattr(accounts, "LIST_PAGE", 1)
    monkeypatch.setattr(accounts, "RESOLVE_BATCH", 1)
    paged = list_annotators(ls, project)
    assert {(r.email, r.annotated, r.skipped, r.remaining) for r in paged.annotators} >= {
        (email, *expected[who]) for who, email in zip("abcd", emails, strict=True)
    }

    # remove b: its annotations stay, under the same name; it can no longer work in the project
    removed = run_cli("annotators", "remove", emails[1], env=cli_env(ls), cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert emails[1] not in removed.stdout + removed.stderr and ls.api_key not in removed.stdout + removed.stderr
    assert f"its annotations stay, under the pseudonym {pseudonym(emails[1])}" in removed.stdout
    assert b.http().request("api/tasks/", method="GET", params={"project": pushed.project_id}).status_code == 403
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0
    assert snapshot.read_bytes() == first
    after = _listing(ls, tmp_path, "--show-emails")
    [gone] = [row for row in after["annotators"] if row["pseudonym"] == pseudonym(emails[1])]
    assert gone == {**rows[emails[1]], "active": False, "remaining": None, "email": None}
    assert emails[1] not in json.dumps(after)

    again = run_cli("annotators", "remove", emails[1], env=cli_env(ls), cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "no account" in again.stderr
    readded = _add(ls, tmp_path, emails[1])
    assert readded.returncode == 1 and "removed from the organization earlier" in readded.stderr


def test_an_account_removed_between_pulls_keeps_its_name(ls, tmp_path):
    """Added after a pull and removed before the next: Label Studio hides its e-mail by then, so the
    name is recorded at removal (else the next pull would name it from its account id)."""
    project = make_project(tmp_path, "accounts: between pulls")
    pushed = push_sentences(ls, project, synthetic_sentences(2, "betw"))
    task = min(t.id for t in ls.client().tasks.list(project=pushed.project_id))
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0  # makes the key
    email = "between.pulls@example.org"
    added = _add(ls, tmp_path, email)
    person = annotator_connection(ls, email, _passwords(added.stdout)[0])
    annotate(person, task, [], "favor", 1.0)
    name = Pseudonymizer(load_key(tmp_path), project.name)(email)
    assert name in [row["pseudonym"] for row in _listing(ls, tmp_path)["annotators"]]
    assert run_cli("annotators", "remove", email, env=cli_env(ls), cwd=tmp_path).returncode == 0
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0
    [pulled] = list(read_jsonl(tmp_path / "annotations" / "snapshot.jsonl"))
    assert [a["annotator"] for a in pulled["annotations"]] == [name]
    assert name in [row["pseudonym"] for row in _listing(ls, tmp_path)["annotators"]]


def test_removing_the_api_keys_own_account_is_refused(ls, ls_server, tmp_path):
    make_project(tmp_path, "accounts: self")
    refused = run_cli("annotators", "remove", ls_server.username, env=cli_env(ls), cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "API key belongs to" in refused.stderr and ls.api_key not in refused.stderr


def test_links_for_people_use_the_shared_url_of_a_server_started_with_host():
    """`server start --host` prints the URL to share; the links `annotators add` prints are that URL, not 127.0.0.1."""
    from builder.labelstudio.client import Connection
    from builder.labelstudio.users import invite_url

    local = Connection("http://127.0.0.1:8080", "key", "local server")
    shared = Connection("http://127.0.0.1:8080", "key", "local server", None, "http://10.1.2.3:8080")
    assert local.public_url == "http://127.0.0.1:8080" and shared.public_url == "http://10.1.2.3:8080"
    assert invite_url(shared, "tok") == "http://10.1.2.3:8080/user/signup/?token=tok"


def _account_row(ls_server, email: str) -> dict:
    """The account's row in Label Studio's own database (its flags are not in the API), with its API token."""
    import sqlite3
    from pathlib import Path

    from builder.labelstudio.server import SQLITE_FILE

    with sqlite3.connect(Path(ls_server.data_dir) / SQLITE_FILE) as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM htx_user WHERE email = ?", (email,)).fetchone())
        token = db.execute("SELECT key FROM authtoken_token WHERE user_id = ?", (row["id"],)).fetchone()
    return {**row, "token": token[0] if token else None}


def test_an_added_account_gets_no_more_than_an_annotator_needs(ls, ls_server, tmp_path):
    """Issue 23, item 8: no superuser or staff flag and no API token handed out (Label Studio Community
    still lets any account export, list users and delete: docs/team-admins.md says so)."""
    make_project(tmp_path, "accounts: least")
    email = "least.rights@example.org"
    added = _add(ls, tmp_path, email)
    assert added.returncode == 0, added.stderr
    row = _account_row(ls_server, email)
    assert (row["is_superuser"], row["is_staff"], row["is_active"]) == (0, 0, 1)
    output = added.stdout + added.stderr
    assert row["token"] is None or row["token"] not in output  # Label Studio makes one; builder never shows it
    assert "token" not in output.lower()
    [password] = _passwords(added.stdout)
    assert _plain_login(ls.url, email, password) == email  # the password printed is the way in


def test_a_user_whose_email_is_not_a_string_is_one_line_naming_the_user(ls, tmp_path):
    """On main: a traceback (AttributeError) from annotators list, add and remove."""
    project = make_project(tmp_path, "accounts: odd e-mail")
    push_sentences(ls, project, synthetic_sentences(1, "odd"))
    email = "odd.mail@example.org"
    assert _add(ls, tmp_path, email).returncode == 0
    [user_id] = [u.id for u in accounts.organization_users(ls) if u.email == email]

    def rewrite(method, path, content):
        if method != "GET" or path.split("?")[0].rstrip("/") != "/api/users":
            return None
        users = json.loads(content)
        for user in users:
            if user.get("email") == email:
                user["email"] = 12345
        return json.dumps(users).encode()

    with FailingProxy(ls.url, lambda method, path, count: False, rewrite=rewrite) as proxy:
        env = {**cli_env(ls), "LABEL_STUDIO_URL": proxy.url}
        for args in (["list"], ["add", "other.odd@example.org"], ["remove", email]):
            result = run_cli("annotators", *args, env=env, cwd=tmp_path)
            assert result.returncode == 1 and result.stderr.count("\n") == 1, (args, result.stderr)
            assert "Traceback" not in result.stderr and "12345" not in result.stderr
            assert f"user {user_id} with an e-mail that is not a string" in result.stderr, result.stderr
        assert proxy.rewritten >= 3
    members = {u.email for u in accounts.organization_users(ls) if u.active}
    assert email in members and "other.odd@example.org" not in members  # nothing changed


def test_accounts_show_their_pseudonym_in_label_studio_and_rows_never_look_alike(ls, tmp_path):
    """Label Studio shows first/last name before the e-mail: each account builder makes is named with the
    pseudonym a pull gives it, and two e-mails at one domain (both masked a•••@example.org) print distinct
    rows, each led by its pseudonym; no e-mail or password reaches any other output."""
    project = make_project(tmp_path, "accounts: names")
    pushed = push_sentences(ls, project, synthetic_sentences(1, "names"))
    emails = ["amy.names@example.org", "anna.names@example.org"]
    added = _add(ls, tmp_path, *emails)
    assert added.returncode == 0, added.stderr
    rows = ROW.findall(added.stdout)
    assert [row[1] for row in rows] == ["a•••@example.org"] * 2 and len({row[0] for row in rows}) == 2
    name = Pseudonymizer(load_key(tmp_path), project.name)  # the key `annotators add` made, as a first pull would
    assert [row[0] for row in rows] == [name(email) for email in emails]
    passwords = _passwords(added.stdout)
    assert not any(email in added.stdout + added.stderr for email in emails)

    def shown(connection) -> dict[str, tuple[str, str]]:
        users = connection.http().request("api/users/", method="GET").json()
        return {u["email"]: (u["first_name"], u["last_name"]) for u in users if u["email"] in emails}

    assert shown(ls) == {email: (name(email), "") for email in emails}
    amy = annotator_connection(ls, emails[0], passwords[0])
    assert shown(amy) == {email: (name(email), "") for email in emails}  # what the other annotator sees

    # the pseudonym Label Studio shows is the one the dataset gets
    [task] = [t.id for t in ls.client().tasks.list(project=pushed.project_id)]
    annotate(amy, task, [], "favor", 1.0)
    pulled = run_cli("pull", env=cli_env(ls), cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    [record] = list(read_jsonl(tmp_path / "annotations" / "snapshot.jsonl"))
    assert [a["annotator"] for a in record["annotations"]] == [rows[0][0]]
    # adding again (already members) names them again and prints the same pseudonyms; nothing leaks
    again = _add(ls, tmp_path, *emails)
    assert [row[0] for row in ROW.findall(again.stdout)] == [row[0] for row in rows]
    for output in (pulled.stdout + pulled.stderr, again.stdout + again.stderr):
        assert not any(secret in output for secret in [*emails, *passwords])


def test_list_before_the_first_push_lists_the_accounts_with_a_note(ls, tmp_path):
    """Issue 27 point 9: a team admin adds accounts before pushing. On main `annotators list` then failed with
    "unknown project"; now every format lists the accounts, with no progress and a note that nothing is pushed."""
    import csv
    import io
    import uuid

    project = make_project(tmp_path, f"accounts: before push {uuid.uuid4().hex[:8]}")
    email = "before.push@example.org"
    assert _add(ls, tmp_path, email).returncode == 0
    name = Pseudonymizer(load_key(tmp_path), project.name)(email)
    outputs = {}
    for fmt in ("table", "json", "csv"):
        listed = run_cli("annotators", "list", "--format", fmt, env=cli_env(ls), cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert email not in listed.stdout + listed.stderr and ls.api_key not in listed.stdout + listed.stderr
        note = listed.stdout if fmt == "table" else listed.stderr
        assert "nothing pushed yet (`builder push` makes it)" in note, note
        outputs[fmt] = listed.stdout
    listing = json.loads(outputs["json"])
    assert listing["pushed"] is False and listing["tasks"] == 0 and listing["overlap"] == 2
    [row] = [row for row in listing["annotators"] if row["pseudonym"] == name]
    assert row == {
        "pseudonym": name,
        "active": True,
        "annotated": 0,
        "skipped": 0,
        "remaining": None,
        "email": "b•••@example.org",
    }
    [csv_row] = [r for r in csv.DictReader(io.StringIO(outputs["csv"])) if r["pseudonym"] == name]
    assert (csv_row["annotated"], csv_row["remaining"], csv_row["email"]) == ("0", "", "b•••@example.org")
    [table_row] = [line for line in outputs["table"].splitlines() if line.startswith(name)]
    assert table_row.split() == [name, "yes", "0", "0", "-", "b•••@example.org"]
    assert "admin@builder.local" not in outputs["table"]  # the API key's own account is left out
