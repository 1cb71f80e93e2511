"""Moving the local Label Studio from SQLite to PostgreSQL, nothing lost (`builder server migrate`).

Label Studio has no tool for this. Its own Django does it: `dumpdata` on SQLite (every row, soft-deleted
ones too, foreign keys to content types by natural key), `migrate` on the empty PostgreSQL database, and
`loaddata` in one transaction, the users' API tokens last (loading a user makes a token by a signal:
those are replaced by the dumped ones), then every table's id sequence moved past the loaded ids. Ids are
kept, so the URL, the project id and every task and annotation id stay what they were.

The move is checked twice: the number of rows of each model in the dump and in PostgreSQL, then the
snapshot `builder pull` makes before and after, byte for byte. For that second check Label Studio runs on
PostgreSQL on a free port of 127.0.0.1 and is not recorded: the project's URL answers nothing while the data
moves, so no annotator can work on a database the move may still throw away. The SQLite database is never
modified, and the state file switches to PostgreSQL (one atomic rename) only once both checks passed; on
any failure before that the project stays on SQLite and what the move made is removed. A marker
(`.builder/migration.json`, written before anything is made) survives a killed move: `builder server start`
then stops the check's server and keeps using SQLite (unless the state file already names PostgreSQL: the
move was final), and the next move removes what the killed one made (only that) and starts again.

The dump holds password hashes, API tokens and e-mails, the snapshots annotations: they live in
`.builder/migration/` (0700, files 0600) and go as soon as they are used, or when the move fails; a killed
move's are removed by the next (or by `builder server start` once the move was final).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import orjson

from builder.errors import LabelStudioError
from builder.jsonio import STATE_DIR, atomic_write, private_dir, state_dir
from builder.labelstudio import postgresql, server
from builder.labelstudio.installer import server_venv
from builder.project import Project

WORK_DIR = server.MIGRATION_WORK_DIR  # .builder/migration/: the dump and the check's snapshots, while a move runs
# Not moved: rebuilt by `migrate` (content types, permissions, and the record of Label Studio's data
# migrations, which describes the database they ran on: PostgreSQL's has rows SQLite's has not), or nothing to
# keep (sessions, the admin's log, django_rq, whose table does not exist in SQLite).
EXCLUDED = (
    "contenttypes",
    "auth.permission",
    "core.asyncmigrationstatus",
    "sessions",
    "admin.logentry",
    "django_rq",
)
TOKEN_MODEL = "authtoken.token"

# Run with the server's own Python, in Label Studio's Django (its settings choose SQLite or PostgreSQL
# from the environment). Answers on a line of its own: BUILDER-<KIND> <json>.
_DJANGO = """
import json, os, sys
import label_studio
sys.path.insert(0, os.path.dirname(label_studio.__file__))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")

def answer(kind, value):
    sys.stdout.write(f"\\nBUILDER-{kind} {json.dumps(value)}\\n")
    sys.stdout.flush()

try:
    import django
    django.setup()
    from django.core.management import call_command
    step = os.environ["BUILDER_STEP"]
    if step == "dump":
        excluded = [arg for name in os.environ["BUILDER_EXCLUDE"].split() for arg in ("--exclude", name)]
        call_command(
            "dumpdata", "--natural-foreign", "--all", "--format", "jsonl", "--verbosity", "0",
            "--output", os.environ["BUILDER_DUMP"], *excluded,
        )
        answer("RESULT", {})
    elif step == "load":
        from django.apps import apps
        from django.core.management.color import no_style
        from django.db import connection, transaction
        from rest_framework.authtoken.models import Token
        from users.models import User
        call_command("migrate", "--no-input", verbosity=0)
        if User.objects.exists():
            answer("HOLDS-DATA", User.objects.count())
            sys.exit(4)
        with open(os.environ["BUILDER_COUNTS"], encoding="utf-8") as handle:
            expected = json.load(handle)
        with transaction.atomic():
            call_command("loaddata", os.environ["BUILDER_MAIN"], verbosity=0)
            Token.objects.all().delete()  # made by a signal for each loaded user: the dumped ones replace them
            if os.environ.get("BUILDER_TOKENS"):
                call_command("loaddata", os.environ["BUILDER_TOKENS"], verbosity=0)
            # what `sqlsequencereset` prints, for every app's tables (django_rq's models have none)
            tables = [m for m in apps.get_models(include_auto_created=True) if m._meta.managed]
            with connection.cursor() as cursor:
                for sql in connection.ops.sequence_reset_sql(no_style(), tables):
                    cursor.execute(sql)
            found = {label: apps.get_model(label)._base_manager.count() for label in expected}
            if found != expected:
                answer("MISMATCH", found)
                raise SystemExit(5)  # rolls the transaction back
        answer("RESULT", found)
    elif step == "flush":
        call_command("flush", "--no-input", verbosity=0)
        answer("RESULT", {})
except Exception as exc:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    answer("ERROR", f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300])
    sys.exit(2)
"""

_EMAIL = re.compile(r"[^\s@'\"()=,]+@[^\s@'\"()=,]+")
_LONG_TOKEN = re.compile(r"\b[0-9A-Za-z_\-]{32,}\b")


@dataclass
class MigrationResult:
    """What moved (rows per model, as in the dump) and how it was checked."""

    counts: dict[str, int]
    database: str  # where the data is now, for people (never the password)
    sqlite_backup: Path  # the SQLite database, kept as it was
    project_id: int | None  # the builder project's Label Studio project (None: there is none, no pull compared)
    url: str
    snapshot_identical: bool = False

    @property
    def tasks(self) -> int:
        return self.counts.get("tasks.task", 0)

    @property
    def annotations(self) -> int:
        return self.counts.get("tasks.annotation", 0)

    @property
    def predictions(self) -> int:
        return self.counts.get("tasks.prediction", 0)

    @property
    def users(self) -> int:
        return self.counts.get("users.user", 0)


def work_dir(root: Path) -> Path:
    return root / STATE_DIR / WORK_DIR


def migrate_to_postgresql(
    root: Path, project: Project, database_url: str | None = None, log: Callable[[str], None] = print
) -> MigrationResult:
    """Move the local Label Studio of the project at `root` from SQLite to PostgreSQL and check the move.

    `database_url`: an existing, empty PostgreSQL database (password from PGPASSWORD or ~/.pgpass) instead of
    a cluster builder makes in `.builder/postgresql`. Leaves Label Studio running on PostgreSQL, the SQLite
    database in place as a backup. Refused, or rolled back to SQLite, in one line."""
    from builder.locks import exclusive, lock_path

    root = Path(root).resolve()
    target = postgresql.parse_url(database_url) if database_url is not None else None
    waiting = lambda pid: log(f"waiting for another move of this project's Label Studio (pid {pid})")  # noqa: E731
    with exclusive(lock_path("migrate", str(root)), on_wait=waiting):
        if server.migration_marker(root).is_file():
            _clean_interrupted(root, log)
        elif work_dir(root).exists():  # builder's own folder, left by a move killed before its marker went
            shutil.rmtree(work_dir(root))
        state = _check_movable(root, target)
        return _migrate(root, project, state, target, log)


def _check_movable(root: Path, target: postgresql.Target | None) -> server.ServerState | None:
    """The recorded state (None: none usable); refusals before anything is started or made."""
    state = server.read_state(root)  # an unreadable one: one line saying to run `builder server start`
    if state is not None and not server.belongs_to(state, root):
        state = None
    if state is not None and state.database == "postgresql":
        raise LabelStudioError(
            f"this project's Label Studio is already on {server.describe_database(state)}: nothing to move"
        )
    sqlite = server.data_dir_of(root) / server.SQLITE_FILE
    if not sqlite.is_file():
        raise LabelStudioError(
            f"no SQLite database in {STATE_DIR}/{sqlite.parent.name}/: nothing to move "
            "(start a new project on PostgreSQL with `builder server start --db postgresql`)"
        )
    if target is not None:  # reachable, the password right, and empty: found out before Label Studio stops
        python = server_venv() / "bin" / "python"
        users = postgresql.label_studio_users(python, target, os.environ.get("PGPASSWORD", ""))
        if users:
            raise LabelStudioError(
                f"{target.describe()} already holds Label Studio data ({users} users): give an empty database; "
                "nothing was moved, the project stays on SQLite, unchanged"
            )
    if target is None and postgresql.cluster_dir(root).exists():
        raise LabelStudioError(
            f"{STATE_DIR}/{postgresql.CLUSTER_DIR}/ already holds a PostgreSQL cluster that builder did not make for "
            "this move: it is left alone (move it away if nothing in it is needed, or give --database-url)"
        )
    return state


def _migrate(root, project, state, target, log) -> MigrationResult:
    from builder.labelstudio.client import Connection
    from builder.labelstudio.project_api import find_project

    was_running = state is not None and server.is_running(state)
    state = server.start(root, log=log)  # SQLite, healthy, its token accepted
    original = dataclasses.replace(state, pid=None)
    connection = Connection(state.url, state.token, "local server", state.data_dir)
    project_id = find_project(connection, project)
    marker = server.migration_marker(root)
    _write_marker(marker, {"to": "postgresql", "cluster": target is None, "database_url": target.url if target else ""})
    work = private_dir(work_dir(root))
    moved, loaded, checking = None, False, None
    try:
        before, after = _private_output(work / "before.jsonl"), _private_output(work / "after.jsonl")
        if project_id is not None:
            log(f"pulling project {project_id} from SQLite, to compare after the move")
            _check_pull(connection, project, before, log)
        log("stopping Label Studio: nothing may change while its data moves")
        server.stop(root)
        executable = server.ensure_installed(log)
        counts = _dump(executable, original, work, log)
        moved = server.prepare_postgresql(root, original, target, log)
        log(f"loading {sum(counts.values())} objects into {postgresql.parse_url(moved.database_url).describe()}")
        _load(executable, moved, work, counts, target)
        loaded = True
        if target is not None:  # a killed move must know that it loaded data into a database it did not make
            _write_marker(marker, {**json.loads(marker.read_text(encoding="utf-8")), "loaded": True})
        _remove_dump(work)
        identical = False
        if project_id is not None:
            # on a port of its own: the project's URL (annotators' links) answers nothing until the move is final
            checking = server.start_private(root, moved, log=log)
            log(f"pulling project {project_id} from PostgreSQL, to compare")
            private = Connection(checking.url, checking.token, "local server", checking.data_dir)
            _check_pull(private, project, after, log)
            _compare(before, after)
            identical = True
            server.terminate(checking.pid)
            checking = None
        # The switch, in one atomic rename: from here on PostgreSQL holds the project, whatever happens next.
        server.write_state(root, moved)
    except BaseException as exc:
        why = str(exc) if isinstance(exc, LabelStudioError) else f"{type(exc).__name__}: {exc}"
        if checking is not None:
            server.terminate(checking.pid)
        _roll_back(root, original, moved, target, loaded, was_running, log)
        if isinstance(exc, LabelStudioError):
            raise LabelStudioError(
                f"{_redact(why, original)}; the project stays on SQLite, unchanged "
                f"({STATE_DIR}/{server.data_dir_of(root).name}/{server.SQLITE_FILE})"
            ) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    marker.unlink()
    try:
        started = server.start(root, log=log)
    except LabelStudioError as exc:
        raise LabelStudioError(
            f"the move to PostgreSQL is done and checked, but Label Studio did not start on it: {exc}; "
            "run `builder server start`"
        ) from None
    return MigrationResult(
        dict(sorted(counts.items())),
        server.describe_database(started),
        server.data_dir_of(root) / server.SQLITE_FILE,
        project_id,
        started.url,
        identical,
    )


def _private_output(path: Path) -> Path:
    """An empty file readable by its owner only, which a pull then replaces keeping that mode (snapshots hold
    annotators' work: they stay private even when .builder/ must be traversable for the cluster's user)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
    return path


def _write_marker(marker: Path, content: dict) -> None:
    state_dir(marker.parent.parent)
    with atomic_write(marker, "w", private=True) as handle:
        json.dump({**content, "pid": os.getpid()}, handle, indent=2, sort_keys=True)


# ---------------------------------------------------------------- the steps in Label Studio's Django


def _run_django(executable: Path, state: server.ServerState, step: str, work: Path, **extra: str) -> tuple[str, object]:
    """Run a step of `_DJANGO` on `state`'s database; (kind, value) of its answer."""
    env = server._server_environment(state)
    env.update(BUILDER_STEP=step, **extra)
    result = subprocess.run(
        [str(executable.parent / "python"), "-c", _DJANGO],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        umask=0o077,  # the dump holds password hashes, API tokens and e-mails
    )
    answers = [line for line in result.stdout.splitlines() if line.startswith("BUILDER-")]
    if not answers:
        last = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        raise LabelStudioError(f"Label Studio's Django failed ({step}): {_redact(last[:300], state)}")
    kind, _, value = answers[-1].partition(" ")
    return kind.removeprefix("BUILDER-"), json.loads(value)


def _dump(executable: Path, state: server.ServerState, work: Path, log) -> Counter:
    """Dump the SQLite database into `work` (main.jsonl, tokens.jsonl, both 0600); rows per model."""
    dump = work / "dump.jsonl"
    os.close(os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    log(f"dumping the SQLite database ({_size(Path(state.data_dir) / server.SQLITE_FILE)})")
    kind, value = _run_django(
        executable, state, "dump", work, BUILDER_DUMP=str(dump), BUILDER_EXCLUDE=" ".join(EXCLUDED)
    )
    if kind != "RESULT":
        raise LabelStudioError(f"dumping the SQLite database failed: {_redact(str(value), state)}")
    counts: Counter = Counter()
    with open(dump, "rb") as source, _private(work / "main.jsonl") as main, _private(work / "tokens.jsonl") as tokens:
        for line in source:
            if not line.strip():
                continue
            model = orjson.loads(line)["model"]
            counts[model] += 1
            (tokens if model == TOKEN_MODEL else main).write(line if line.endswith(b"\n") else line + b"\n")
    dump.unlink()
    with _private(work / "counts.json") as handle:
        handle.write(orjson.dumps(dict(counts), option=orjson.OPT_SORT_KEYS))
    return counts


def _load(executable: Path, moved: server.ServerState, work: Path, counts: Counter, target) -> None:
    """Create Label Studio's tables and load the dump in one transaction; refused when the database holds users."""
    where = postgresql.parse_url(moved.database_url).describe()
    extra = {"BUILDER_MAIN": str(work / "main.jsonl"), "BUILDER_COUNTS": str(work / "counts.json")}
    if counts.get(TOKEN_MODEL):
        extra["BUILDER_TOKENS"] = str(work / "tokens.jsonl")
    kind, value = _run_django(executable, moved, "load", work, **extra)
    if kind == "HOLDS-DATA":
        raise LabelStudioError(
            f"{where} already holds Label Studio data ({value} users): give an empty database, nothing was loaded"
        )
    if kind == "MISMATCH":
        differing = sorted(m for m in counts if value.get(m) != counts[m])
        first = differing[0]
        raise LabelStudioError(
            f"the move lost or added rows: {first} has {counts[first]} in SQLite but {value.get(first)} in "
            f"PostgreSQL ({len(differing)} models differ)"
        )
    if kind != "RESULT":
        raise LabelStudioError(f"loading into {where} failed: {_redact(str(value), moved)}")


def _flush(executable: Path, moved: server.ServerState, work: Path, log) -> None:
    """Empty the tables of an existing server's database this move loaded (they held no users before)."""
    log(f"emptying what this move loaded into {postgresql.parse_url(moved.database_url).describe()}")
    kind, value = _run_django(executable, moved, "flush", work)
    if kind != "RESULT":
        raise LabelStudioError(f"could not empty {moved.database_url}: {_redact(str(value), moved)}")


def _remove_dump(work: Path) -> None:
    for name in ("dump.jsonl", "main.jsonl", "tokens.jsonl", "counts.json"):
        with contextlib.suppress(FileNotFoundError):
            (work / name).unlink()


@contextlib.contextmanager
def _private(path: Path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size / 1e6:.1f} MB"
    except OSError:
        return "size unknown"


def _redact(text: str, state: server.ServerState | None) -> str:
    """No e-mail, token or password in a message (Django's errors may quote rows)."""
    for secret in (state.password, state.token, state.database_password) if state is not None else ():
        if secret:
            text = text.replace(secret, "***")
    return _LONG_TOKEN.sub("***", _EMAIL.sub("***", text))


# ---------------------------------------------------------------- the check: a pull before, a pull after


def _check_pull(connection, project: Project, output: Path, log) -> None:
    """Pull the project into `output` (a file of this move's), leaving no pull-state entry for it."""
    from builder.labelstudio.pull import pull

    try:
        pull(connection, project, output, log=log)
    finally:
        _forget_pull(project.root, output)


def _forget_pull(root: Path, output: Path) -> None:
    path = root / STATE_DIR / "pull-state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        pulls = state["pulls"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    suffix = f"#{output.resolve()}"
    if not isinstance(pulls, dict) or not any(key.endswith(suffix) for key in pulls):
        return
    state["pulls"] = {key: entry for key, entry in pulls.items() if not key.endswith(suffix)}
    with atomic_write(path, "w", private=True) as handle:
        json.dump(state, handle, indent=2, sort_keys=True)


def _compare(before: Path, after: Path) -> None:
    """Byte for byte, line by line; the first differing task's sentence id when they differ."""
    with open(before, "rb") as old, open(after, "rb") as new:
        for number, (a, b) in enumerate(zip_longest(old, new), start=1):
            if a != b:
                sentence = _sentence_id(a) or _sentence_id(b) or f"line {number}"
                missing = " (missing after the move)" if b is None else " (new after the move)" if a is None else ""
                raise LabelStudioError(
                    f"the snapshot pulled from PostgreSQL differs from the one pulled from SQLite, first at task "
                    f"{sentence}{missing}"
                )


def _sentence_id(line: bytes | None) -> str | None:
    try:
        return str(orjson.loads(line)["data"]["sentence_id"])
    except (TypeError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------- undoing


def _roll_back(root, original, moved, target, loaded, was_running, log) -> None:
    """Back to SQLite: Label Studio stopped, the state as it was, what the move made removed."""
    log("the move failed: going back to SQLite")
    with contextlib.suppress(LabelStudioError, OSError):
        server.stop(root)
    server.write_state(root, original)
    _remove_made(root, target, moved if loaded else None, log)
    server.migration_marker(root).unlink(missing_ok=True)
    if was_running:
        with contextlib.suppress(LabelStudioError, OSError):
            server.start(root, log=log)


def _remove_made(root: Path, target, loaded_into: server.ServerState | None, log) -> None:
    """Remove builder's cluster of this move (target None), or empty the tables it loaded in `target`."""
    if target is None:
        if postgresql.cluster_exists(root):
            with contextlib.suppress(LabelStudioError):
                postgresql.stop_cluster(root)
        if postgresql.cluster_dir(root).exists():
            log(f"removing the PostgreSQL cluster this move made in {STATE_DIR}/{postgresql.CLUSTER_DIR}/")
            shutil.rmtree(postgresql.cluster_dir(root))
        state_dir(root)  # .builder/ back to 0700 once no cluster user needs to pass through
    elif loaded_into is not None:
        work = private_dir(work_dir(root))
        _flush(server.ensure_installed(log), loaded_into, work, log)


def _clean_interrupted(root: Path, log) -> None:
    """A killed move: remove what it made (its cluster, or what it loaded into --database-url), back to SQLite."""
    marker = server.migration_marker(root)
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        made_cluster, url, loaded = bool(info["cluster"]), str(info.get("database_url", "")), bool(info.get("loaded"))
    except (OSError, ValueError, KeyError, TypeError):
        raise LabelStudioError(f"{marker} is unreadable: remove it, and what a killed move made, by hand") from None
    state = server.read_state(root)
    if state is not None and server.belongs_to(state, root) and state.database == "postgresql":
        # recorded only once the check passed (or by an earlier builder, whose Label Studio on PostgreSQL
        # annotators could reach): PostgreSQL holds the project, nothing of it is removed
        shutil.rmtree(work_dir(root), ignore_errors=True)
        marker.unlink()
        return
    log("a move to PostgreSQL was interrupted: removing what it made, then starting again")
    server.stop(root)  # also the killed move's Label Studio on PostgreSQL (found by its data folder)
    state = server.read_state(root)
    target = postgresql.parse_url(url) if url and not made_cluster else None
    loaded_into = None
    if target is not None and loaded and state is not None:
        loaded_into = dataclasses.replace(
            state,
            database="postgresql",
            database_url=target.url,
            database_password=os.environ.get("PGPASSWORD", ""),
            provisioned=False,
        )
    if made_cluster:
        _remove_made(root, None, None, log)
    elif loaded_into is not None:
        _remove_made(root, target, loaded_into, log)
    for snapshot in ("before.jsonl", "after.jsonl"):  # a check's pull killed just after it recorded itself
        _forget_pull(root, work_dir(root) / snapshot)
    shutil.rmtree(work_dir(root), ignore_errors=True)
    marker.unlink()
