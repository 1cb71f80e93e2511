"""Reading and writing JSON Lines deterministically and atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from builder.errors import InputError

_DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def dumps_line(record: dict) -> bytes:
    """One record as a JSON line with sorted keys (byte-stable)."""
    return orjson.dumps(record, option=_DUMP_OPTIONS)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb"):
    """Write to a temp file beside `path`, then rename over it; on error `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Atomically write records as JSON Lines; returns the number written."""
    count = 0
    with atomic_write(path) as handle:
        for record in records:
            handle.write(dumps_line(record))
            count += 1
    return count


def read_jsonl(path: str | Path, on_bad_line: Callable[[str, str], None] | None = None, hint: str = "") -> Iterator:
    """Stream records from a JSON Lines file.

    A line that is not JSON raises InputError naming file and line, or, with `on_bad_line`, is
    passed to it as (where, detail) and skipped. Without `on_bad_line`, every record must be an object.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror}){hint}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
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
