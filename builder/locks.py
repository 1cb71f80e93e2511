"""Exclusive locks between builder processes: `fcntl.flock` on a lock file.

The kernel releases a flock when its process ends, however it ends (kill -9 included), so a
crashed run never leaves a stale lock behind. Lock files are small, hold the owner's pid for
messages, and are never deleted (deleting a lock file others may hold open breaks the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path


def lock_dir() -> Path:
    """Per-user folder of lock files (beside the Label Studio install, under the user's cache)."""
    from builder.resources import cache_dir

    return cache_dir() / "locks"


def lock_path(*key: str) -> Path:
    """The lock file for a key such as (server URL, project title)."""
    digest = hashlib.sha256("\x00".join(key).encode("utf-8")).hexdigest()[:24]
    return lock_dir() / f"{digest}.lock"


@contextlib.contextmanager
def exclusive(path: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; if another process holds it, say so and wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
