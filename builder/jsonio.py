"""Reading and writing JSON Lines deterministically and atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
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


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Stream records from a JSON Lines file; a bad line raises InputError naming file and line."""
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield record
