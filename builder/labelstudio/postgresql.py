"""PostgreSQL for the local Label Studio: a private cluster builder provisions under `.builder/postgresql/`,
or an existing server named by `--database-url postgresql://USER@HOST:PORT/DB`.

The provisioned cluster listens on 127.0.0.1 only (no unix socket), authenticates with scram-sha-256 and a
generated password kept in `.builder/server.json` only. PostgreSQL refuses to run as root: when builder runs
as root, the cluster belongs to, and runs as, Debian's `postgres` user (else `nobody`), and `.builder/` gets
the least extra access that user needs to reach it (see `_let_traverse`).

Passwords never go on a command line (other users read those in `ps`): they travel in environment
variables of our own child processes, or in a file private to the cluster's user, removed at once.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from builder.errors import LabelStudioError
from builder.jsonio import CLUSTER_DIR, STATE_DIR

DATABASE = "labelstudio"
SUPERUSER = "builder"
BINARY_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "`apt-get install postgresql` (Debian/Ubuntu)"
# libpq settings an existing server may need (TLS, a password file); passed on to Label Studio.
LIBPQ_VARIABLES = ("PGPASSFILE", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGCONNECT_TIMEOUT")


@dataclass(frozen=True)
class Target:
    """Where Label Studio's database is: host, port, database, user (never the password)."""

    user: str
    host: str
    port: int
    name: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"

    def describe(self) -> str:
        return f"PostgreSQL at {self.host}:{self.port}/{self.name}"


def parse_url(url: str) -> Target:
    """`postgresql://USER@HOST:PORT/DB` (port 5432 when left out); a password in it is refused."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 5432
    except ValueError:
        raise LabelStudioError("--database-url is not a URL such as postgresql://USER@HOST:5432/DB") from None
    if parts.password is not None:
        raise LabelStudioError(
            "--database-url must not hold a password (it would show in `ps` and shell history): "
            "set PGPASSWORD or put it in ~/.pgpass"
        )
    name = unquote(parts.path.lstrip("/"))
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.username or not name:
        raise LabelStudioError(
            "--database-url must look like postgresql://USER@HOST:PORT/DB (user, host and database name required)"
        )
    if parts.query or parts.fragment or "/" in name:
        raise LabelStudioError("--database-url takes no options: use PGSSLMODE and the other libpq variables")
    return Target(unquote(parts.username), parts.hostname, port, name)


# ---------------------------------------------------------------- the connection check (Label Studio's psycopg)

# Run with the server's own Python (it ships psycopg 3): connects with libpq's variables from the
# environment (PGPASSWORD, or ~/.pgpass / PGPASSFILE when there is none), optionally creates a database.
_CHECK = """
import os, sys
try:
    import psycopg
except ImportError as exc:
    print(f"psycopg is missing from Label Studio's environment ({exc})"); sys.exit(2)
create = os.environ.pop("BUILDER_CREATE_DATABASE", "")
try:
    with psycopg.connect(connect_timeout=10, autocommit=True) as conn:
        if create and conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (create,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{create}"')
except psycopg.Error as exc:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    print(lines[-1] if lines else type(exc).__name__); sys.exit(2)
"""


def check_connection(python: Path, target: Target, password: str, create: str = "") -> None:
    """Connect to `target` (with `password`, or libpq's password file when empty); one clear line when it fails."""
    env = client_environment(target, password)
    env.update(PGDATABASE="postgres" if create else target.name, BUILDER_CREATE_DATABASE=create)
    result = subprocess.run([str(python), "-c", _CHECK], env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return
    last = ((result.stdout or result.stderr).strip().splitlines() or ["no output"])[-1]
    if password:
        last = last.replace(password, "***")
    hint = ""
    if "password" in last or "authentication" in last:
        hint = ": check PGPASSWORD or your ~/.pgpass line for it (host:port:database:user:password)"
    elif "refused" in last or "timeout" in last or "could not translate" in last or "No route" in last:
        hint = ": is the server running, and is the address right?"
    raise LabelStudioError(f"cannot connect to {target.describe()} as {target.user}: {last[:300]}{hint}")


# Label Studio keeps its users in `htx_user` (users/models.py, db_table).
_USERS = """
import sys
import psycopg
try:
    with psycopg.connect(connect_timeout=10) as conn:
        if conn.execute("SELECT to_regclass('htx_user') IS NULL").fetchone()[0]:
            print(0)
        else:
            print(conn.execute("SELECT count(*) FROM htx_user").fetchone()[0])
except psycopg.Error as exc:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    print(lines[-1] if lines else type(exc).__name__); sys.exit(2)
"""


def label_studio_users(python: Path, target: Target, password: str) -> int:
    """How many Label Studio users `target` holds (0 for an empty database); one clear line when it cannot
    be reached."""
    check_connection(python, target, password)
    result = subprocess.run(
        [str(python), "-c", _USERS], env=client_environment(target, password), capture_output=True, text=True
    )
    last = ((result.stdout or result.stderr).strip().splitlines() or ["no output"])[-1]
    if result.returncode != 0 or not last.isdigit():
        raise LabelStudioError(
            f"cannot read {target.describe()}: {(last.replace(password, '***') if password else last)[:300]}"
        )
    return int(last)


def client_environment(target: Target, password: str) -> dict:
    """libpq's variables for `target`: the password only when given (else libpq reads its password file)."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", *LIBPQ_VARIABLES) if key in os.environ}
    env.update(PGHOST=target.host, PGPORT=str(target.port), PGUSER=target.user, PGDATABASE=target.name)
    if password:
        env["PGPASSWORD"] = password
    return env


def label_studio_environment(target: Target, password: str) -> dict:
    """Label Studio's settings for PostgreSQL (label_studio/core/settings/base.py); an empty password makes
    Django leave it out, and libpq then reads ~/.pgpass (HOME) or PGPASSFILE."""
    env = {key: os.environ[key] for key in LIBPQ_VARIABLES if key in os.environ}
    env.update(
        DJANGO_DB="default",
        POSTGRE_NAME=target.name,
        POSTGRE_USER=target.user,
        POSTGRE_PASSWORD=password,
        POSTGRE_HOST=target.host,
        POSTGRE_PORT=str(target.port),
    )
    return env


# ---------------------------------------------------------------- the provisioned cluster


def cluster_dir(root: Path) -> Path:
    """`.builder/postgresql/`: the cluster's folder (data/ and postgresql.log), owned by the user it runs as.

    Never through a link: builder changes owners and modes along this path."""
    from builder.jsonio import refuse_link

    refuse_link(root / STATE_DIR)
    refuse_link(root / STATE_DIR / CLUSTER_DIR)
    return (root / STATE_DIR / CLUSTER_DIR).resolve()


def data_dir(root: Path) -> Path:
    return cluster_dir(root) / "data"


def cluster_exists(root: Path) -> bool:
    return (data_dir(root) / "PG_VERSION").is_file()


def binaries(root: Path) -> Path:
    """The folder with initdb and pg_ctl: the cluster's own major version when it exists, else the newest."""
    wanted = None
    with contextlib.suppress(OSError):
        wanted = (data_dir(root) / "PG_VERSION").read_text(encoding="ascii").strip()
    candidates = sorted(
        (Path(p) for p in _glob(BINARY_GLOB)),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    config = shutil.which("pg_config")
    if config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run([config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            if found:
                candidates.append(Path(found))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    usable = [
        c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file() and (c / "postgres").is_file()
    ]
    if wanted:
        for candidate in usable:
            if _major(candidate) == wanted:
                return candidate
        raise LabelStudioError(
            f"the PostgreSQL cluster in {cluster_dir(root)} was made by PostgreSQL {wanted}, whose programs are "
            f"not installed: install postgresql-{wanted}"
        )
    if not usable:
        raise LabelStudioError(
            f"PostgreSQL's server programs (initdb, pg_ctl) are not installed: {INSTALL_HINT}, "
            "or use an existing server with --database-url"
        )
    return usable[0]


def _glob(pattern: str) -> list[str]:
    import glob

    return glob.glob(pattern)


def _major(bindir: Path) -> str | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return found.group(1) if found else None


@dataclass(frozen=True)
class RunAs:
    """The user PostgreSQL runs as: ourselves, or (when we are root) an unprivileged system user."""

    name: str
    uid: int
    gid: int

    @property
    def is_other(self) -> bool:
        return self.uid != os.geteuid()


def run_as() -> RunAs:
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return RunAs(name, entry.pw_uid, entry.pw_gid)
    raise LabelStudioError(
        "PostgreSQL refuses to run as root, and this machine has no `postgres` or `nobody` user to run it as: "
        f"{INSTALL_HINT} creates one"
    )


def _can_enter(folder: Path, who: RunAs) -> bool:
    import grp

    info = folder.stat()
    if info.st_uid == who.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    groups = {who.gid} | {g.gr_gid for g in grp.getgrall() if who.name in g.gr_mem}
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _let_traverse(root: Path, who: RunAs) -> None:
    """Let `who` reach `.builder/postgresql/` when it is not us (we are root).

    `.builder/` becomes group-owned by that user's group with mode 0710: its members may pass through
    (not list, read or write); every other file stays 0600/0700. Folders above `.builder/` are not
    builder's to change: when the user cannot enter one, say so.
    """
    state_dir = (root / STATE_DIR).resolve()
    for folder in reversed(state_dir.parents):
        if not _can_enter(folder, who):
            mode = stat.S_IMODE(folder.stat().st_mode)
            raise LabelStudioError(
                f"PostgreSQL refuses to run as root, so it runs as user '{who.name}', who cannot enter {folder} "
                f"(mode {mode:o}): allow it (`chmod o+x {folder}` or `setfacl -m u:{who.name}:x {folder}`), "
                "move the project, or use an existing server with --database-url"
            )
    os.chown(state_dir, -1, who.gid)
    os.chmod(state_dir, 0o710)


def _pg_env() -> dict:
    return {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC"}


def _run(who: RunAs, args: list[str], root: Path, stdin: str | None = None, timeout: float = 120):
    """Run a PostgreSQL program as `who` (dropping root and its groups when we are root)."""
    extra = {"user": who.uid, "group": who.gid, "extra_groups": []} if who.is_other else {}
    try:
        return subprocess.run(
            args,
            input=stdin,
            capture_output=True,
            text=True,
            env=_pg_env(),
            cwd=cluster_dir(root),
            umask=0o077,
            start_new_session=True,  # a Ctrl-C in builder's terminal never reaches the cluster
            timeout=timeout,
            **extra,
        )
    except subprocess.TimeoutExpired:
        raise LabelStudioError(f"{Path(args[0]).name} did not finish within {timeout:.0f} s") from None


def _last_line(result) -> str:
    return (((result.stderr or "") + (result.stdout or "")).strip().splitlines() or ["no output"])[-1][:300]


def initialise(root: Path, password: str, log) -> None:
    """Create the cluster (superuser `builder` with `password`), listening on 127.0.0.1 only, no unix socket."""
    bindir, who = binaries(root), run_as()
    folder = cluster_dir(root)
    if who.is_other:
        _let_traverse(root, who)  # before anything is made: a folder it cannot enter is refused
    if folder.exists() and not cluster_exists(root):
        shutil.rmtree(folder)  # an initdb that was interrupted: builder made it, nothing to keep
    folder.mkdir(mode=0o700)
    if who.is_other:
        os.chown(folder, who.uid, who.gid)
    log(f"creating a PostgreSQL cluster in {folder} (runs as user {who.name})")
    pwfile = folder / "initdb.pw"
    try:
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            if who.is_other:
                os.fchown(handle.fileno(), who.uid, who.gid)
            handle.write(password + "\n")
        result = _run(
            who,
            [
                str(bindir / "initdb"),
                "-D",
                str(data_dir(root)),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            root,
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            pwfile.unlink()
    if result.returncode != 0:
        shutil.rmtree(data_dir(root), ignore_errors=True)
        raise LabelStudioError(f"initdb failed: {_last_line(result)}")
    data = data_dir(root)
    with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(
            "\n# builder: TCP on 127.0.0.1 only, no unix socket\n"
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
        )
    with open(data / "pg_hba.conf", "w", encoding="utf-8") as hba:
        hba.write(
            "# builder: one user, password (scram-sha-256), from 127.0.0.1 only\n"
            f"host all {SUPERUSER} 127.0.0.1/32 scram-sha-256\n"
        )


def running_port(root: Path) -> int | None:
    """The port of the cluster running on this project's data folder, None when it is not running."""
    bindir, who = binaries(root), run_as()
    if who.is_other:
        _let_traverse(root, who)
    if _run(who, [str(bindir / "pg_ctl"), "status", "-D", str(data_dir(root))], root).returncode != 0:
        return None
    try:
        lines = (data_dir(root) / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        return int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def start_cluster(root: Path, port: int, log) -> None:
    """Start the cluster on 127.0.0.1:`port` and wait until it accepts connections."""
    bindir, who = binaries(root), run_as()
    if who.is_other:
        _let_traverse(root, who)
    logfile = cluster_dir(root) / "postgresql.log"
    result = _run(
        who,
        [
            str(bindir / "pg_ctl"),
            "start",
            "-D",
            str(data_dir(root)),
            "-l",
            str(logfile),
            "-w",
            "-t",
            "90",
            "-o",
            f"-p {int(port)}",
        ],
        root,
    )
    if result.returncode != 0:
        tail = ""
        with contextlib.suppress(OSError):
            tail = (logfile.read_text(encoding="utf-8", errors="replace").strip().splitlines() or [""])[-1][:300]
        raise LabelStudioError(f"PostgreSQL did not start: {tail or _last_line(result)} (see {logfile})")
    log(
        f"PostgreSQL {_major(bindir) or ''} runs on 127.0.0.1:{port} (cluster in {cluster_dir(root)})".replace(
            "  ", " "
        )
    )


def stop_cluster(root: Path) -> bool:
    """Stop this project's cluster (fast shutdown: open sessions are ended); False if it was not running."""
    if not cluster_exists(root) or running_port(root) is None:
        return False
    bindir, who = binaries(root), run_as()
    result = _run(
        who, [str(bindir / "pg_ctl"), "stop", "-D", str(data_dir(root)), "-m", "fast", "-w", "-t", "60"], root
    )
    if result.returncode != 0:
        raise LabelStudioError(f"could not stop PostgreSQL in {cluster_dir(root)}: {_last_line(result)}")
    return True


def reset_password(root: Path, password: str, log) -> None:
    """Give the cluster's superuser `password` (the state file that held it was lost): single-user mode,
    so no connection (and no old password) is needed. The cluster must be stopped."""
    bindir, who = binaries(root), run_as()
    if who.is_other:
        _let_traverse(root, who)
    log("setting a new password on the PostgreSQL cluster's user")
    result = _run(
        who,
        [str(bindir / "postgres"), "--single", "-D", str(data_dir(root)), "postgres"],
        root,
        stdin=f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'\n",
    )
    if result.returncode != 0:
        detail = _last_line(result).replace(password, "***")
        raise LabelStudioError(f"could not set a new password in {cluster_dir(root)}: {detail}")


def checked_port(root: Path, provisioned: bool, port: int) -> int:
    """`--pg-port`: `port` for builder's own cluster, refused (one line) when the project's database is not that
    cluster, or when something else listens there (the cluster itself, already running there, is fine)."""
    if not provisioned:
        raise LabelStudioError(
            f"--pg-port {port}: only for the PostgreSQL cluster builder makes (--db postgresql); this project's "
            "database is SQLite or a server named by --database-url"
        )
    if not 1 <= port <= 65535:
        raise LabelStudioError(f"--pg-port {port}: a port is a number from 1 to 65535")
    running = running_port(root) if cluster_exists(root) else None
    if running is not None and running != port:
        raise LabelStudioError(
            f"--pg-port {port}: builder's PostgreSQL cluster already runs on port {running}; "
            "run `builder server stop` first"
        )
    if running is None:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise LabelStudioError(f"--pg-port {port}: the port is busy; choose another") from None
    return port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_password() -> str:
    return secrets.token_urlsafe(24)  # letters, digits, - and _: safe inside SQL quotes


def preflight(root: Path) -> None:
    """Refuse, in one line, what would fail half-way: programs missing, a folder the cluster's user cannot enter."""
    binaries(root)
    who = run_as()
    if who.is_other:
        _let_traverse(root, who)
