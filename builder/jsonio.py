"""Reading and writing JSON Lines deterministically and atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from builder.errors import InputError
from builder.outputs import OutputError, not_a_regular_file, replace_folder, write_error

DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE  # dumps_line's: sorted keys, one line


def dumps_line(record: dict) -> bytes:
    """One record as a JSON line with sorted keys (byte-stable)."""
    return orjson.dumps(record, option=DUMP_OPTIONS)


class _Guarded:
    """A file handle whose write errors (disk full, file too large...) name the output, not the temp file."""

    __slots__ = ("_handle", "_path")

    def __init__(self, handle, path: Path) -> None:
        self._handle = handle
        self._path = path

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as exc:
            raise write_error(self._path, exc) from None

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._handle, name)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", private: bool = False):
    """Write to a temp file beside `path`, then rename over it; on error `path` is untouched.

    `private`: the file is readable by its owner only (0600), for builder's state under .builder/;
    otherwise it keeps the mode of the file it replaces, or gets the usual one under the umask.

    A failed write (disk full, file too large, read-only, permission...) raises `OutputError`, one
    line naming `path` and saying whether a previous `path` was kept; the temp file is removed.
    """
    path = Path(path)
    if private:  # builder's own state: never written through a link (it could point anywhere)
        refuse_link(path.parent)
        refuse_link(path)
    elif path.is_symlink():  # an output: write where the link points; the link stays a link
        path = path.resolve()
    not_regular = not_a_regular_file(path)
    if not_regular:  # renaming over it would replace a device (/dev/null) or a FIFO with a file
        raise write_error(path, f"it is {not_regular}, not a file builder may replace")
    tmp = handle = None
    created: list[Path] = []
    try:
        try:
            created = make_parents(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.fchmod(fd, 0o600 if private else _mode_for(path))  # mkstemp makes 0600; an output gets the usual mode
            handle = os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
        except OSError as exc:
            raise write_error(path, exc) from None
        yield _Guarded(handle, path)
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(tmp, path)
        except OSError as exc:
            raise write_error(path, exc) from None
    except BaseException:
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()  # flushes what is buffered into the temp file, removed next
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        remove_empty(created)
        raise


def make_parents(path: Path) -> list[Path]:
    """Create the missing parent folders of `path`; returns those created, for `remove_empty` on failure."""
    missing = [parent for parent in path.parents if not parent.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        remove_empty(missing)
        raise
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove `folders` (deepest first) where they are still empty: a failed write leaves no folder it made."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _mode_for(path: Path) -> int:
    """The mode of the file being replaced, else what a new file gets under the current umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


STATE_DIR = ".builder"
CLUSTER_DIR = "postgresql"  # .builder/postgresql: the database cluster builder provisions


def state_dir(root: Path) -> Path:
    """`root/.builder`, builder's private state (server credentials, pseudonym key, pull state, push
    ledger): made 0700, its files 0600, and git-ignored whole by its own .gitignore, whichever command
    creates it first.

    One exception: PostgreSQL refuses to run as root, so under root builder's cluster belongs to an
    unprivileged user whose group may pass through `.builder/` (0710, set by
    builder.labelstudio.postgresql); while such a cluster lives in it, that bit is kept.
    """
    folder = Path(root) / STATE_DIR
    refuse_link(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    refuse_link(folder)  # made a link meanwhile
    keep = 0
    with contextlib.suppress(OSError):
        if (folder / CLUSTER_DIR).stat().st_uid != os.geteuid():
            keep = stat.S_IMODE(folder.stat().st_mode) & 0o010
    os.chmod(folder, 0o700 | keep)
    for entry in os.scandir(folder):  # what an earlier version or another umask left readable: ours only
        with contextlib.suppress(OSError):
            info = entry.stat(follow_symlinks=False)
            if info.st_uid == os.geteuid() and stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != 0o600:
                os.chmod(entry.path, 0o600)
    ignore = folder / ".gitignore"
    if not ignore.is_file() and not ignore.is_symlink():
        with atomic_write(ignore, "w", private=True) as handle:
            handle.write("*\n")
    return folder


def private_dir(path: Path) -> Path:
    """Create `path` (with parents) readable by its owner only; tighten it if it exists already.

    Never through a link: chmod would change the folder it points to."""
    refuse_link(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    refuse_link(path)
    os.chmod(path, 0o700)
    return path


def refuse_link(path: Path) -> None:
    """Refuse, in one line, a symbolic link (or a non-folder `.builder`) where builder keeps private state.

    Builder makes its state folder 0700, its files 0600 and writes a .gitignore into it: through a link
    that would change files outside the project (an executable losing its execute bit). `os.lstat`
    looks at the link itself, never where it points."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise write_error(path, exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(
            f"refusing to use {path}: it is a symbolic link (to {os.readlink(path)}), and builder keeps its private "
            f"state (keys, credentials) only inside the project; replace the link with a folder or file of its own"
        )
    if path.name == STATE_DIR and not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"refusing to use {path}: it is not a folder; builder keeps its private state in it")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Atomically write records as JSON Lines; returns the number written."""
    count = 0
    with atomic_write(path) as handle:
        for record in records:
            handle.write(dumps_line(record))
            count += 1
    return count


def write_json(path: str | Path, value: object) -> None:
    """Atomically write one JSON document, indented, keys sorted (a report builder can recognise later)."""
    import json

    with atomic_write(path, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True, ensure_ascii=False)


def read_jsonl(path: str | Path, on_bad_line: Callable[[str, str], None] | None = None, hint: str = "") -> Iterator:
    """Stream records from a JSON Lines file.

    A line that is not JSON raises InputError naming file and line, or, with `on_bad_line`, is
    passed to it as (where, detail) and skipped. Without `on_bad_line`, every record must be an object.
    """
    path = Path(path)
    with _open_lines(path, hint) as handle:
        for number, line in enumerate(handle, 1):
            if line.isspace():  # a blank line (what `not line.strip()` says, without copying every line)
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if on_bad_line is None:
                    raise InputError(f"{path}:{number}: not valid JSON ({exc})") from None
                on_bad_line(f"{path}:{number}", f"not valid JSON ({exc}): truncated or corrupted")
                continue
            if on_bad_line is None and not isinstance(record, dict):
                raise InputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield record


def _open_lines(path: Path, hint: str):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror}){hint}") from None


class JsonLines:
    """The non-blank lines of a JSON Lines file as bytes, for a stage that tries a decoder of its own first.

    `loads(line)`, for the line last given, parses it as `read_jsonl` does: a line that is not JSON goes to
    `on_bad_line` as ("file:line", detail) and gives `UNREADABLE`. When iteration ends, `on_end(n)` is told how many
    lines were given and not found unreadable (by `loads`).

    `readers`: other consumers of the same read (so that a stage reading a file for several purposes opens it
    once): started generators (`started`) that are sent ("file:line", task) for every non-blank line, the line
    parsed once by orjson for all of them (and for `loads`), a `BadLine` where it is not JSON. `sha256` is then
    the digest of the file's bytes (readers given, even none), set once a pass has read the whole file.
    """

    def __init__(
        self,
        path: str | Path,
        on_bad_line: Callable[[str, str], None],
        on_end: Callable[[int], None] = lambda read: None,
        hint: str = "",
        readers: Iterable | None = None,
    ) -> None:
        self.path = Path(path)
        self.on_bad_line = on_bad_line
        self.on_end = on_end
        self.hint = hint
        self.number = 0  # the line last given, counted from 1 (blank lines included)
        self.unreadable = 0
        self.readers = None if readers is None else list(readers)
        self.sha256: str | None = None
        self._parsed: tuple = (None, None)  # (the line last given, its task) while readers are fed

    def __iter__(self) -> Iterator[bytes]:
        if self.readers is not None:
            yield from self._read_for_all()
            return
        given = self.unreadable = 0  # each pass counts its own lines
        try:
            with _open_lines(self.path, self.hint) as handle:
                for self.number, line in enumerate(handle, 1):
                    if line.isspace():
                        continue
                    given += 1
                    yield line
        finally:
            self.on_end(given - self.unreadable)

    def _read_for_all(self) -> Iterator[bytes]:
        """`__iter__` with `readers` fed and the bytes hashed on the way."""
        given = self.unreadable = 0
        digest = hashlib.sha256()
        sends = [reader.send for reader in self.readers]
        loads, decode_error, path = orjson.loads, orjson.JSONDecodeError, self.path
        try:
            with _open_lines(self.path, self.hint) as handle:
                for self.number, line in enumerate(handle, 1):
                    digest.update(line)
                    if line.isspace():
                        continue
                    given += 1
                    if sends:
                        try:
                            task = loads(line)
                        except decode_error as exc:
                            task = BadLine(f"not valid JSON ({exc}): truncated or corrupted")
                        where = f"{path}:{self.number}"
                        for send in sends:
                            send((where, task))
                        self._parsed = (line, task)
                    yield line
            self.sha256 = digest.hexdigest()
        finally:
            self._parsed = (None, None)
            self.on_end(given - self.unreadable)

    UNREADABLE = object()

    def loads(self, line: bytes):
        """`line` parsed by orjson, or `UNREADABLE` (reported to `on_bad_line`) when it is not JSON."""
        last, task = self._parsed
        if last is not line:
            try:
                task = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                task = BadLine(f"not valid JSON ({exc}): truncated or corrupted")
        if isinstance(task, BadLine):
            self.unreadable += 1
            self.on_bad_line(f"{self.path}:{self.number}", task.detail)
            return self.UNREADABLE
        return task


class BadLine:
    """What `JsonLines` sends its readers for a line that is not JSON: `detail` says why (as `read_jsonl` would)."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail


def started(reader):
    """`reader`, a generator that takes items by `send` until it is sent None, started (at its first `yield`)."""
    next(reader)
    return reader


def finished(reader):
    """What a `started` reader returns once told that its items have ended (sent None)."""
    try:
        reader.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError(f"{reader!r} did not end when its items did")


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes, in hex (read in chunks: constant memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def paused_gc():
    """Pause Python's cyclic garbage collector around bulk record processing.

    Records are acyclic dicts and lists, so the collector finds nothing to free, yet its passes
    over millions of young objects cost ~25% of a validate run (bench/bench_validate.py).
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def staged_folder(given: Path, output: Path, recheck: Callable[[], None]):
    """A staging folder beside `output` (checked replaceable) to write into; when the block ends without
    error, `recheck()` (files may have appeared meanwhile) and the staging folder takes `output`'s place.
    On any error nothing is left behind, the previous `output` stays, and an OS error names `given`."""
    staging = None
    created: list[Path] = []
    try:
        try:
            created = make_parents(output)
            staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
            os.chmod(staging, 0o755)
            yield staging
            recheck()
            replace_folder(staging, output)
        except OutputError as exc:  # from atomic_write inside the staging folder: name the output instead
            raise write_error(given, exc.reason) from None
        except OSError as exc:
            raise write_error(given, exc) from None
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        remove_empty(created)
        raise
