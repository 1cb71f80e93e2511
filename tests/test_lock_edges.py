"""Edges of builder.locks: holders killed mid-hold, a path that cannot be a lock file, a symlinked lock
file, an interrupted waiter (what a tester found trying to break them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from builder.locks import exclusive
from tests.conftest import ROOT

LOGGER = """
import os, sys, time
from pathlib import Path
from builder.locks import exclusive

lock, log, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = os.open(log, os.O_WRONLY | os.O_APPEND)
for _ in range(rounds):
    with exclusive(lock):
        os.write(out, f"in {os.getpid()}\\n".encode())
        time.sleep(0.002)
        os.write(out, f"out {os.getpid()}\\n".encode())
"""


def test_holders_killed_mid_hold_never_let_two_in_at_once(tmp_path):
    """Six processes take one lock in turns while some are killed with -9 inside it: the log of who was inside
    shows each "in" followed by the same process's "out", except where that process was killed."""
    lock, log = tmp_path / "race.lock", tmp_path / "log"
    log.touch()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen([sys.executable, "-c", LOGGER, str(lock), str(log), "60"], env=env, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    killed = set()
    deadline = time.monotonic() + 60
    while len(killed) < 3 and time.monotonic() < deadline:  # kill whoever is inside, three times
        lines = log.read_text().split()
        if len(lines) >= 2 and lines[-2] == "in":
            pid = int(lines[-1])
            if pid not in killed and any(w.pid == pid for w in workers):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.01)
    for worker in workers:
        worker.wait(timeout=120)
        assert worker.returncode == (-signal.SIGKILL if worker.pid in killed else 0), worker.stderr.read()
    assert len(killed) == 3
    entries = [line.split() for line in log.read_text().splitlines()]
    inside = None
    for what, pid in entries:
        if what == "in":
            assert inside is None or int(inside) in killed, f"{pid} entered while {inside} was inside"
            inside = pid
        else:
            assert pid == inside
            inside = None
    assert sum(1 for what, _ in entries if what == "out") == 3 * 60 + sum(
        1 for what, pid in entries if what == "out" and int(pid) in killed
    )
    assert not lock.exists()


def test_a_lock_path_that_cannot_be_a_lock_file_is_an_os_error_and_leaves_nothing(tmp_path):
    """A folder where the lock file should be, or a lock folder that is not writable: an OSError naming the
    path (the CLI prints it as one line), and nothing made or removed."""
    folder = tmp_path / "a.lock"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as raised, exclusive(folder):
        pass
    assert raised.value.filename == str(folder) and folder.is_dir()
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError), exclusive(locked / "b.lock"):
            pass
        assert list(locked.iterdir()) == []


def test_a_symlinked_lock_file_is_locked_through_and_only_the_link_is_removed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "l.lock"
    link.symlink_to(target)
    with exclusive(link):
        assert target.read_text() == f"{os.getpid()}\n"
    assert not link.is_symlink() and target.exists()  # the folder's own entry goes; the file it named stays


def test_an_interrupted_waiter_closes_its_file_and_the_holder_still_removes_the_lock(tmp_path):
    path = tmp_path / "held.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom builder.locks import exclusive\n"
         "with exclusive(Path(sys.argv[1])):\n    print('in', flush=True)\n    time.sleep(2)", str(path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert holder.stdout.readline() == "in\n"
    before = set(os.listdir("/proc/self/fd"))

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt), exclusive(path, on_wait=lambda pid: None):
            pytest.fail("the lock was held by another process")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert set(os.listdir("/proc/self/fd")) <= before  # the waiter's descriptor is closed
    assert holder.wait(timeout=60) == 0
    assert not path.exists()
