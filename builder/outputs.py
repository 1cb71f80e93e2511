"""Where builder may write, and one-line errors when a write fails.

The output-folder rule (`builder build -o`, `builder run --output`, `build_dataset`): an output folder
may only replace a previous output of builder's. Builder writes a marker, `.builder-output.json`,
naming the command and the files it wrote, into every folder it creates as output; a folder is
replaced only when it is empty, or carries that marker and holds no file the marker does not list.
Never the project folder, the current folder or a folder containing either, never `annotations/`
or `releases/` or anything inside them. Paths are resolved first (`.`, `..`, symlinks). A release
folder (`releases/VERSION`) is written fresh by `builder release` and never replaced, so it carries
no marker: its manifest lists every file.

Write errors (disk full, file too large, read-only file system, permission) become `OutputError`:
"cannot write PATH (No space left on device); the previous PATH was kept".
"""

from __future__ import annotations

import errno as errno_codes
import json
import os
import shutil
import tempfile
from pathlib import Path

from builder.errors import BuilderError

MARKER = ".builder-output.json"
PROTECTED = ("annotations", "releases")  # under the project root: builder's inputs and published releases


class OutputError(BuilderError):
    """An output could not be written; the message names it and says what was kept."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def _reason(exc: OSError) -> str:
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:
        return f"{exc.filename} is not a folder"
    if exc.errno:
        return os.strerror(exc.errno)  # pyarrow's messages repeat the errno in a long sentence
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def not_a_regular_file(path: Path) -> str | None:
    """What `path` is when it exists and is neither a regular file nor a folder (a device such as
    /dev/null, a FIFO, a socket): a write must never rename a new file over it. None otherwise."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def write_error(path: str | Path, exc: OSError | str) -> OutputError:
    """The one-line error for a failed write of `path` (`exc` an OSError or its reason)."""
    path = Path(path)
    reason = exc if isinstance(exc, str) else _reason(exc)
    if isinstance(exc, OSError) and exc.errno == errno_codes.EISDIR and path.is_dir():
        return OutputError(f"cannot write {path}: it is a folder; name a file instead", reason)
    kept = f"the previous {path} was kept" if path.exists() else "nothing was written"
    return OutputError(f"cannot write {path} ({reason}); {kept}", reason)


def _refuse(path: Path, why: str, todo: str) -> BuilderError:
    return BuilderError(f"refusing to write into {path}: {why}; {todo}")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _bundled_error():
    from builder.project import no_project_file_error

    return no_project_file_error()


def read_marker(folder: Path) -> dict | None:
    """The marker of a builder output folder, or None when `folder` has no valid one."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict) or not isinstance(content.get("files"), list):
        return None
    return content


def write_marker(folder: Path, command: str, **facts) -> Path:
    """Mark `folder` as builder's output: the command and every file in it (deterministic content), and `facts`
    (a dataset: the snapshot it was built from, which the notebook then reads too)."""
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MARKER)
    content = {
        "written_by": f"`{command}`; builder may replace this folder (and only these files) on its next run",
        "command": command,
        "files": files,
        **facts,
    }
    path = folder / MARKER
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


DATASET_COMMANDS = ("builder build", "builder run")  # the commands whose output folders hold a dataset


def check_output_folder(
    folder: str | Path, project=None, *, fresh: bool = False, option: str = "-o", commands: tuple[str, ...] = ()
) -> Path:
    """Resolve `folder` and refuse (one line) unless builder may write it; returns the resolved path.

    `fresh`: the folder is a release being staged by `builder release` (must not exist or be empty;
    allowed under releases/). `commands`: a non-empty folder must have been written by one of these
    (a dataset never replaces a trained model, nor a model a dataset).
    """
    given = Path(folder)
    resolved = given.resolve()
    todo = f"pass {option} a new or empty folder, such as dist/<name>"
    if resolved == Path(resolved.anchor):
        raise _refuse(resolved, "it is the root of the file system", todo)
    if project is not None:
        root = project.root.resolve()
        if getattr(project, "bundled", False) and _inside(resolved, root):
            raise _bundled_error()
        if _inside(root, resolved):
            raise _refuse(resolved, f"it is or contains the project folder {root}", todo)
        if not fresh:
            for name in PROTECTED:
                if _inside(resolved, root / name):
                    raise _refuse(resolved, f"it is inside {root / name}, which builder never replaces", todo)
    cwd = Path.cwd().resolve()
    if _inside(cwd, resolved):
        raise _refuse(resolved, "it is or contains the current folder", todo)
    if not resolved.exists():
        return resolved
    if not resolved.is_dir():
        raise _refuse(resolved, "it is a file", todo)
    if not any(resolved.iterdir()):
        return resolved
    if fresh:
        raise _refuse(resolved, "it is not empty", "choose a new version")
    marker = read_marker(resolved)  # checked before walking the folder: `-o ~` must not walk a home folder
    if marker is None:
        raise _refuse(
            resolved, f"it is not empty and was not written by builder (no {MARKER})", f"{todo}, or empty it yourself"
        )
    if commands and marker.get("command") not in commands:
        raise _refuse(resolved, f"it holds the output of `{marker.get('command')}`", f"{todo}, or remove it yourself")
    present = sorted(str(p.relative_to(resolved)) for p in resolved.rglob("*") if not p.is_dir() or p.is_symlink())
    strangers = [name for name in present if name != MARKER and name not in marker["files"]]
    if strangers:
        shown = ", ".join(strangers[:3]) + (f" and {len(strangers) - 3} more" if len(strangers) > 3 else "")
        raise _refuse(resolved, f"it holds files builder did not write ({shown})", f"move them away, or {todo}")
    return resolved


REPORT = "a builder report"
_WHOLE_FILE_LIMIT = 64 << 20  # a report is read whole to recognise it; larger files are not reports


def existing_kind(path: Path) -> str | None:
    """What builder wrote at `path` (`builder_output_kind` of its first record, or
    REPORT), or None when it is anything else: a file builder did not write."""
    import orjson

    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(min(size, _WHOLE_FILE_LIMIT))
    except OSError:
        return None
    if size <= _WHOLE_FILE_LIMIT:
        try:
            whole = orjson.loads(head)
            if isinstance(whole, dict) and {"stage", "problems"} <= whole.keys():
                return REPORT
        except orjson.JSONDecodeError:
            pass
    first = next((line for line in head.split(b"\n") if line.strip()), b"")
    try:
        return builder_output_kind(orjson.loads(first))
    except orjson.JSONDecodeError:
        return None


def check_output_file(path: str | Path, project=None, option: str = "-o", replaces: tuple[str, ...] = ()) -> Path:
    """Refuse (one line) a file output that is a folder, inside releases/, or under the bundled default's root;
    with `replaces` (the kinds of builder output this option writes), also an existing, non-empty file of
    another kind: an input (a snapshot, an article file) or a file builder did not write is never overwritten."""
    given = Path(path)
    resolved = given.resolve()
    if resolved.is_dir():
        raise BuilderError(f"{option} {path}: {resolved} is a folder; name a file, such as {given / 'out.jsonl'}")
    not_regular = not_a_regular_file(resolved)
    if not_regular:
        raise BuilderError(f"{option} {path}: {resolved} is {not_regular}, not a file builder may replace; name a file")
    if replaces and resolved.is_file() and resolved.stat().st_size > 0:
        kind = existing_kind(resolved)
        if kind not in replaces:
            what = f"it holds {kind}" if kind else "builder did not write it"
            raise BuilderError(
                f"{option} {path}: refusing to overwrite {resolved}: {what}; name a new file, or move it away first"
            )
    if project is not None:
        root = project.root.resolve()
        if getattr(project, "bundled", False) and _inside(resolved, root):
            raise _bundled_error()
        if _inside(resolved, root / "releases"):
            raise BuilderError(
                f"{option} {path}: {resolved} is inside {root / 'releases'}, which only `builder release` writes; "
                "name a file elsewhere"
            )
    return resolved


def builder_output_kind(record: object) -> str | None:
    """What `record` is when builder wrote it, else None (an article).

    The rule looks at the first record of a .jsonl file: an article as `builder split` writes it
    has `splitter` (a string) and `source` (an object); a sentence (`builder split`) or a dataset
    record (`builder validate`, `builder build`) has `article_id` and an integer `sentence_index`;
    a Label Studio task (`builder pull`) has `data` with a `sentence_id`; a prediction record (`builder
    predict SENTENCES -o`) has `model_version`, `uncertainty` and `predictions`. Input articles have none.
    """
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("splitter"), str) and isinstance(record.get("source"), dict):
        return "article records"
    if "article_id" in record and type(record.get("sentence_index")) is int:
        return "sentence records"
    if isinstance(record.get("data"), dict) and "sentence_id" in record["data"]:
        return "Label Studio tasks"
    if isinstance(record.get("model_version"), str) and "uncertainty" in record and "predictions" in record:
        return "prediction records"
    return None


def replace_folder(staging: Path, output: Path) -> None:
    """Put `staging` in place of `output` (checked replaceable); on failure the previous `output` stays."""
    if not output.exists():
        os.replace(staging, output)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old.", dir=output.parent))
    try:
        os.replace(output, old)  # over the new empty folder: both are ours
    except BaseException:
        os.rmdir(old)
        raise
    try:
        os.replace(staging, output)
    except BaseException:
        os.replace(old, output)
        raise
    shutil.rmtree(old, ignore_errors=True)
