"""Label Studio's install (issue 27.8): uv by default, pip when uv is missing or fails, never silent.

Offline: the real uv and the real pip install a stand-in `label-studio==1.23.2` wheel made here (a
`label-studio` command and nothing else) from a local folder, through the same commands builder runs."""

from __future__ import annotations

import base64
import hashlib
import sys
import time
import zipfile

import pytest

from builder import progress
from builder.errors import LabelStudioError
from builder.labelstudio import installer


def _stand_in_wheel(folder):
    """label_studio-1.23.2-py3-none-any.whl: a package whose `label-studio` command prints 'stand-in'."""
    folder.mkdir()
    info = "label_studio-1.23.2.dist-info"
    files = {
        "label_studio/__init__.py": "def main():\n    print('stand-in')\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: label-studio\nVersion: 1.23.2\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[console_scripts]\nlabel-studio = label_studio:main\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(folder / "label_studio-1.23.2-py3-none-any.whl", "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return folder


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache, and both installers pointed at the stand-in wheel only (no index)."""
    wheels = _stand_in_wheel(tmp_path / "wheels")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for variable, value in {
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(wheels),
        "UV_OFFLINE": "1",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv(installer.INSTALLER_VARIABLE, raising=False)
    return wheels


def _works(executable):
    import subprocess

    assert subprocess.run([str(executable)], capture_output=True, text=True).stdout == "stand-in\n"
    assert (executable.parent.parent / ".builder-complete").is_file()


def test_uv_installs_it_by_default(offline):
    assert installer.installers() == ["uv", "pip"]  # uv comes with builder (a dependency)
    said = []
    executable = installer.ensure_installed(log=said.append)
    _works(executable)
    assert any("with uv (first use only" in line for line in said), said
    assert any(line.startswith("installed Label Studio with uv in ") for line in said), said


def test_pip_installs_it_when_uv_is_not_installed(offline, monkeypatch):
    monkeypatch.setitem(sys.modules, "uv", None)  # `import uv` fails
    monkeypatch.setenv("PATH", "/nonexistent")  # and no uv on PATH
    assert installer.uv_executable() is None and installer.installers() == ["pip"]
    said = []
    _works(installer.ensure_installed(log=said.append))
    assert any("with pip (first use only" in line for line in said) and not any(" uv" in line for line in said), said


def test_pip_installs_it_when_uv_fails(offline, monkeypatch):
    """uv reads none of pip's configuration: an install only pip can make (here: uv finds no wheel) falls back."""
    monkeypatch.delenv("UV_FIND_LINKS")
    said = []
    _works(installer.ensure_installed(log=said.append))
    failed = [line for line in said if line.startswith("installing with uv failed (")]
    assert len(failed) == 1 and failed[0].endswith("): trying pip"), said
    assert any(line.startswith("installed Label Studio with pip in ") for line in said), said


def test_builder_installer_chooses_one(monkeypatch):
    monkeypatch.setenv(installer.INSTALLER_VARIABLE, "pip")
    assert installer.installers() == ["pip"]  # the bench's baseline: the pip-only install of before
    monkeypatch.setenv(installer.INSTALLER_VARIABLE, "uv")
    assert installer.installers() == ["uv"]
    monkeypatch.setenv(installer.INSTALLER_VARIABLE, "conda")
    with pytest.raises(LabelStudioError, match="BUILDER_INSTALLER=conda: choose uv or pip"):
        installer.installers()
    monkeypatch.setitem(sys.modules, "uv", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv(installer.INSTALLER_VARIABLE, "uv")
    with pytest.raises(LabelStudioError, match="BUILDER_INSTALLER=uv, but uv is not installed: pip install uv"):
        installer.installers()


def test_both_failing_is_one_error_and_leaves_no_half_made_venv(offline, monkeypatch):
    monkeypatch.delenv("UV_FIND_LINKS")
    monkeypatch.delenv("PIP_FIND_LINKS")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # this machine's pip.conf names a folder of wheels
    with pytest.raises(LabelStudioError, match=r"^installing Label Studio failed: .+ \(is PyPI reachable\?\)$"):
        installer.ensure_installed(log=lambda line: None)
    assert not installer.server_venv().exists()


def test_a_slow_install_is_never_silent_for_long(offline, monkeypatch):
    """A heartbeat at least every HEARTBEAT_SECONDS, with the installer's latest line (here shortened to 0.2 s)."""
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.2)
    slow = "import time\nfor n in range(6):\n    print(f'Prepared {n} packages', flush=True); time.sleep(0.2)\n"
    make = "import pathlib, sys; p = pathlib.Path(sys.argv[1]) / 'bin'; p.mkdir(parents=True)"
    make += "; (p / 'label-studio').write_text('#!/bin/sh\\necho stand-in\\n'); (p / 'label-studio').chmod(0o755)"

    def steps(venv, name):
        return [[sys.executable, "-c", slow], [sys.executable, "-c", make, str(venv)]]

    monkeypatch.setattr(installer, "_install_steps", steps)
    said, times = [], []

    def log(line):
        said.append(line)
        times.append(time.monotonic())

    _works(installer.ensure_installed(log=log))
    beats = [line for line in said if line.startswith("    ... installing Label Studio with uv: ")]
    assert len(beats) >= 3, said
    assert any("(Prepared " in line for line in beats), beats
    assert max(b - a for a, b in zip(times, times[1:])) < 1.0  # 0.2 s asked: never near a silent second


def test_heartbeats_nest_only_the_innermost_beats():
    said = []
    with progress.heartbeat(said.append, "outer", every=0.1):
        with progress.heartbeat(said.append, "inner", every=0.1):
            time.sleep(0.45)
        time.sleep(0.25)
    inner = [line for line in said if "inner" in line]
    outer = [line for line in said if "outer" in line]
    assert len(inner) >= 3 and 1 <= len(outer) <= 3, said
    assert said.index(inner[-1]) < said.index(outer[0])  # the outer one spoke only once the inner one had ended


def test_steps_say_their_number_and_the_seconds_since_the_first():
    said = []
    steps = progress.Steps(said.append, total=2)
    with steps.running("first", "working", every=0.1):
        time.sleep(0.25)
    steps.step("second")
    assert said[0] == "[   0 s] 1/2 first"
    assert said[1].startswith("    ... working: 0 s") and said[-1] == "[   0 s] 2/2 second"
