"""A local Label Studio for people who have none: installed on first use into its own virtual
environment (under the user's cache folder), data kept in the project's git-ignored `.builder/`.

The state file `.builder/server.json` (mode 0600) holds URL, process id and credentials; it is the
only file the API token is ever written to.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.errors import LabelStudioError

LABEL_STUDIO_VERSION = "1.23.2"
DEFAULT_PORT = 8080
ADMIN_EMAIL = "admin@builder.local"
STATE_DIR = ".builder"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "builder"


def server_venv() -> Path:
    return cache_dir() / f"label-studio-{LABEL_STUDIO_VERSION}"


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

    def __repr__(self) -> str:  # never show secrets in logs or tracebacks
        return f"ServerState(url={self.url!r}, pid={self.pid}, data_dir={self.data_dir!r})"


def state_path(root: Path) -> Path:
    return root / STATE_DIR / "server.json"


def read_state(root: Path) -> ServerState | None:
    path = state_path(root)
    if not path.is_file():
        return None
    try:
        return ServerState(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise LabelStudioError(f"{path}: unreadable server state ({exc}); delete it and run `builder server start`") from None


def write_state(root: Path, state: ServerState) -> None:
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    from builder.jsonio import atomic_write  # a full disk is one line, and the previous state is kept

    if not (path.parent / ".gitignore").is_file():
        with atomic_write(path.parent / ".gitignore", "w") as handle:
            handle.write("*\n")
    with atomic_write(path, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(asdict(state), handle, indent=2, sort_keys=True)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def is_running(state: ServerState | None) -> bool:
    """True when the recorded process is alive and is a Label Studio we started."""
    if state is None or not state.pid:
        return False
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(state.pid, 0)
        except OSError:
            return False
        return True
    return b"label-studio" in cmdline


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def ensure_installed(log=print) -> Path:
    """The `label-studio` executable, installing Label Studio into its own venv on first use."""
    venv = server_venv()
    executable, marker = venv / "bin" / "label-studio", venv / ".builder-complete"
    if executable.is_file() and (marker.is_file() or _imports(venv)):
        return executable
    log(f"installing label-studio=={LABEL_STUDIO_VERSION} into {venv} (first use: about 2 minutes, 1 GB)")
    import shutil

    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    for step in (
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"],
    ):
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            last = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
            raise LabelStudioError(f"installing Label Studio failed: {last} (is PyPI reachable?)")
    marker.write_text(LABEL_STUDIO_VERSION + "\n", encoding="utf-8")
    return executable


def _imports(venv: Path) -> bool:
    """An install made by hand (without our marker) counts if its label_studio imports."""
    ok = subprocess.run([str(venv / "bin" / "python"), "-c", "import label_studio"], capture_output=True).returncode == 0
    if ok:
        (venv / ".builder-complete").write_text(LABEL_STUDIO_VERSION + "\n", encoding="utf-8")
    return ok


def _server_environment(state: ServerState) -> dict:
    """A clean environment: Label Studio also reads unprefixed USERNAME, PASSWORD, PORT and HOST."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if key in os.environ}
    env.update(
        LABEL_STUDIO_USERNAME=state.username,
        LABEL_STUDIO_PASSWORD=state.password,
        LABEL_STUDIO_USER_TOKEN=state.token,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        PYTHONUNBUFFERED="1",
    )
    return env


def start(root: Path, port: int | None = None, timeout: float = 300.0, log=print) -> ServerState:
    """Start (or find running) the local Label Studio for the project at `root`; wait until healthy."""
    state = read_state(root)
    if is_running(state) and is_healthy(state.url) and (port is None or port == state.port):
        return state
    if is_running(state):
        raise LabelStudioError(f"a local Label Studio already runs (pid {state.pid}) on {state.url}; run `builder server stop` first")
    port = port or (state.port if state else DEFAULT_PORT)
    if not port_is_free(port):
        raise LabelStudioError(f"port {port} is busy; choose another with `builder server start --port N`")
    executable = ensure_installed(log)
    data_dir = root / STATE_DIR / "label-studio-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if state is None or not Path(state.data_dir).exists():
        state = ServerState(
            url="", port=port, pid=None, data_dir=str(data_dir), username=ADMIN_EMAIL,
            password=secrets.token_urlsafe(12), token=secrets.token_hex(20),
        )
    state.port, state.url = port, f"http://127.0.0.1:{port}"
    log_path = root / STATE_DIR / "label-studio.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [str(executable), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
            env=_server_environment(state),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state.pid = process.pid
    write_state(root, state)
    log(f"starting Label Studio {LABEL_STUDIO_VERSION} on {state.url} (first start migrates its database: ~1 minute)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            state.pid = None
            write_state(root, state)
            raise LabelStudioError(f"Label Studio exited during start (status {process.returncode}); see {log_path}")
        if is_healthy(state.url):
            return state
        time.sleep(1.0)
    stop(root)
    raise LabelStudioError(f"Label Studio did not become healthy within {timeout:.0f} s; see {log_path}")


def stop(root: Path) -> bool:
    """Stop the Label Studio this project started; False if none was running."""
    state = read_state(root)
    if not is_running(state):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and is_running(state):
        time.sleep(0.2)
    if is_running(state):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGKILL)
    state.pid = None
    write_state(root, state)
    return True
