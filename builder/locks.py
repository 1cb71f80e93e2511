"""Exclusive locks between builder processes: `fcntl.flock` on a lock file.

The kernel releases a flock when its process ends, however it ends (kill -9 included), so a
crashed run never leaves a stale lock behind. Lock files are small and hold the owner's pid for
messages. The holder removes its lock file on release, while still holding it, so lock files do not
pile up; a process that was waiting on the removed file then finds the path no longer names the file
it locked, and locks the path afresh (the usual lock-then-check-the-inode protocol). A file left by
a killed holder is taken over by the next one and removed by it.
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
    """Hold an exclusive lock on `path` for the block; if another process holds it, say so (once) and wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not told:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                    on_wait(holder)
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        if _names(path, fd):
            break
        os.close(fd)  # its holder removed it meanwhile: lock the path's new file
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still held: whoever opened it meanwhile will see it is gone
        os.close(fd)  # closing releases the lock


def _names(path: Path, fd: int) -> bool:
    """Whether `path` still names the open file `fd`."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def snapshot_lock(snapshot: Path, on_wait: Callable[[str], None] | None = None):
    """The lock `builder pull` holds while it reads and replaces a snapshot file, and `builder release` while
    it checks and reads it, so that a release never reads a snapshot a pull is replacing (keyed on the file's
    real path: a symbolic link or a relative path names the same lock)."""
    return exclusive(lock_path("snapshot", os.path.realpath(snapshot)), on_wait=on_wait)
