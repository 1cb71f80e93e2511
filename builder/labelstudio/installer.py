"""Label Studio's own virtual environment, installed on first use under the user's cache folder.

With uv (a dependency of builder, so `pip install -e .` brings it) when it can be found, else with pip:
measured on a 2-core machine from an empty cache, uv installs Label Studio 1.23.2 in under a minute where
pip takes about three (`bench/bench_first_contact.py`, docs/maintainers.md). uv reads none of pip's
configuration files, so an install uv cannot make (another index that only pip.conf names, say) is made
again with pip. `BUILDER_INSTALLER=pip` (or `uv`) chooses one; the bench uses it for its baseline.
The install is never silent: its progress is logged at least every few seconds (builder.progress).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from builder.errors import LabelStudioError
from builder.progress import heartbeat
from builder.resources import cache_dir

LABEL_STUDIO_VERSION = "1.23.2"
INSTALLER_VARIABLE = "BUILDER_INSTALLER"  # "uv" or "pip": the installer to use (default: uv when found, else pip)
INSTALLERS = ("uv", "pip")
_EXPECTED = {"uv": "about a minute", "pip": "about 3 minutes"}  # measured from an empty cache, 2 cores
_NOISE = ("WARNING: Location",)  # pip's word on an extra index folder that does not exist: not progress


def server_venv() -> Path:
    return cache_dir() / f"label-studio-{LABEL_STUDIO_VERSION}"


def ensure_installed(log=print) -> Path:
    """The `label-studio` executable, installing Label Studio into its own venv on first use.

    Installs run one at a time (a lock beside the venv): two commands or test sessions started together on
    a fresh machine would otherwise each remove and refill the same folder, and both fail."""
    from builder.locks import exclusive, lock_path

    venv = server_venv()
    if _installed(venv):
        return venv / "bin" / "label-studio"

    def waiting(holder: str) -> None:
        log(f"waiting for another builder process (pid {holder}) that is installing Label Studio into {venv}")

    with exclusive(lock_path("install", str(venv)), on_wait=waiting):
        if not _installed(venv):  # the process we waited for may have installed it
            _install(venv, log)
    return venv / "bin" / "label-studio"


def _installed(venv: Path) -> bool:
    return (venv / "bin" / "label-studio").is_file() and ((venv / ".builder-complete").is_file() or _imports(venv))


def uv_executable() -> str | None:
    """uv's binary: the one the `uv` package ships (a dependency of builder), else one on PATH."""
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def installers() -> list[str]:
    """The installers to try, in order: `BUILDER_INSTALLER`'s alone, else uv (when found), then pip."""
    chosen = os.environ.get(INSTALLER_VARIABLE, "").strip().lower()
    if chosen and chosen not in INSTALLERS:
        raise LabelStudioError(f"{INSTALLER_VARIABLE}={chosen}: choose uv or pip (or leave it unset)")
    if chosen == "uv" and uv_executable() is None:
        raise LabelStudioError(f"{INSTALLER_VARIABLE}=uv, but uv is not installed: pip install uv")
    if chosen:
        return [chosen]
    return ["uv", "pip"] if uv_executable() is not None else ["pip"]


def _install_steps(venv: Path, installer: str) -> list[list[str]]:
    requirement = f"label-studio=={LABEL_STUDIO_VERSION}"
    if installer == "uv":
        return [
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],  # uv installs into it; pip is not needed
            [uv_executable() or "uv", "pip", "install", "--python", str(venv / "bin" / "python"), requirement],
        ]
    return [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", requirement],
    ]


def _environment(installer: str) -> dict:
    env = dict(os.environ)
    if installer == "uv" and env.get("PIP_INDEX_URL") and not (env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")):
        env["UV_DEFAULT_INDEX"] = env["PIP_INDEX_URL"]  # the one pip setting uv would otherwise miss most
    return env


def _install(venv: Path, log) -> None:
    chosen = installers()
    for number, installer in enumerate(chosen, start=1):
        log(
            f"installing label-studio=={LABEL_STUDIO_VERSION} into {venv} with {installer} "
            f"(first use only: {_EXPECTED[installer]}, 1 GB)"
        )
        shutil.rmtree(venv, ignore_errors=True)  # a half-made venv of an install that was killed, or failed
        venv.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        failure = None
        for step in _install_steps(venv, installer):
            failure = _run_step(step, _environment(installer), log, f"installing Label Studio with {installer}")
            if failure is not None:
                break
        if failure is None:
            (venv / ".builder-complete").write_text(LABEL_STUDIO_VERSION + "\n", encoding="utf-8")
            log(f"installed Label Studio with {installer} in {time.monotonic() - started:.0f} s")
            return
        shutil.rmtree(venv, ignore_errors=True)
        if number < len(chosen):
            log(f"installing with {installer} failed ({failure}): trying {chosen[number]}")
            continue
        raise LabelStudioError(f"installing Label Studio failed: {failure} (is PyPI reachable?)")


def _run_step(command: list[str], env: dict, log, doing: str) -> str | None:
    """Run one install command, its output read as it comes; None when it succeeds, else its last line."""
    lines: deque[str] = deque(maxlen=20)

    def latest() -> str:
        for line in reversed(lines.copy()):  # copied: the reader thread appends meanwhile
            if line and not line.startswith(_NOISE):
                return line if len(line) <= 90 else line[:87] + "..."
        return ""

    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env
        )
    except OSError as exc:
        return f"{command[0]}: {exc.strerror or exc}"
    with heartbeat(log, doing, detail=latest):
        reader = threading.Thread(target=lambda: lines.extend(line.strip() for line in process.stdout), daemon=True)
        reader.start()
        process.wait()
        reader.join()
    if process.returncode == 0:
        return None
    return latest() or f"{os.path.basename(command[0])} exited with status {process.returncode}"


def _imports(venv: Path) -> bool:
    """An install made by hand (without our marker) counts if its label_studio imports."""
    ok = (
        subprocess.run([str(venv / "bin" / "python"), "-c", "import label_studio"], capture_output=True).returncode == 0
    )
    if ok:
        (venv / ".builder-complete").write_text(LABEL_STUDIO_VERSION + "\n", encoding="utf-8")
    return ok
