"""A local Label Studio for people who have none: installed on first use into its own virtual
environment (under the user's cache folder), data kept in the project's git-ignored `.builder/`.

The state file `.builder/server.json` (mode 0600) holds URL, process id and credentials; it is the
only file the API token is ever written to. `.builder/` and the server's data folder (its database
holds every user's API token and e-mail) are private to their owner (0700, files 0600).

Access is never lost: when the state file is missing or unreadable, or Label Studio refuses the
recorded token, `start` makes new credentials and sets them on the admin account with Label
Studio's own Django models (run in the server's virtual environment), so a restart recovers.

Its database is SQLite (in the data folder) or PostgreSQL: a private cluster builder provisions under
`.builder/postgresql/`, or an existing server (`builder.labelstudio.postgresql`). A project keeps the
database its server was created with; Label Studio listens on 127.0.0.1 unless `--host` says otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.errors import LabelStudioError
from builder.jsonio import STATE_DIR, private_dir, refuse_link, state_dir
from builder.labelstudio import empty_database, postgresql
from builder.labelstudio.installer import LABEL_STUDIO_VERSION, ensure_installed
from builder.progress import heartbeat

DEFAULT_PORT = 8080
FIRST_START_TIMEOUT = 900.0  # seconds a start that migrates a new database may take before it counts as hung
ADMIN_EMAIL = "admin@builder.local"
LOCAL_HOST = "127.0.0.1"
DATABASES = ("sqlite", "postgresql")
SQLITE_FILE = "label_studio.sqlite3"
SYNCHRONOUS_VARIABLE = "BUILDER_SQLITE_SYNCHRONOUS"  # normal (default) or full: see _server_environment
MIGRATION_WORK_DIR = "migration"  # .builder/migration/: the move's dump and the check's snapshots (0700)
GUARD_FOLDER = Path(__file__).resolve().parent / "in_server"  # runs inside Label Studio, imports nothing of builder
GUARD_SETTINGS = "builder_guard_settings"
GUARD_HEADER = "X-Builder-Organization-Guard"  # every answer of a server running the guard carries it
MIGRATION_MARKER = "migration.json"  # .builder/migration.json: a move to PostgreSQL is under way (or was killed)


@dataclass
class ServerState:
    url: str
    port: int
    pid: int | None
    data_dir: str
    username: str
    password: str
    token: str
    version: str = LABEL_STUDIO_VERSION
    host: str = LOCAL_HOST  # the address Label Studio listens on
    database: str = "sqlite"  # or "postgresql"
    database_url: str = ""  # postgresql://USER@HOST:PORT/DB, never with the password
    database_password: str = ""  # empty: libpq reads ~/.pgpass (or PGPASSFILE)
    provisioned: bool = False  # PostgreSQL is builder's own cluster in .builder/postgresql

    def __repr__(self) -> str:  # never show secrets in logs or tracebacks
        return f"ServerState(url={self.url!r}, pid={self.pid}, data_dir={self.data_dir!r}, database={self.database!r})"


class UnreadableState(LabelStudioError):
    """`.builder/server.json` exists but cannot be used; `builder server start` recovers from it."""


def state_path(root: Path) -> Path:
    return root / STATE_DIR / "server.json"


def tighten(folder: Path) -> None:
    """Make every folder under `folder` 0700 and every file 0600 (made by earlier versions or other umasks).

    One that goes meanwhile is skipped: SQLite removes its write-ahead log and shared-memory files (beside
    the database) when the last connection closes, which a server stopping or checkpointing does at any time."""
    for current, _folders, files in os.walk(folder):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(current, 0o700)
        for name in files:
            path = os.path.join(current, name)
            with contextlib.suppress(FileNotFoundError):
                if not os.path.islink(path):
                    os.chmod(path, 0o600)


_STATE_TYPES = {
    "url": str,
    "port": int,
    "data_dir": str,
    "username": str,
    "password": str,
    "token": str,
    "version": str,
    "host": str,
    "database": str,
    "database_url": str,
    "database_password": str,
    "provisioned": bool,
}


def read_state(root: Path) -> ServerState | None:
    path = state_path(root)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        state = ServerState(**raw)
    except (ValueError, TypeError) as exc:
        detail = str(exc).split("\n")[0][:120]
        raise UnreadableState(
            f"{path}: unreadable server state ({detail}); "
            "run `builder server start`, which recovers access to the local server"
        ) from None
    wrong = [key for key, kind in _STATE_TYPES.items() if type(getattr(state, key)) is not kind]
    if not wrong and not 1 <= state.port <= 65535:
        wrong = ["port"]
    if not wrong and not (state.pid is None or (type(state.pid) is int and state.pid > 0)):
        wrong = ["pid"]
    if not wrong and state.database not in DATABASES:
        wrong = ["database"]
    if not wrong and state.database == "postgresql":
        try:
            postgresql.parse_url(state.database_url)
        except LabelStudioError:
            wrong = ["database_url"]
    if wrong:
        raise UnreadableState(
            f"{path}: unreadable server state (field '{wrong[0]}' has a wrong value); "
            "run `builder server start`, which recovers access to the local server"
        )
    return state


def migration_marker(root: Path) -> Path:
    """Written by `builder server migrate` before it makes anything, removed when the move is checked."""
    return root / STATE_DIR / MIGRATION_MARKER


def data_dir_of(root: Path) -> Path:
    """The local server's data folder of the project at `root`."""
    return (root / STATE_DIR / "label-studio-data").resolve()


def belongs_to(state: ServerState, root: Path) -> bool:
    """Whether `state` is this project's (a state file copied from another project is not)."""
    return Path(state.data_dir).resolve() == data_dir_of(root)


def write_state(root: Path, state: ServerState) -> None:
    path = state_path(root)
    state_dir(root)
    from builder.jsonio import atomic_write  # a full disk is one line, and the previous state is kept

    with atomic_write(path, "w", private=True) as handle:
        json.dump(asdict(state), handle, indent=2, sort_keys=True)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _cmdline(pid: int) -> list[bytes] | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None


def _is_our_server(cmdline: list[bytes], data_dir: str) -> bool:
    """A `label-studio start ... --data-dir DATA_DIR` process (not any process naming the folder)."""
    runs_label_studio = any(os.path.basename(part) == b"label-studio" for part in cmdline[:2])
    pairs = zip(cmdline, cmdline[1:])
    return runs_label_studio and b"start" in cmdline[:4] and (b"--data-dir", os.fsencode(data_dir)) in pairs


def is_running(state: ServerState | None) -> bool:
    """True when the recorded process is alive and is the Label Studio of this data folder."""
    if state is None or not state.pid:
        return False
    cmdline = _cmdline(state.pid)
    if cmdline is None:
        if Path("/proc/self").exists():
            return False
        try:  # no /proc: trust the pid
            os.kill(state.pid, 0)
        except OSError:
            return False
        return True
    return _is_our_server(cmdline, state.data_dir)


def _port_of(pid: int) -> int | None:
    cmdline = _cmdline(pid) or []
    for flag, value in zip(cmdline, cmdline[1:]):
        if flag == b"--port" and value.isdigit() and 1 <= int(value) <= 65535:
            return int(value)
    return None


def servers_using(data_dir: Path) -> list[int]:
    """Process ids of Label Studio servers started on `data_dir` (found even when the state file is lost)."""
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            cmdline = _cmdline(int(entry.name))
            if cmdline and _is_our_server(cmdline, str(data_dir)):
                found.append(int(entry.name))
    return sorted(found)


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _server_environment(state: ServerState) -> dict:
    """A clean environment: Label Studio also reads unprefixed USERNAME, PASSWORD, PORT and HOST."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if key in os.environ}
    synchronous = os.environ.get(SYNCHRONOUS_VARIABLE, "normal").strip().upper()
    if synchronous not in ("NORMAL", "FULL"):
        raise LabelStudioError(f"{SYNCHRONOUS_VARIABLE} is {synchronous.lower()!r}: give normal (the default) or full")
    env.update(
        # how often SQLite syncs its write-ahead log (in_server/builder_guard_settings.py says why)
        BUILDER_SQLITE_SYNCHRONOUS=synchronous,
        LABEL_STUDIO_USERNAME=state.username,
        LABEL_STUDIO_PASSWORD=state.password,
        LABEL_STUDIO_USER_TOKEN=state.token,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        LABEL_STUDIO_BASE_DATA_DIR=state.data_dir,
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        PYTHONUNBUFFERED="1",
        # Label Studio's settings plus the organization guard (builder/labelstudio/in_server): blind annotation
        PYTHONPATH=str(GUARD_FOLDER),
        DJANGO_SETTINGS_MODULE=GUARD_SETTINGS,
    )
    if state.database == "postgresql":
        target = postgresql.parse_url(state.database_url)
        env.update(postgresql.label_studio_environment(target, state.database_password))
    return env


def describe_database(state: ServerState) -> str:
    """Where the data is, for people (never the password)."""
    if state.database != "postgresql":
        return f"SQLite in {STATE_DIR}/{Path(state.data_dir).name}/{SQLITE_FILE}"
    described = postgresql.parse_url(state.database_url).describe()
    return (
        f"{described} (builder's cluster in {STATE_DIR}/{postgresql.CLUSTER_DIR})" if state.provisioned else described
    )


def _checked_host(host: str | None) -> str | None:
    """`--host`: an IPv4 address of this machine, or 0.0.0.0 for all of them."""
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError:
        address = None
    if not isinstance(address, ipaddress.IPv4Address):
        raise LabelStudioError(f"--host {host}: give an IPv4 address of this machine, or 0.0.0.0 for all of them")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((str(address), 0))
        except OSError:
            raise LabelStudioError(f"--host {host}: not an address of this machine") from None
    return str(address)


def local_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback, by interface."""
    import fcntl
    import struct

    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            try:  # SIOCGIFADDR
                packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127.") and address not in found:
                found.append(address)
    return found


def share_url(state: ServerState) -> str | None:
    """The URL annotators on other machines open; None when Label Studio listens on 127.0.0.1 only."""
    if state.host == LOCAL_HOST:
        return None
    if state.host == "0.0.0.0":
        addresses = local_addresses()
        return f"http://{addresses[0] if addresses else socket.gethostname()}:{state.port}"
    return state.url


# Run with the server's own Python: sets the admin's password and API token to the ones in the
# state file (from the environment, never from argv, which other users can read in `ps`).
_RESET_ACCESS = """
import os, sys
import label_studio
sys.path.insert(0, os.path.dirname(label_studio.__file__))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
import django
django.setup()
from rest_framework.authtoken.models import Token
from users.models import User
user = User.objects.filter(email=os.environ["LABEL_STUDIO_USERNAME"]).first()
if user is None:
    sys.exit(3)
user.set_password(os.environ["LABEL_STUDIO_PASSWORD"])
user.save()
Token.objects.filter(user=user).delete()
Token.objects.create(user=user, key=os.environ["LABEL_STUDIO_USER_TOKEN"])
"""


def token_accepted(url: str, token: str, timeout: float = 10.0) -> bool | None:
    """True if Label Studio accepts `token`, False if it refuses it, None if it does not answer."""
    request = urllib.request.Request(f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        return False if exc.code in (401, 403) else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def reset_access(executable: Path, state: ServerState) -> None:
    """Give the admin account the password and token of `state` (Label Studio keeps its first ones otherwise)."""
    python = executable.parent / "python"
    result = subprocess.run(
        [str(python), "-c", _RESET_ACCESS], env=_server_environment(state), capture_output=True, text=True, umask=0o077
    )
    if result.returncode == 3:
        raise LabelStudioError(
            f"the admin account {state.username} is missing from {state.data_dir}; start with a new data folder"
        )
    if result.returncode != 0:
        last = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        raise LabelStudioError(f"could not reset the admin account's access in {state.data_dir}: {last[:200]}")


def _new_credentials(data_dir: Path, port: int) -> ServerState:
    return ServerState(
        url="",
        port=port,
        pid=None,
        data_dir=str(data_dir),
        username=ADMIN_EMAIL,
        password=secrets.token_urlsafe(18),
        token=secrets.token_hex(20),
    )


def _terminate(pid: int) -> None:
    """Stop the process group of a Label Studio we started (SIGTERM, then SIGKILL after 20 s)."""

    def alive() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        threads = Path(f"/proc/{pid}/task")
        if not threads.is_dir():
            return not Path("/proc/self").exists()
        # The main thread of an exiting process turns zombie while its other threads (holding the
        # listening socket) still run: alive until every thread has exited.
        for thread in threads.iterdir():
            try:
                state = (thread / "stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X"):
                return True
        return False

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alive():
        time.sleep(0.2)
    if alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@dataclass(frozen=True)
class _Database:
    kind: str  # "sqlite" or "postgresql"
    target: postgresql.Target | None = None  # an existing server's (None: SQLite, or the provisioned cluster)
    port: int | None = None  # the provisioned cluster's port when chosen (`--pg-port`); None: as before, else free

    @property
    def provisioned(self) -> bool:
        return self.kind == "postgresql" and self.target is None


def _database_of(root: Path, state: ServerState | None, kind: str | None, target) -> _Database:
    """The database to start on: the one this project's server was created with; asking for another is refused.

    While a move to PostgreSQL is unfinished (its marker is there), the project is still on SQLite, unless the
    state file already names PostgreSQL: `builder server migrate` records it only once its check has passed,
    and from then on PostgreSQL holds the project (annotators may have worked on it)."""
    if kind not in (None, *DATABASES):
        raise LabelStudioError(f"--db {kind}: choose sqlite or postgresql")
    if target is not None and kind == "sqlite":
        raise LabelStudioError("--database-url names a PostgreSQL server: leave out --db sqlite")
    wanted = "postgresql" if target is not None else kind
    has_sqlite = (data_dir_of(root) / SQLITE_FILE).is_file()
    has_cluster = postgresql.cluster_exists(root)
    existing = None
    if has_sqlite and migration_marker(root).is_file() and (state is None or state.database == "sqlite"):
        existing = _Database("sqlite")
    elif state is not None and state.database == "postgresql" and not state.provisioned:
        existing = _Database("postgresql", postgresql.parse_url(state.database_url))
    elif has_cluster and has_sqlite:  # both on disk: the recorded one, else what was asked
        # Without a state file and without an unfinished move's marker, both are there only after a
        # finished `builder server migrate` (starting on the other database is refused): the SQLite
        # file is its backup, and PostgreSQL holds the project.
        existing = _Database(state.database if state is not None else wanted or "postgresql")
    elif has_cluster:
        existing = _Database("postgresql")
    elif has_sqlite:
        existing = _Database("sqlite")
    if existing is None:  # nothing yet (or the recorded choice lost its data): what was asked, else recorded
        kind = wanted or (state.database if state is not None else "sqlite")
        return _Database(kind, target if kind == "postgresql" else None)
    if wanted is None or (wanted == existing.kind and (target is None or target == existing.target)):
        return existing
    where = (
        f"SQLite ({STATE_DIR}/{data_dir_of(root).name}/{SQLITE_FILE})"
        if existing.kind == "sqlite"
        else existing.target.describe()
        if existing.target
        else f"PostgreSQL (builder's cluster in {STATE_DIR}/{postgresql.CLUSTER_DIR})"
    )
    if existing.kind == "sqlite":
        how = "move it with `builder server migrate --to postgresql`, or start without --db/--database-url"
    elif wanted == "sqlite":
        how = "start it without --db"
    else:
        how = "start it without --database-url (between PostgreSQL servers, move it with pg_dump and pg_restore)"
    raise LabelStudioError(
        f"this project's Label Studio keeps its data in {where}; starting it on another database would start "
        f"from an empty one: {how}"
    )


def _prepare_database(
    root: Path, state: ServerState, database: _Database, executable: Path, log, record: bool = True
) -> bool:
    """Set `state`'s database and make it reachable (the cluster started); True when it is new (to migrate).

    `record`: write `state` to the state file on the way (False: a move to PostgreSQL, recorded at its end)."""
    python = executable.parent / "python"
    state.database, state.provisioned = database.kind, database.provisioned
    if database.kind == "sqlite":
        state.database_url = state.database_password = ""
        return not (Path(state.data_dir) / SQLITE_FILE).is_file()
    if not database.provisioned:
        state.database_url = database.target.url
        # a password given now wins (it may have changed); else the recorded one; else libpq's password file
        state.database_password = os.environ.get("PGPASSWORD") or state.database_password
        postgresql.check_connection(python, database.target, state.database_password)
        return False
    postgresql.preflight(root)  # programs installed, folders enterable: refused before anything is made
    new = not postgresql.cluster_exists(root)
    running = None if new else postgresql.running_port(root)
    if new or not state.database_password:
        state.database_password = postgresql.new_password()
        state.pid = None
        if record:  # before the cluster has it: a crash now loses nothing a restart cannot redo
            write_state(root, state)
        if new:
            postgresql.initialise(root, state.database_password, log)
        else:  # the state file that held it was lost
            if running is not None:
                postgresql.stop_cluster(root)
                running = None
            postgresql.reset_password(root, state.database_password, log)
    recorded = postgresql.parse_url(state.database_url).port if state.database_url else None
    port = running or database.port or (recorded if recorded and port_is_free(recorded) else postgresql.free_port())
    target = postgresql.Target(postgresql.SUPERUSER, LOCAL_HOST, port, postgresql.DATABASE)
    state.database_url = target.url
    if record:
        write_state(root, state)
    if running is None:
        postgresql.start_cluster(root, port, log)
    postgresql.check_connection(python, target, state.database_password, create=postgresql.DATABASE)
    return new


def prepare_postgresql(root: Path, state: ServerState, target: postgresql.Target | None, log) -> ServerState:
    """A copy of `state` on PostgreSQL, reachable, and not recorded: builder's cluster (made and started)
    when `target` is None, else the existing server `target` (connection checked)."""
    moved = dataclasses.replace(state, pid=None, database_url="", database_password="")
    _prepare_database(root, moved, _Database("postgresql", target), ensure_installed(log), log, record=False)
    return moved


def _ensure_cluster(root: Path, state: ServerState, executable: Path | None, log) -> None:
    """A provisioned cluster stopped under a running Label Studio (crash, reboot, pg_ctl stop) is started again."""
    if state.provisioned and postgresql.running_port(root) is None:
        log("PostgreSQL was not running: starting it")
        _prepare_database(root, state, _Database("postgresql"), executable or ensure_installed(log), log)


def start(
    root: Path,
    port: int | None = None,
    timeout: float = 300.0,
    log=print,
    *,
    database: str | None = None,
    database_url: str | None = None,
    host: str | None = None,
    pg_port: int | None = None,
) -> ServerState:
    """Start (or find running) the local Label Studio for the project at `root`; wait until healthy.

    `database`: "sqlite" or "postgresql" (default: the one the project's server was created with, else
    SQLite); `database_url`: an existing PostgreSQL server instead of a provisioned cluster; `host`: the
    address to listen on (default 127.0.0.1); `pg_port`: the port of builder's own PostgreSQL cluster (default:
    the one it last ran on, else a free one). Recovers access when the state file is missing or unreadable,
    or the recorded token is refused.
    """
    if port is not None and not 1 <= port <= 65535:
        raise LabelStudioError(f"--port {port}: a port is a number from 1 to 65535")
    bind = _checked_host(host)
    target = postgresql.parse_url(database_url) if database_url is not None else None
    data_dir = data_dir_of(root)
    try:
        state = read_state(root)
    except UnreadableState as exc:
        log(f"{str(exc).split(';')[0]}: making new credentials for the local server")
        state = None
    if state is not None and not belongs_to(state, root):
        log(
            f"{state_path(root)} belongs to another project folder ({state.data_dir}): "
            "making new credentials for this one"
        )
        state = None  # copied from elsewhere: its server and its credentials are not this project's
    chosen = _database_of(root, state, database, target)
    if pg_port is not None:
        chosen = dataclasses.replace(chosen, port=postgresql.checked_port(root, chosen.provisioned, pg_port))
    if state is not None and is_running(state) and chosen.kind != state.database:
        log("a move to PostgreSQL was interrupted: stopping Label Studio on PostgreSQL, the project stays on SQLite")
        stop(root)
        state = read_state(root)
    if state is not None and state.database == "postgresql" and migration_marker(root).is_file():
        # killed between recording PostgreSQL (the move's last step) and removing its marker: the move is final
        shutil.rmtree(root / STATE_DIR / MIGRATION_WORK_DIR, ignore_errors=True)
        migration_marker(root).unlink()
    if state is not None and is_running(state):
        _ensure_cluster(root, state, None, log)  # Label Studio is not healthy without its database
    if (
        state is not None
        and is_running(state)
        and (port is None or port == state.port)
        and (bind is None or bind == state.host)
        and (pg_port is None or pg_port == postgresql.running_port(root))
        and is_healthy(state.url)
    ):
        _ensure_access(state, log)
        return state
    if state is not None and is_running(state):
        raise LabelStudioError(
            f"a local Label Studio already runs (pid {state.pid}) on {state.url}; run `builder server stop` first"
        )
    servers_stopped = servers_using(data_dir)
    moving = migration_marker(root).is_file()
    for orphan in servers_stopped:  # ours (same data folder): its state file was lost, or a killed move's check
        if moving and state is not None:
            log(f"stopping Label Studio pid {orphan}, which an interrupted move to PostgreSQL started to check it")
        else:
            log(f"stopping Label Studio pid {orphan}, started on {data_dir} without a usable state file")
        # annotators' links keep working: the recorded port, else the one the lost state file named
        port = port or (state.port if state is not None else None) or _port_of(orphan)
        _terminate(orphan)
    port = port or (state.port if state else DEFAULT_PORT)
    bind = bind or LOCAL_HOST
    deadline = time.monotonic() + 20  # a stopped server's workers may hold the port a moment longer
    while not port_is_free(port, bind) and time.monotonic() < deadline and servers_stopped:
        time.sleep(0.2)
    if not port_is_free(port, bind):
        raise LabelStudioError(f"port {port} is busy; choose another with `builder server start --port N`")
    executable = ensure_installed(log)
    state_dir(root)
    private_dir(data_dir)
    tighten(data_dir)
    if state is None:
        state = _new_credentials(data_dir, port)
    new_database = _prepare_database(root, state, chosen, executable, log)
    if new_database and state.database == "sqlite":  # a copy of the empty database made once per install
        new_database = not empty_database.seed(data_dir / SQLITE_FILE, executable, log)
    state.port, state.host = port, bind
    state.url = f"http://{LOCAL_HOST if bind == '0.0.0.0' else bind}:{port}"
    process = _spawn(root, state, executable)
    state.pid = process.pid
    write_state(root, state)
    first = " (a first start runs Label Studio's migrations: minutes on a busy machine)" if new_database else ""
    log(f"starting Label Studio {LABEL_STUDIO_VERSION} on {state.url}, database: {describe_database(state)}{first}")
    try:
        # A first start on PostgreSQL (or without the SQLite template) runs 244 migrations: 2 minutes of CPU, over
        # 5 minutes of wall time on a loaded 2-core machine (bench/bench_first_contact.py), so it gets longer.
        first_timeout = max(timeout, FIRST_START_TIMEOUT) if new_database else timeout
        _wait_healthy(process, state, executable, first_timeout, log)
    except LabelStudioError:
        state.pid = None
        write_state(root, state)
        raise
    tighten(data_dir)
    return state


def _spawn(root: Path, state: ServerState, executable: Path) -> subprocess.Popen:
    """Start `label-studio` for `state` (its host, port and database), logging to .builder/label-studio.log."""
    log_path = root / STATE_DIR / "label-studio.log"
    refuse_link(log_path)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.chmod(log_path, 0o600)
    with os.fdopen(fd, "ab") as log_file:
        return subprocess.Popen(
            [
                str(executable),
                "start",
                "--no-browser",
                "--internal-host",
                state.host,
                "--port",
                str(state.port),
                "--data-dir",
                state.data_dir,
            ],
            env=_server_environment(state),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,  # the database holds every user's token and e-mail
        )


def _wait_healthy(process: subprocess.Popen, state: ServerState, executable: Path, timeout: float, log) -> None:
    """Until Label Studio answers and accepts the recorded token; stopped and refused in one line otherwise."""
    log_path = Path(state.data_dir).parent / "label-studio.log"
    deadline = time.monotonic() + timeout
    healthy = False
    with heartbeat(log, "waiting for Label Studio to answer"):  # a first start on PostgreSQL migrates for minutes
        while not healthy and time.monotonic() < deadline:
            if process.poll() is not None:
                raise LabelStudioError(
                    f"Label Studio exited during start (status {process.returncode}); see {log_path}"
                )
            healthy = is_healthy(state.url)
            if not healthy:
                time.sleep(0.25)  # a refused connection costs nothing: a restart is seen within a quarter second
    if healthy:
        _ensure_access(state, log, executable)
        return
    _terminate(process.pid)
    raise LabelStudioError(f"Label Studio did not become healthy within {timeout:.0f} s; see {log_path}")


def start_private(root: Path, state: ServerState, log=print, timeout: float = 300.0) -> ServerState:
    """Start Label Studio on `state`'s database on a free port of 127.0.0.1, without recording it.

    For `builder server migrate`'s check: annotators' links (the recorded URL) do not reach it, and the state
    file still names the old database, so a killed move leaves nothing anyone could have written to. The
    process is found by its data folder (`servers_using`): `builder server start` stops it."""
    executable = ensure_installed(log)
    port = postgresql.free_port()
    private = dataclasses.replace(state, host=LOCAL_HOST, port=port, url=f"http://{LOCAL_HOST}:{port}", pid=None)
    process = _spawn(root, private, executable)
    private.pid = process.pid
    log(f"starting Label Studio on {describe_database(private)}, privately on {private.url}, to compare")
    try:
        _wait_healthy(process, private, executable, timeout, log)
    except BaseException:
        _terminate(process.pid)
        raise
    return private


def terminate(pid: int) -> None:
    """Stop a Label Studio builder started (its process group)."""
    _terminate(pid)


def _ensure_access(state: ServerState, log, executable: Path | None = None) -> None:
    """Make sure the recorded token works; if Label Studio refuses it, reset the admin's credentials."""
    accepted = token_accepted(state.url, state.token)
    if accepted is not False:
        return
    log("Label Studio refused the recorded API token: resetting the admin account's password and token")
    reset_access(executable or ensure_installed(log), state)
    if token_accepted(state.url, state.token) is False:
        raise LabelStudioError(
            f"Label Studio at {state.url} still refuses the reset token; "
            f"see {Path(state.data_dir).parent / 'label-studio.log'}"
        )


def stop(root: Path) -> bool:
    """Stop the Label Studio this project started, and the PostgreSQL cluster it provisioned; False if
    neither was running."""
    try:
        state = read_state(root)
    except UnreadableState:
        state = None
    if state is not None and not belongs_to(state, root):
        state = None  # never stop another project's server
    data_dir = data_dir_of(root)
    pids = [state.pid] if is_running(state) else servers_using(data_dir)
    for pid in pids:
        _terminate(pid)
    if pids and state is not None:
        state.pid = None
        write_state(root, state)
    cluster_stopped = False
    if (state is None or state.provisioned) and postgresql.cluster_exists(root):
        cluster_stopped = postgresql.stop_cluster(root)
    return bool(pids) or cluster_stopped
