"""Label Studio on PostgreSQL: a private cluster builder provisions (run as an unprivileged user when the
tests run as root), or an existing server named by --database-url; reachable by annotators with --host.
Real PostgreSQL, real Label Studio: one server on PostgreSQL for the module."""

from __future__ import annotations

import http.cookiejar
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from builder.errors import LabelStudioError
from builder.jsonio import write_jsonl
from builder.labelstudio import postgresql, server
from builder.labelstudio.client import Connection
from builder.labelstudio.project_api import existing_sentence_ids

from .conftest import free_port, make_project, run_cli

# The round trip, on PostgreSQL: these tests use `ls`, which here is this module's server (annotating
# through the API as two users, in headless Chromium, and the whole loop of `builder run`).
from .test_annotator_ui import (  # noqa: F401
    chromium,
    test_annotator_labels_span_and_stance_in_browser_then_pull_finds_them,
)
from .test_labelstudio import (
    project_of_running_push,
    synthetic_sentences,
    task_count,
    test_two_annotators_pull_and_incremental_pull,  # noqa: F401
)
from .test_loop import test_whole_loop_on_the_sample_and_rerun  # noqa: F401


def local_env(**extra) -> dict:
    """The environment of a person using the local server (no Label Studio or PostgreSQL variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO", "PG"))}
    env.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))  # Label Studio's install, whatever HOME says
    env.update(extra)
    return env


def traversable_folder() -> Path:
    """A project folder PostgreSQL's unprivileged user can reach (pytest's tmp folders are 0700 root's)."""
    folder = Path(tempfile.mkdtemp(prefix="builder-pg-"))
    os.chmod(folder, 0o711)
    return folder


def outputs(*results) -> str:
    return "".join(r.stdout + r.stderr for r in results)


def builder_logs(root: Path) -> str:
    found = [root / ".builder" / "label-studio.log", postgresql.cluster_dir(root) / "postgresql.log"]
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in found if p.is_file())


def cluster_pids(root: Path) -> set[int]:
    """The postmaster of the project's cluster and its children."""
    try:
        postmaster = int((postgresql.data_dir(root) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return set()
    found = {postmaster}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == postmaster:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def machine_address() -> str | None:
    return next(iter(server.local_addresses()), None)


def refused(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(3)
        try:
            sock.connect((address, port))
        except OSError:
            return True
    return False


@pytest.fixture(scope="module")
def pg_project():
    root = traversable_folder()
    make_project(root, "on postgresql")
    chosen = free_port()  # the cluster's port, chosen (--pg-port); test_the_cluster_runs_on_the_port_chosen
    started = run_cli(
        "server", "start", "--db", "postgresql", "--port", free_port(), "--pg-port", chosen, env=local_env(), cwd=root
    )
    assert started.returncode == 0, started.stderr
    started.pg_port = chosen
    try:
        yield root, started
    finally:
        server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ls_server(pg_project):
    """This module's Label Studio, on PostgreSQL (overrides the session's SQLite one for `ls`)."""
    root, _ = pg_project
    return server.read_state(root)


@pytest.mark.labelstudio  # starts Label Studio on PostgreSQL (pg_project)
def test_provisioned_cluster_is_private_local_and_named(pg_project):
    root, started = pg_project
    state = server.read_state(root)
    assert state.database == "postgresql" and state.provisioned
    assert "database: PostgreSQL at 127.0.0.1:" in started.stdout and "/labelstudio" in started.stdout
    status = run_cli("server", "status", env=local_env(), cwd=root)
    assert status.returncode == 0 and "healthy" in status.stdout
    assert f"PostgreSQL at 127.0.0.1:{postgresql.parse_url(state.database_url).port}/labelstudio" in status.stdout

    # the cluster: its own user's (never root), 0700; .builder/ lets only that user's group pass through
    cluster = postgresql.cluster_dir(root)
    owner = pwd.getpwuid(cluster.stat().st_uid)
    builder_dir = root / ".builder"
    if os.geteuid() == 0:
        assert owner.pw_name in ("postgres", "nobody")
        assert stat.S_IMODE(builder_dir.stat().st_mode) == 0o710 and builder_dir.stat().st_gid == owner.pw_gid
    else:
        assert stat.S_IMODE(builder_dir.stat().st_mode) == 0o700
    # (Label Studio's export files are 0644, inside its 0700 data folder: not this module's concern)
    loose = [
        f"{oct(p.lstat().st_mode & 0o777)} {p}"
        for p in [cluster, *cluster.rglob("*"), *builder_dir.iterdir()]
        if not stat.S_ISLNK(p.lstat().st_mode) and p.name != ".gitignore" and p.lstat().st_mode & 0o077
    ]
    assert loose == []
    assert stat.S_IMODE(server.state_path(root).stat().st_mode) == 0o600
    assert not list(cluster.rglob(".s.PGSQL.*"))  # no unix socket

    # PostgreSQL and Label Studio listen on 127.0.0.1 only
    address = machine_address()
    pg_port = postgresql.parse_url(state.database_url).port
    assert not refused("127.0.0.1", pg_port)
    if address:
        assert refused(address, pg_port) and refused(address, state.port)
    # the password is in the state file only
    everything = outputs(started, status) + builder_logs(root)
    assert state.database_password not in everything and state.token not in everything


@pytest.mark.labelstudio  # starts Label Studio on PostgreSQL (pg_project)
def test_the_cluster_runs_on_the_port_chosen(pg_project):
    """`server start --pg-port N` puts builder's cluster on 127.0.0.1:N (a firewall rule or a client can name it);
    asking for another port while it runs is refused, in one line, and changes nothing."""
    root, started = pg_project
    state = server.read_state(root)
    assert postgresql.parse_url(state.database_url).port == started.pg_port == postgresql.running_port(root)
    assert f"PostgreSQL at 127.0.0.1:{started.pg_port}/labelstudio" in started.stdout
    again = run_cli("server", "start", "--pg-port", started.pg_port, env=local_env(), cwd=root)
    assert again.returncode == 0 and f"127.0.0.1:{started.pg_port}/labelstudio" in again.stdout, again.stderr
    other = free_port()
    moved = run_cli("server", "start", "--pg-port", other, env=local_env(), cwd=root)
    assert moved.returncode == 1 and moved.stderr.count("\n") == 1, moved.stderr
    assert f"--pg-port {other}: builder's PostgreSQL cluster already runs on port {started.pg_port}" in moved.stderr
    assert postgresql.running_port(root) == started.pg_port and server.is_healthy(state.url)


@pytest.mark.labelstudio  # refused before any start, but it calls `server start`: kept out of offline runs
def test_pg_port_is_refused_for_sqlite_and_for_a_busy_port(tmp_path):
    """--pg-port names the port of the cluster builder makes: with SQLite it is refused, and a busy port is
    refused before anything is made (no cluster, no Label Studio)."""
    make_project(tmp_path, "pg port")
    on_sqlite = run_cli("server", "start", "--pg-port", free_port(), env=local_env(), cwd=tmp_path)
    assert on_sqlite.returncode == 1 and on_sqlite.stderr.count("\n") == 1, on_sqlite.stderr
    assert "only for the PostgreSQL cluster builder makes (--db postgresql)" in on_sqlite.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli("server", "start", "--db", "postgresql", "--pg-port", port, env=local_env(), cwd=tmp_path)
    assert (
        taken.returncode == 1 and taken.stderr.strip() == f"error: --pg-port {port}: the port is busy; choose another"
    )
    assert not postgresql.cluster_dir(tmp_path).exists() and not server.data_dir_of(tmp_path).exists()


@pytest.mark.labelstudio  # starts Label Studio on PostgreSQL (pg_project)
def test_stop_stops_both_then_start_reuses_data_and_host_exposes_it(pg_project, tmp_path):
    root, _ = pg_project
    sentences = tmp_path / "sentences.jsonl"
    write_jsonl(sentences, synthetic_sentences(3, "reuse"))
    pushed = run_cli("push", sentences, "--predictor", "none", env=local_env(), cwd=root)
    assert pushed.returncode == 0, pushed.stderr
    state = server.read_state(root)
    pids = cluster_pids(root) | {state.pid}
    assert len(pids) >= 3

    stopped = run_cli("server", "stop", env=local_env(), cwd=root)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert [pid for pid in pids if alive(pid)] == []
    assert server.servers_using(server.data_dir_of(root)) == []
    assert postgresql.running_port(root) is None

    # --host 0.0.0.0: a URL to share, the plain-HTTP warning, and a login through the form from it
    address = machine_address()
    exposed = run_cli("server", "start", "--host", "0.0.0.0", env=local_env(), cwd=root)
    assert exposed.returncode == 0, exposed.stderr
    assert "warning: Label Studio speaks plain HTTP" in exposed.stderr and "TLS reverse proxy" in exposed.stderr
    state = server.read_state(root)
    shared = re.search(r"share with annotators: (\S+)", exposed.stdout).group(1)
    assert shared == f"http://{address or socket.gethostname()}:{state.port}"
    again = run_cli("push", sentences, "--predictor", "none", env=local_env(), cwd=root)
    assert again.returncode == 0 and "skipped 3 already present" in again.stdout, again.stderr  # same data
    if address:
        assert log_in_through_the_form(shared, state.username, state.password) == state.username
    pg_port = postgresql.parse_url(state.database_url).port
    if address:
        assert refused(address, pg_port)  # PostgreSQL itself never leaves 127.0.0.1
    assert state.password not in exposed.stdout + exposed.stderr

    # without --host: 127.0.0.1 only again
    assert run_cli("server", "stop", env=local_env(), cwd=root).returncode == 0
    local = run_cli("server", "start", env=local_env(), cwd=root)
    assert local.returncode == 0, local.stderr
    assert "share with annotators" not in local.stdout and "warning" not in local.stderr
    state = server.read_state(root)
    assert server.is_healthy(state.url)
    if address:
        assert refused(address, state.port)

    # the state file (the only copy of the database password) lost while both run: start recovers
    server.state_path(root).unlink()
    recovered = run_cli("server", "start", env=local_env(), cwd=root)
    assert recovered.returncode == 0, recovered.stderr
    assert "without a usable state file" in recovered.stderr  # the orphaned Label Studio: stopped, restarted
    assert "setting a new password on the PostgreSQL cluster's user" in recovered.stderr
    assert "resetting the admin account's password and token" in recovered.stderr  # Django, on PostgreSQL
    after = run_cli("push", sentences, "--predictor", "none", env=local_env(), cwd=root)
    assert after.returncode == 0 and "skipped 3 already present" in after.stdout, after.stderr
    new = server.read_state(root)
    assert new.provisioned and new.database_password != state.database_password
    assert new.database_password not in outputs(recovered, after) + builder_logs(root)


def log_in_through_the_form(url: str, email: str, password: str) -> str:
    """Log in as a browser does (GET the form, POST it with its CSRF token); the e-mail the session belongs to."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{url}/user/login/", timeout=30).read().decode("utf-8")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "email": email, "password": password}).encode()
    request = urllib.request.Request(
        f"{url}/user/login/", data=form, headers={"Referer": f"{url}/user/login/", "Origin": url}
    )
    landed = opener.open(request, timeout=30)
    assert "/user/login" not in landed.geturl()
    with opener.open(f"{url}/api/current-user/whoami", timeout=30) as answer:
        return json.loads(answer.read())["email"]


@pytest.mark.labelstudio  # starts Label Studio on PostgreSQL (pg_project)
def test_postgresql_stopped_mid_push_then_rerun(pg_project, tmp_path):
    root, _ = pg_project
    project = make_project(tmp_path, "postgres stopped mid-push")
    sentences = synthetic_sentences(3000, "mid")
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, sentences)
    state = server.read_state(root)
    admin = Connection(state.url, state.token, "environment")
    env = local_env(LABEL_STUDIO_URL=state.url, LABEL_STUDIO_API_KEY=state.token)
    process = subprocess.Popen(
        [sys.executable, "-m", "builder", "push", str(path), "--batch-size", "250", "--predictor", "none"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    project_id = None
    while time.monotonic() < deadline:
        project_id = project_id or project_of_running_push(admin, project)
        if project_id and task_count(admin, project_id) >= 250:
            break
        time.sleep(0.05)
    assert postgresql.stop_cluster(root)  # pg_ctl stop -m fast, as a crash or an administrator would
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stdout + stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: ") and "Traceback" not in stderr, stderr

    restarted = run_cli("server", "start", env=local_env(), cwd=root)  # starts the cluster again
    assert restarted.returncode == 0, restarted.stderr
    assert "PostgreSQL was not running: starting it" in restarted.stderr
    interrupted_at = task_count(admin, project_id)
    assert 0 < interrupted_at < 3000, "PostgreSQL should stop mid-push"
    rerun = run_cli("push", path, "--batch-size", "250", "--predictor", "none", env=env, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    ids = existing_sentence_ids(admin, project_id)
    assert task_count(admin, project_id) == 3000 and ids == {s["id"] for s in sentences}


@pytest.mark.labelstudio  # starts Label Studio on PostgreSQL (pg_project)
def test_the_other_database_is_refused(pg_project, tmp_path):
    root, _ = pg_project
    to_sqlite = run_cli("server", "start", "--db", "sqlite", env=local_env(), cwd=root)
    assert to_sqlite.returncode == 1 and to_sqlite.stderr.count("\n") == 1
    assert "keeps its data in PostgreSQL" in to_sqlite.stderr and "start it without --db" in to_sqlite.stderr
    elsewhere = run_cli(
        "server", "start", "--database-url", "postgresql://someone@127.0.0.1:5/other", env=local_env(), cwd=root
    )
    assert elsewhere.returncode == 1 and "keeps its data in PostgreSQL" in elsewhere.stderr

    # a project on SQLite (its database exists): PostgreSQL is refused before anything starts
    make_project(tmp_path, "on sqlite")
    data = server.data_dir_of(tmp_path)
    data.mkdir(parents=True)
    (data / server.SQLITE_FILE).write_bytes(b"")
    for args in (["--db", "postgresql"], ["--database-url", "postgresql://u@127.0.0.1:5/db"]):
        to_pg = run_cli("server", "start", *args, "--port", free_port(), env=local_env(), cwd=tmp_path)
        assert to_pg.returncode == 1 and to_pg.stderr.count("\n") == 1, to_pg.stderr
        assert "keeps its data in SQLite" in to_pg.stderr
        assert "builder server migrate --to postgresql" in to_pg.stderr
    assert not postgresql.cluster_dir(tmp_path).exists() and server.servers_using(data) == []


@pytest.mark.labelstudio  # server.start: Label Studio installed first, then PostgreSQL's preflight refuses
@pytest.mark.skipif(os.geteuid() != 0, reason="pytest's tmp folders are 0700 root's only when run as root")
def test_a_folder_postgres_cannot_enter(tmp_path):
    root = tmp_path / "project"
    make_project(root, "no postgres")
    with pytest.raises(LabelStudioError, match=r"cannot enter /.* \(mode 700\): allow it .*--database-url"):
        server.start(root, free_port(), log=lambda m: None, database="postgresql")
    assert not postgresql.cluster_dir(root).exists() and server.servers_using(server.data_dir_of(root)) == []


def test_missing_programs(tmp_path, monkeypatch):
    root = tmp_path / "project"
    make_project(root, "no postgres")
    monkeypatch.setattr(postgresql, "BINARY_GLOB", str(tmp_path / "nowhere" / "*"))
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(LabelStudioError, match=r"not installed: `apt-get install postgresql`"):
        postgresql.binaries(root)


@pytest.mark.labelstudio  # starts Label Studio on PostgreSQL (pg_project)
def test_database_url_with_pgpass_and_pgpassword(pg_project, tmp_path):
    """An existing PostgreSQL server (here: the module's cluster, another database in it)."""
    root, _ = pg_project
    state = server.read_state(root)
    cluster = postgresql.parse_url(state.database_url)
    secret = state.database_password
    python = server.ensure_installed().parent / "python"
    other = postgresql.Target(cluster.user, cluster.host, cluster.port, "second")
    postgresql.check_connection(python, other, secret, create="second")
    project_root = tmp_path / "project"
    make_project(project_root, "on an existing server")
    port = free_port()

    def start(*extra, **env):
        return run_cli("server", "start", "--port", port, *extra, env=local_env(**env), cwd=project_root)

    in_url = start("--database-url", f"postgresql://{cluster.user}:{secret}@127.0.0.1:{cluster.port}/second")
    assert in_url.returncode == 1 and in_url.stderr.count("\n") == 1
    assert "must not hold a password" in in_url.stderr and "PGPASSWORD" in in_url.stderr
    wrong = start("--database-url", other.url, PGPASSWORD="not-the-password", HOME=str(tmp_path))
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1" in wrong.stderr and "password authentication" in wrong.stderr
    none = start("--database-url", f"postgresql://{cluster.user}@127.0.0.1:{free_port()}/second", HOME=str(tmp_path))
    assert none.returncode == 1 and none.stderr.count("\n") == 1 and "cannot connect" in none.stderr
    assert not server.servers_using(server.data_dir_of(project_root))

    # ~/.pgpass (HOME pointed at a folder of the test): libpq reads it, in builder's check and in Label Studio
    home = tmp_path / "home"
    home.mkdir()
    (home / ".pgpass").write_text(f"127.0.0.1:{cluster.port}:second:{cluster.user}:{secret}\n", encoding="utf-8")
    os.chmod(home / ".pgpass", 0o600)
    runs = []
    try:
        with_pgpass = start("--database-url", other.url, HOME=str(home))
        runs.append(with_pgpass)
        assert with_pgpass.returncode == 0, with_pgpass.stderr
        recorded = server.read_state(project_root)
        assert recorded.database_url == other.url and not recorded.provisioned and recorded.database_password == ""
        status = run_cli("server", "status", env=local_env(HOME=str(home)), cwd=project_root)
        runs.append(status)
        assert f"database: PostgreSQL at 127.0.0.1:{cluster.port}/second" in status.stdout
        sentences = tmp_path / "sentences.jsonl"
        write_jsonl(sentences, synthetic_sentences(2, "url"))
        pushed = run_cli("push", sentences, "--predictor", "none", env=local_env(HOME=str(home)), cwd=project_root)
        assert pushed.returncode == 0, pushed.stderr
        assert run_cli("server", "stop", env=local_env(), cwd=project_root).returncode == 0
        assert postgresql.running_port(root) == cluster.port  # the other project's cluster was left alone

        # PGPASSWORD instead (no password file): the same data
        with_variable = start(PGPASSWORD=secret, HOME=str(tmp_path))
        runs.append(with_variable)
        assert with_variable.returncode == 0, with_variable.stderr
        again = run_cli("push", sentences, "--predictor", "none", env=local_env(HOME=str(tmp_path)), cwd=project_root)
        assert again.returncode == 0 and "skipped 2 already present" in again.stdout, again.stderr
        runs.append(pushed)
        runs.append(again)
    finally:
        server.stop(project_root)
    assert secret not in outputs(*runs) + builder_logs(project_root)
    assert postgresql.running_port(root) == cluster.port


@pytest.mark.labelstudio  # the module's Label Studio on PostgreSQL (pg_project)
def test_the_guard_makes_tasks_on_postgresql_as_the_import_makes_them(pg_project, tmp_path):
    """A blind copy's tasks made by the guard (tests/test_blind_import.py), on PostgreSQL: the same statements on
    the other database (its multi-row INSERTs, JSON values and id sequences), and the same refusals."""
    from builder.labelstudio.client import Connection

    from .test_blind_import import (
        test_tasks_the_guard_makes_are_what_the_import_makes,
        test_what_the_import_refuses_the_guard_refuses,
    )

    # the server as it is now: tests before this one restart it and may give its admin a new token
    state = server.read_state(pg_project[0])
    ls = Connection(state.url, state.token, "environment")
    test_tasks_the_guard_makes_are_what_the_import_makes(ls, tmp_path / "made")
    test_what_the_import_refuses_the_guard_refuses(ls, tmp_path / "refused")
