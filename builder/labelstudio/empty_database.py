"""A migrated, empty SQLite database for Label Studio, made once per Label Studio install and copied into
each new project's data folder.

A first start on a new SQLite database runs Label Studio's 244 migrations: about 2 minutes of CPU on a
2-core machine (bench/bench_first_contact.py), nearly all of it Django rendering model states, the largest
step of a first contact after the installs. The schema they make depends only on Label Studio's version, so
builder ships it as SQL for the version it installs (`SHIPPED_SCHEMA`, checked against the real migrations by
tests/test_empty_database.py), makes the empty database from it once (`builder server install`, or the first
start that finds none; without a shipped schema, by running the migrations once), keeps it in its cache beside
Label Studio's virtual environment, and copies it into each new project: Label Studio's start then checks its
migrations, finds nothing to do (or applies what is missing) and starts in seconds.

The copy must carry nothing of anyone: the database is made in a throw-away folder (when Label Studio migrates
it, its secret key, which signs sessions, is generated there and removed with it), never started, and checked
before it is kept: every table but the schema's own bookkeeping (applied migrations, content types,
permissions) is empty, so no user, token, organization or secret is in it. The admin account, its token, the
organization and the secret key are made per project by Label Studio's first start, as before. PostgreSQL is
not concerned: its databases are migrated by Label Studio as before.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from builder.labelstudio.installer import LABEL_STUDIO_VERSION, ensure_installed, server_venv
from builder.progress import heartbeat

# Tables a freshly migrated database fills by itself: the schema's bookkeeping (applied migrations, content types,
# permissions, Label Studio's record of its data migrations: names and times), nothing about anyone.
BOOKKEEPING_TABLES = frozenset(
    {"django_migrations", "django_content_type", "auth_permission", "sqlite_sequence", "core_asyncmigrationstatus"}
)
# Tables that must be there and empty in the template (also checked: every other table is empty too).
PRIVATE_TABLES = ("htx_user", "authtoken_token", "organization", "organizations_organizationmember")

# What Label Studio's migrations make on an empty SQLite database, as SQL (146 KB), shipped with builder for the
# version it installs: restoring it takes a fraction of a second where the migrations take 2 minutes of CPU.
# tests/test_empty_database.py checks it against the migrations of the installed Label Studio.
SHIPPED_SCHEMA = Path(__file__).resolve().parent / f"label-studio-{LABEL_STUDIO_VERSION}-empty.sql"
FIXED_TIME = "2000-01-01 00:00:00"  # the dump's times (when each migration ran): the same text for the same schema
_TIMES = {"django_migrations": ("applied",), "core_asyncmigrationstatus": ("created_at", "updated_at")}

# Run with the server's own Python, in a throw-away data folder: migrate, nothing else.
_MIGRATE = """
import os, sys
import label_studio
sys.path.insert(0, os.path.dirname(label_studio.__file__))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", "--no-input", verbosity=0)
connection.close()
"""


def template_path() -> Path:
    """The template of this Label Studio version, beside its virtual environment in builder's cache."""
    return server_venv().parent / f"label-studio-{LABEL_STUDIO_VERSION}-empty.sqlite3"


def prepare(log=print) -> Path:
    """Install Label Studio when missing, then its empty database: `builder server install` and `builder run`'s
    first step, so that a project's first start only copies it. The `label-studio` executable."""
    executable = ensure_installed(log)
    ensure_template(executable, log)
    return executable


def seed(database: Path, executable: Path, log=print) -> bool:
    """Put a copy of the empty database at `database` (a new project's SQLite file), making it first when
    missing; False when it cannot be made (Label Studio's first start then migrates, as before)."""
    template = ensure_template(executable, log)
    if template is None:
        return False
    try:
        copy_template(template, database)
    except OSError as exc:  # removed meanwhile (a cache cleared), or a full disk: Label Studio migrates instead
        database.with_name(f".{database.name}.copying").unlink(missing_ok=True)
        log(f"could not copy Label Studio's empty database ({exc.strerror or exc}): this first start migrates its own")
        return False
    log(f"copied Label Studio's migrated empty database ({template}) into {database.parent}")
    return True


def ensure_template(executable: Path, log=print) -> Path | None:
    """The template, made now when missing (one process at a time); None when it cannot be made (the first
    start then migrates, as before, and says why in the log). `executable`: Label Studio's `label-studio`."""
    from builder.locks import exclusive, lock_path

    template = template_path()
    if template.is_file():
        return template

    def waiting(holder: str) -> None:
        log(f"waiting for another builder process (pid {holder}) that is migrating Label Studio's empty database")

    with exclusive(lock_path("empty-database", str(template)), on_wait=waiting):
        if template.is_file():
            return template
        try:
            _make(template, executable, log)
        except (OSError, sqlite3.Error, subprocess.SubprocessError, ValueError) as exc:
            log(f"could not make Label Studio's empty database ({str(exc)[:200]}): this first start migrates its own")
            return None
    return template


def _make(template: Path, executable: Path, log) -> None:
    started = time.monotonic()
    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".empty-database-", dir=template.parent) as scratch:
        made = Path(scratch) / "restored.sqlite3"
        try:
            restore(SHIPPED_SCHEMA, made)
            how = f"restored from {SHIPPED_SCHEMA.name}"
        except (OSError, sqlite3.Error) as exc:  # none shipped for this version, or unusable: Label Studio migrates
            if SHIPPED_SCHEMA.is_file():
                log(f"{SHIPPED_SCHEMA} is unusable ({str(exc)[:120]}): migrating instead")
            log(
                f"migrating an empty Label Studio {LABEL_STUDIO_VERSION} database once for every project "
                f"(about 2 minutes of CPU; kept in {template.parent})"
            )
            made = migrate_fresh(executable, Path(scratch), log)
            how = "migrated"
        check_empty(made)
        kept = Path(scratch) / template.name
        shutil.copyfile(made, kept)  # only the database: the secret key and everything else stay in the scratch
        os.chmod(kept, 0o600)
        os.replace(kept, template)
    log(f"made Label Studio's empty database ({how}) in {time.monotonic() - started:.1f} s: {template}")


def restore(schema: Path, database: Path) -> None:
    """Make `database` from a dump of SQL statements (`write_schema`'s)."""
    script = schema.read_text(encoding="utf-8")
    connection = sqlite3.connect(database)
    try:
        connection.executescript(script)
        connection.commit()
    finally:
        connection.close()


def migrate_fresh(executable: Path, scratch: Path, log=print) -> Path:
    """Label Studio's own migrations run on a new SQLite database in `scratch` (a throw-away data folder, with
    the secret key Label Studio generates there); the database's path."""
    data_dir = scratch / "data"
    data_dir.mkdir(mode=0o700)
    # A clean environment (Label Studio reads unprefixed USERNAME, PASSWORD...): no credentials at all
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if key in os.environ}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        DATABASE_NAME=str(data_dir / "label_studio.sqlite3"),
        DJANGO_DB="sqlite",
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
    )
    with heartbeat(log, "migrating Label Studio's empty database"):
        result = subprocess.run(
            [str(executable.parent / "python"), "-c", _MIGRATE],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            umask=0o077,
        )
    if result.returncode != 0:
        last = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"its migration failed: {last}")
    return data_dir / "label_studio.sqlite3"


def schema_dump(database: Path) -> str:
    """A migrated empty database as SQL statements, its times fixed (the same migrations give the same text)."""
    connection = sqlite3.connect(database)
    try:
        with connection:
            for table, columns in _TIMES.items():
                connection.execute(
                    f'UPDATE "{table}" SET ' + ", ".join(f"{column} = ?" for column in columns),
                    [FIXED_TIME] * len(columns),
                )
        return "\n".join(connection.iterdump()) + "\n"
    finally:
        connection.close()


def write_schema(executable: Path, log=print) -> Path:
    """Migrate an empty database with the installed Label Studio and write its dump where builder ships it
    (a maintainer's step after changing LABEL_STUDIO_VERSION: `python -m builder.labelstudio.empty_database`)."""
    with tempfile.TemporaryDirectory(prefix="builder-empty-database-") as scratch:
        made = migrate_fresh(executable, Path(scratch), log)
        check_empty(made)
        SHIPPED_SCHEMA.write_text(schema_dump(made), encoding="utf-8")
    return SHIPPED_SCHEMA


def check_empty(database: Path) -> None:
    """Refuse a template that holds anything but the schema's bookkeeping (ValueError)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        missing = [table for table in PRIVATE_TABLES if table not in tables]
        if missing:
            raise ValueError(f"{database} lacks table {missing[0]}: not a migrated Label Studio database")
        applied = connection.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0]
        if not applied:
            raise ValueError(f"{database} records no migration")
        for table in tables:
            if table in BOOKKEEPING_TABLES:
                continue
            rows = connection.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
            if rows:
                raise ValueError(f"{database}: table {table} holds {rows} rows, a template must hold none")
    connection.close()


def copy_template(template: Path, database: Path) -> None:
    """Put a copy of `template` at `database` (mode 0600), whole or not at all."""
    partial = database.with_name(f".{database.name}.copying")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as target, open(template, "rb") as source:
        shutil.copyfileobj(source, target, 1 << 20)
        target.flush()
        os.fsync(target.fileno())
    os.replace(partial, database)


if __name__ == "__main__":  # python -m builder.labelstudio.empty_database: write the dump for the installed version
    print(write_schema(ensure_installed()))
