"""builder.locks: exclusive between processes, and no lock file left behind."""

from __future__ import annotations

import subprocess
import sys

from builder.locks import exclusive

WORKER = """
import sys, time
from pathlib import Path
from builder.locks import exclusive

lock, counter, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
for _ in range(rounds):
    with exclusive(lock):
        value = int(counter.read_text())
        time.sleep(0.001)  # a lost update shows if two processes are ever inside at once
        counter.write_text(str(value + 1))
"""


def test_a_released_lock_leaves_no_file(tmp_path):
    path = tmp_path / "locks" / "a.lock"
    with exclusive(path):
        assert path.is_file()
    assert not path.exists()
    path.write_text("4242\n")  # left by a holder killed with -9: taken over, then removed
    with exclusive(path):
        assert path.read_text() != "4242\n"
    assert not path.exists()


def test_processes_racing_for_a_lock_that_is_removed_on_release_never_overlap(tmp_path):
    """Four processes take the same lock 40 times each while every release removes the lock file: a waiter
    woken on a removed file must lock the path afresh, or two would be inside at once and lose updates."""
    lock, counter = tmp_path / "race.lock", tmp_path / "counter"
    counter.write_text("0")
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(lock), str(counter), "40"], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    assert counter.read_text() == "160"
    assert not lock.exists()


def test_a_waiter_is_told_once_who_holds_the_lock(tmp_path):
    path = tmp_path / "held.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom builder.locks import exclusive\n"
         "with exclusive(Path(sys.argv[1])):\n    print('in', flush=True)\n    time.sleep(1)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline() == "in\n"
    told = []
    with exclusive(path, on_wait=told.append):
        pass
    holder.wait(timeout=60)
    assert told == [str(holder.pid)]


INSTALLER = r"""
import sys, time
from pathlib import Path
from builder.labelstudio import installer

log = Path(sys.argv[1])


def steps(venv, name):  # a stand-in for venv + pip: slow, and it writes the executable last
    return [[sys.executable, "-c", f"import time, pathlib; time.sleep(1.0); p = pathlib.Path({str(venv)!r}) / 'bin';"
             " p.mkdir(parents=True, exist_ok=True); (p / 'label-studio').write_text('')"]]


installer._install_steps = steps
real_install = installer._install


def install(venv, say):
    with log.open("a") as out:
        out.write(f"start {time.monotonic()}\n")
    real_install(venv, say)
    with log.open("a") as out:
        out.write(f"end {time.monotonic()}\n")


installer._install = install
print(installer.ensure_installed(log=lambda message: None))
"""


def test_two_processes_installing_label_studio_at_once_install_it_once(tmp_path):
    """Two commands (or test sessions) on a fresh machine used to remove and refill the same venv together."""
    script, log = tmp_path / "install.py", tmp_path / "installs.log"
    script.write_text(INSTALLER, encoding="utf-8")
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [
        subprocess.Popen([sys.executable, str(script), str(log)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0]
    assert len(set(outputs)) == 1 and outputs[0].strip().endswith("bin/label-studio")
    events = log.read_text().split()
    assert events[0::2] == ["start", "end"], events  # one install; the others found it made
    assert (tmp_path / "cache" / "builder" / "label-studio-1.23.2" / ".builder-complete").is_file()
